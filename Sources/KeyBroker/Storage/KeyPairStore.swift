import Foundation

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

/// The result of ``KeyPairStore/currentPairs()``.
public struct CurrentPairs: Sendable {
    /// The current pairs that could be read, by organization.
    public let records: [KeyPairRecord]
    /// Current rows that could not be read, with why.
    public let corrupt: [CorruptKeyPair]

    /// Creates a result.
    public init(records: [KeyPairRecord], corrupt: [CorruptKeyPair]) {
        self.records = records
        self.corrupt = corrupt
    }
}

/// A stored row that cannot be read back as a key pair.
public struct CorruptKeyPair: Sendable, Hashable {
    /// The pair's id as stored (it may itself be what is wrong).
    public let keyPairID: String
    /// The organization as stored, when it is a valid id.
    public let organization: OrganizationID?
    /// What is wrong with the row.
    public let problem: String

    /// Creates a report.
    public init(keyPairID: String, organization: OrganizationID?, problem: String) {
        self.keyPairID = keyPairID
        self.organization = organization
        self.problem = problem
    }
}

/// How many pairs of one organization a keystore wrapped.
public struct KeystoreUsage: Sendable, Hashable {
    /// The keystore instance name.
    public let keystoreName: String
    /// Its plugin type when the pairs were made.
    public let keystoreType: String
    /// The organization, as stored (printable even when it is not a valid id).
    public let organization: String
    /// How many pairs.
    public let count: Int

    /// Creates a usage row.
    public init(keystoreName: String, keystoreType: String, organization: String, count: Int) {
        self.keystoreName = keystoreName
        self.keystoreType = keystoreType
        self.organization = organization
        self.count = count
    }
}
