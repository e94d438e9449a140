import Foundation
import KeyBroker

/// A store that reports every failure of the whole store (an outage, a damaged or replaced
/// file) to the health monitor as it happens on a request path, so that readiness does not
/// wait for the next background check — and does not miss damage that check happens not to read.
/// It also notes every unreadable current pair it sees in ``CorruptRecordLog``, for the status.
struct InstrumentedStore: KeyPairStore {
    let inner: any KeyPairStore
    let monitor: HealthMonitor
    let corrupt: CorruptRecordLog
    /// Dropped for an organization before any write that changes its public-key answer
    /// returns, so that the write's own response is followed by the new answer.
    let publicKeys: PublicKeyCache

    private func observe<T>(_ body: () async throws(StoreError) -> T) async throws(StoreError) -> T {
        do {
            return try await body()
        } catch {
            // A call cut short because the server is stopping (a port that could not be bound,
            // SIGTERM) says nothing about the store: it must not read as an outage in the log.
            if !Task.isCancelled { monitor.recordFailure(store: error) }
            // A file replaced or damaged: the answers in memory may name pairs it no longer
            // holds, whose recordings could never be decrypted. (An outage keeps them.)
            if error.kind == .damaged { publicKeys.removeAll() }
            throw error
        }
    }

    func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) {
        // Whatever the outcome: a write that failed may still have committed.
        defer { publicKeys.invalidate(record.organization) }
        try await observe { () throws(StoreError) in try await inner.insertCurrent(record) }
        corrupt.forget(record.organization)
    }

    func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord? {
        do {
            return try await observe { () throws(StoreError) in try await inner.current(for: organization) }
        } catch  where error.kind == .corruptRecord {
            corrupt.record([CorruptKeyPair(keyPairID: error.keyPairID ?? "?", organization: organization, problem: error.message)])
            throw error
        }
    }

    func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair? {
        try await observe { () throws(StoreError) in try await inner.keyPair(id: id, of: organization) }
    }

    func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair] {
        try await observe { () throws(StoreError) in try await inner.history(for: organization, limit: limit, offset: offset) }
    }

    func currentPairs(_ query: CurrentPairQuery, limit: Int) async throws(StoreError) -> CurrentPairs {
        let page = try await observe { () throws(StoreError) in try await inner.currentPairs(query, limit: limit) }
        corrupt.record(page.corrupt)
        return page
    }

    func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] {
        try await observe { () throws(StoreError) in try await inner.keystoreUsage() }
    }

    func organizationsUsing(keystore name: String, type: String, limit: Int) async throws(StoreError) -> [KeystoreUsage.PerOrganization] {
        try await observe { () throws(StoreError) in try await inner.organizationsUsing(keystore: name, type: type, limit: limit) }
    }

    func insertCurrent(_ record: KeyPairRecord, if condition: InsertCondition) async throws(StoreError) -> InsertOutcome {
        defer { publicKeys.invalidate(record.organization) }
        let outcome = try await observe { () throws(StoreError) in try await inner.insertCurrent(record, if: condition) }
        if outcome == .stored { corrupt.forget(record.organization) }
        return outcome
    }
    func revocation(of organization: OrganizationID) async throws(StoreError) -> Revocation? {
        try await observe { () throws(StoreError) in try await inner.revocation(of: organization) }
    }
    func setRevocation(_ revocation: Revocation?, for organization: OrganizationID) async throws(StoreError) -> Bool {
        defer { publicKeys.invalidate(organization) }
        return try await observe { () throws(StoreError) in try await inner.setRevocation(revocation, for: organization) }
    }
    func revokedOrganizations(after: String?, limit: Int) async throws(StoreError) -> RevocationPage {
        try await observe { () throws(StoreError) in try await inner.revokedOrganizations(after: after, limit: limit) }
    }
    func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> StoreChanges {
        try await observe { () throws(StoreError) in try await inner.changes(after: sequence, limit: limit) }
    }
    func latestChange() async throws(StoreError) -> Int64 {
        try await observe { () throws(StoreError) in try await inner.latestChange() }
    }
    func recordChange(_ kind: StoreChange.Kind, organization: OrganizationID?) async throws(StoreError) -> Int64 {
        try await observe { () throws(StoreError) in try await inner.recordChange(kind, organization: organization) }
    }
    func pruneChanges(olderThan age: Duration) async throws(StoreError) {
        try await observe { () throws(StoreError) in try await inner.pruneChanges(olderThan: age) }
    }
    func changeSignals() -> AsyncStream<Void>? { inner.changeSignals() }
    func acquireLease(_ name: String, holder: String, for duration: Duration) async throws(StoreError) -> LeaseGrant? {
        try await observe { () throws(StoreError) in try await inner.acquireLease(name, holder: holder, for: duration) }
    }
    func releaseLease(_ name: String, holder: String) async throws(StoreError) {
        try await observe { () throws(StoreError) in try await inner.releaseLease(name, holder: holder) }
    }
    func keyConfiguration(for organization: OrganizationID) async throws(StoreError) -> StoredKeyConfiguration? {
        try await observe { () throws(StoreError) in try await inner.keyConfiguration(for: organization) }
    }
    func saveKeyConfiguration(
        _ configuration: TenantKeyConfiguration,
        for organization: OrganizationID,
        expectedVersion: Int?,
        updatedBy: String,
        at time: Date,
        newPair: KeyPairRecord
    ) async throws(StoreError) -> KeyConfigurationSave {
        defer { publicKeys.invalidate(organization) }
        let outcome = try await observe { () throws(StoreError) in
            try await inner.saveKeyConfiguration(
                configuration,
                for: organization,
                expectedVersion: expectedVersion,
                updatedBy: updatedBy,
                at: time,
                newPair: newPair
            )
        }
        if case .saved = outcome { corrupt.forget(organization) }
        return outcome
    }
    func recordKeyConfigurationError(_ error: KeyConfigurationError?, for organization: OrganizationID) async throws(StoreError) {
        try await observe { () throws(StoreError) in try await inner.recordKeyConfigurationError(error, for: organization) }
    }
    func check() async throws(StoreError) -> [CorruptKeyPair] {
        let unreadable: [CorruptKeyPair]
        do {
            unreadable = try await inner.check()
        } catch {
            if error.kind == .damaged { publicKeys.removeAll() }
            throw error
        }
        corrupt.record(unreadable)
        return unreadable
    }
}
