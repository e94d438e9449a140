import Foundation
import KeyBroker

/// A fake store, not a backend: the real store, calling `onInsert` just before each pair is
/// committed and `onPage` with each page of current pairs it returns, so that tests can watch
/// what the server asks of its store; and failing its reads (not ``check()``) with what
/// `readFailure` returns, the failure a background check can miss and a request path must report.
struct ObservedStore: KeyPairStore {
    let inner: any KeyPairStore
    var onInsert: @Sendable (KeyPairRecord) -> Void = { _ in }
    var onPage: @Sendable (CurrentPairs) -> Void = { _ in }
    var readFailure: @Sendable () -> StoreError? = { nil }

    private func reading() throws(StoreError) -> any KeyPairStore {
        if let failure = readFailure() { throw failure }
        return inner
    }

    func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) {
        onInsert(record)
        try await inner.insertCurrent(record)
    }
    func insertCurrent(_ record: KeyPairRecord, if condition: InsertCondition) async throws(StoreError) -> InsertOutcome {
        onInsert(record)
        return try await inner.insertCurrent(record, if: condition)
    }
    func revocation(of organization: OrganizationID) async throws(StoreError) -> Revocation? {
        try await reading().revocation(of: organization)
    }
    func setRevocation(_ revocation: Revocation?, for organization: OrganizationID) async throws(StoreError) -> Bool {
        try await inner.setRevocation(revocation, for: organization)
    }
    func revokedOrganizations(after: String?, limit: Int) async throws(StoreError) -> RevocationPage {
        try await inner.revokedOrganizations(after: after, limit: limit)
    }
    func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> StoreChanges {
        try await inner.changes(after: sequence, limit: limit)
    }
    func latestChange() async throws(StoreError) -> Int64 { try await inner.latestChange() }
    func recordChange(_ kind: StoreChange.Kind, organization: OrganizationID?) async throws(StoreError) -> Int64 {
        try await inner.recordChange(kind, organization: organization)
    }
    func pruneChanges(olderThan age: Duration) async throws(StoreError) { try await inner.pruneChanges(olderThan: age) }
    func changeSignals() -> AsyncStream<Void>? { inner.changeSignals() }
    func acquireLease(_ name: String, holder: String, for duration: Duration) async throws(StoreError) -> LeaseGrant? {
        try await inner.acquireLease(name, holder: holder, for: duration)
    }
    func releaseLease(_ name: String, holder: String) async throws(StoreError) { try await inner.releaseLease(name, holder: holder) }
    func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord? {
        try await reading().current(for: organization)
    }
    func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair? {
        try await reading().keyPair(id: id, of: organization)
    }
    func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair] {
        try await reading().history(for: organization, limit: limit, offset: offset)
    }
    func currentPairs(_ query: CurrentPairQuery, limit: Int) async throws(StoreError) -> CurrentPairs {
        let page = try await reading().currentPairs(query, limit: limit)
        onPage(page)
        return page
    }
    func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] { try await inner.keystoreUsage() }
    func organizationsUsing(keystore name: String, type: String, limit: Int) async throws(StoreError) -> [KeystoreUsage.PerOrganization] {
        try await inner.organizationsUsing(keystore: name, type: type, limit: limit)
    }
    func keyConfiguration(for organization: OrganizationID) async throws(StoreError) -> StoredKeyConfiguration? {
        try await reading().keyConfiguration(for: organization)
    }
    func saveKeyConfiguration(
        _ configuration: TenantKeyConfiguration,
        for organization: OrganizationID,
        expectedVersion: Int?,
        updatedBy: String,
        at time: Date,
        newPair: KeyPairRecord
    ) async throws(StoreError) -> KeyConfigurationSave {
        onInsert(newPair)
        return try await inner.saveKeyConfiguration(
            configuration,
            for: organization,
            expectedVersion: expectedVersion,
            updatedBy: updatedBy,
            at: time,
            newPair: newPair
        )
    }
    func recordKeyConfigurationError(_ error: KeyConfigurationError?, for organization: OrganizationID) async throws(StoreError) {
        try await inner.recordKeyConfigurationError(error, for: organization)
    }
    func check() async throws(StoreError) -> [CorruptKeyPair] { try await inner.check() }
}
