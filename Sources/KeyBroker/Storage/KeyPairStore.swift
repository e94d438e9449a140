public import Foundation

/// Durable storage of every key pair ever issued, and of which one is current per organization.
///
/// The contract every implementation keeps:
/// - ``insertCurrent(_:)`` is atomic (invariant 6), keeps at most one current pair per
///   organization even when several processes insert at once, and returns only once the pair
///   is durable: a public key handed out after it returns survives a power cut (invariant 7).
/// - A record that cannot be read back fails as ``StoreError/Kind/corruptRecord`` for the
///   requests that need it, and is listed by ``currentPairs(_:limit:)`` instead of failing
///   the page.
/// - Nothing a request or a periodic pass calls costs O(organizations) or O(history):
///   pages are index ranges, and ``keystoreUsage()`` is kept as pairs are written.
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

    /// A page of current pairs: at most `limit` rows that `query` selects, in its order, the
    /// ones that cannot be read reported beside the others. One index range per page.
    func currentPairs(_ query: CurrentPairQuery, limit: Int) async throws(StoreError) -> CurrentPairs

    /// How many pairs each keystore wrapped as each type, and how many are current: kept as
    /// the store writes, so it costs the same at any size of history.
    func keystoreUsage() async throws(StoreError) -> [KeystoreUsage]

    /// The organizations whose pairs keystore `name` wrapped as `type`, with how many, by
    /// organization, at most `limit`. For messages about a keystore that pairs need; it may
    /// read that keystore's whole history, so it is on no request path or periodic pass.
    func organizationsUsing(keystore name: String, type: String, limit: Int) async throws(StoreError) -> [KeystoreUsage.PerOrganization]

    /// ``insertCurrent(_:)``, only while everything `condition` names still holds, checked in
    /// the same transaction: a pair made under a configuration that a save replaced meanwhile,
    /// a rotation of a pair that another writer replaced meanwhile, and a write by a replica
    /// that lost its lease are not stored.
    func insertCurrent(_ record: KeyPairRecord, if condition: InsertCondition) async throws(StoreError) -> InsertOutcome

    /// The organization's own key configuration, if its administrator set one.
    func keyConfiguration(for organization: OrganizationID) async throws(StoreError) -> StoredKeyConfiguration?

    /// Stores `configuration` for `organization` and makes `newPair` (made through it) its
    /// current pair, in one durable transaction — or, when `expectedVersion` is given and is
    /// not the stored version (0 when none is stored), or the organization is revoked,
    /// nothing at all. A save clears the last
    /// error. The pair's rotation cadence is the configuration's from then on.
    func saveKeyConfiguration(
        _ configuration: TenantKeyConfiguration,
        for organization: OrganizationID,
        expectedVersion: Int?,
        updatedBy: String,
        at time: Date,
        newPair: KeyPairRecord
    ) async throws(StoreError) -> KeyConfigurationSave

    /// Records (or with `nil` clears) the last error through the organization's stored
    /// configuration; does nothing when it has none.
    func recordKeyConfigurationError(_ error: KeyConfigurationError?, for organization: OrganizationID) async throws(StoreError)

    // MARK: revocation

    /// The organization's revocation, if it is revoked.
    func revocation(of organization: OrganizationID) async throws(StoreError) -> Revocation?

    /// Revokes (`revocation` given) or restores (`nil`) the organization, and records the
    /// change in the feed, in one durable transaction.
    /// - Returns: whether anything changed (revoking a revoked organization changes nothing).
    func setRevocation(_ revocation: Revocation?, for organization: OrganizationID) async throws(StoreError) -> Bool

    /// The revoked organizations, by organization, at most `limit` after `after`.
    func revokedOrganizations(after: String?, limit: Int) async throws(StoreError) -> RevocationPage

    // MARK: coordination between processes that share the store

    /// The changes after `sequence` (0: from the start), oldest first, at most `limit`. Every
    /// write that other processes must act on (``StoreChange/Kind``) adds one in its own
    /// transaction; an index range, whatever the size of the feed.
    func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> StoreChanges

    /// The newest change's sequence, or the last pruned one if later (0 when none): where a
    /// new reader starts.
    func latestChange() async throws(StoreError) -> Int64

    /// Adds a change that no store write makes (``StoreChange/Kind/reload``).
    /// - Returns: its sequence (so that its writer can tell it from others' changes).
    @discardableResult
    func recordChange(_ kind: StoreChange.Kind, organization: OrganizationID?) async throws(StoreError) -> Int64

    /// Drops the changes older than `age` by the store's clock (the lease holder does it).
    func pruneChanges(olderThan age: Duration) async throws(StoreError)

    /// Wakes the caller each time changes may have been added, as soon as the store can tell
    /// (PostgreSQL's LISTEN); `nil` when it cannot, and readers poll ``changes(after:limit:)``.
    func changeSignals() -> AsyncStream<Void>?

    /// Takes the lease `name` for `holder`, or renews it, for `duration` by the store's clock,
    /// when nobody else holds it unexpired.
    /// - Returns: the grant, or `nil` while another holder's lease runs.
    func acquireLease(_ name: String, holder: String, for duration: Duration) async throws(StoreError) -> LeaseGrant?

    /// Gives the lease up at once, when `holder` holds it (a replica stopping).
    func releaseLease(_ name: String, holder: String) async throws(StoreError)

    /// Checks that the store answers and reads what requests read (for readiness). Cheap:
    /// it costs the same at one organization and at a million. A store that reads a page of
    /// current pairs to check (a different one each time, so that successive checks cover
    /// them all) returns those of the page it could not read.
    @discardableResult
    func check() async throws(StoreError) -> [CorruptKeyPair]
}
