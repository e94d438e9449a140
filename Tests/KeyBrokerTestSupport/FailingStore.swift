import Foundation
import KeyBroker
import Synchronization

/// A fake store, not a backend: the SQLite store, whose reads fail with a chosen error once
/// ``failReads()`` is called, while ``check()`` keeps passing — the failure a background check
/// can miss and a request path must report.
final class FailingStore: KeyPairStore, @unchecked Sendable {
    private let failure: StoreError
    private let state = Mutex<(inner: (any KeyPairStore)?, failing: Bool)>((nil, false))

    init(failure: StoreError) { self.failure = failure }

    /// Wraps the real store (called by the fixture once it has opened it).
    func wrap(_ inner: any KeyPairStore) -> Self {
        state.withLock { $0.inner = inner }
        return self
    }

    func failReads() { state.withLock { $0.failing = true } }

    private func inner(reading: Bool) throws(StoreError) -> any KeyPairStore {
        let (inner, failing) = state.withLock { ($0.inner, $0.failing) }
        if reading, failing { throw failure }
        guard let inner else { throw StoreError(.unavailable, "the fake store wraps nothing yet") }
        return inner
    }

    func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) { try await inner(reading: false).insertCurrent(record) }
    func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord? {
        try await inner(reading: true).current(for: organization)
    }
    func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair? {
        try await inner(reading: true).keyPair(id: id, of: organization)
    }
    func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair] {
        try await inner(reading: true).history(for: organization, limit: limit, offset: offset)
    }
    func currentPairs(_ query: CurrentPairQuery, limit: Int) async throws(StoreError) -> CurrentPairs {
        try await inner(reading: true).currentPairs(query, limit: limit)
    }
    func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] { try await inner(reading: false).keystoreUsage() }
    func organizationsUsing(keystore name: String, type: String, limit: Int) async throws(StoreError) -> [KeystoreUsage.PerOrganization] {
        try await inner(reading: false).organizationsUsing(keystore: name, type: type, limit: limit)
    }
    func insertCurrent(_ record: KeyPairRecord, ifConfigurationVersion version: Int) async throws(StoreError) -> Bool {
        try await inner(reading: false).insertCurrent(record, ifConfigurationVersion: version)
    }
    func keyConfiguration(for organization: OrganizationID) async throws(StoreError) -> StoredKeyConfiguration? {
        try await inner(reading: true).keyConfiguration(for: organization)
    }
    func saveKeyConfiguration(
        _ configuration: TenantKeyConfiguration,
        for organization: OrganizationID,
        expectedVersion: Int?,
        updatedBy: String,
        at time: Date,
        newPair: KeyPairRecord
    ) async throws(StoreError) -> KeyConfigurationSave {
        try await inner(reading: false).saveKeyConfiguration(
            configuration,
            for: organization,
            expectedVersion: expectedVersion,
            updatedBy: updatedBy,
            at: time,
            newPair: newPair
        )
    }
    func recordKeyConfigurationError(_ error: KeyConfigurationError?, for organization: OrganizationID) async throws(StoreError) {
        try await inner(reading: false).recordKeyConfigurationError(error, for: organization)
    }
    func check() async throws(StoreError) -> [CorruptKeyPair] { try await inner(reading: false).check() }
}
