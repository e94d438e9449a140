public import Foundation

/// Durable storage of every key pair ever issued, and of which one is current per organization.
///
/// The contract every implementation keeps:
/// - ``insertCurrent(_:)`` is atomic (invariant 6), keeps at most one current pair per
///   organization even when several processes insert at once, and returns only once the pair
///   is durable: a public key handed out after it returns survives a power cut (invariant 7).
/// - A record that cannot be read back fails as ``StoreError/Kind/corruptRecord`` for the
///   requests that need it, and is listed by ``currentPairs()`` instead of failing the scan.
/// - Every failure is a ``StoreError``: ``StoreError/Kind/unavailable`` or
///   ``StoreError/Kind/damaged`` for the store as a whole.
public protocol KeyPairStore: Sendable {
    /// Stores `record` and makes it its organization's current pair, in one durable transaction.
    func insertCurrent(_ record: KeyPairRecord) async throws(StoreError)

    /// The organization's current pair.
    func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord?

    /// The pair `id` if it belongs to `organization`. The organization is part of the lookup,
    /// so another organization's pair costs the same as an unknown id.
    func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair?

    /// The organization's pairs, newest first.
    /// - Parameters:
    ///   - limit: at most this many.
    ///   - offset: skip this many of the newest.
    func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair]

    /// Every organization's current pair, and the current rows that could not be read.
    func currentPairs() async throws(StoreError) -> CurrentPairs

    /// How many pairs each keystore wrapped, per organization.
    func keystoreUsage() async throws(StoreError) -> [KeystoreUsage]

    /// Checks that the store answers and reads what requests read (for readiness). Cheap:
    /// it costs the same at one organization and at a million.
    func check() async throws(StoreError)
}
