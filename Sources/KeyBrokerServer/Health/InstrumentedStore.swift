import Foundation
import KeyBroker

/// A store that reports every failure of the whole store (an outage, a damaged or replaced
/// file) to the health monitor as it happens on a request path, so that readiness does not
/// wait for the next background check — and does not miss damage that check happens not to read.
struct InstrumentedStore: KeyPairStore {
    let inner: any KeyPairStore
    let monitor: HealthMonitor

    private func observe<T>(_ body: () async throws(StoreError) -> T) async throws(StoreError) -> T {
        do {
            return try await body()
        } catch {
            monitor.recordFailure(store: error)
            throw error
        }
    }

    func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) {
        try await observe { () throws(StoreError) in try await inner.insertCurrent(record) }
    }

    func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord? {
        try await observe { () throws(StoreError) in try await inner.current(for: organization) }
    }

    func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair? {
        try await observe { () throws(StoreError) in try await inner.keyPair(id: id, of: organization) }
    }

    func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair] {
        try await observe { () throws(StoreError) in try await inner.history(for: organization, limit: limit, offset: offset) }
    }

    func currentPairs() async throws(StoreError) -> CurrentPairs {
        try await observe { () throws(StoreError) in try await inner.currentPairs() }
    }

    func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] {
        try await observe { () throws(StoreError) in try await inner.keystoreUsage() }
    }

    func check() async throws(StoreError) {
        try await inner.check()
    }
}
