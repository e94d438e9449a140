import Foundation
import KeyBroker
import NIOConcurrencyHelpers

/// The last known health of every keystore and of the store, kept up to date by a
/// background loop so that probes and status never call a backend on the request path.
public final class HealthMonitor: Sendable {
    /// One keystore's health as last seen.
    public struct KeystoreState: Sendable {
        public var name: String
        public var type: String
        public var healthy: Bool
        /// When it last changed between healthy and unhealthy.
        public var since: Date
        public var checkedAt: Date?
        public var detail: String
        public var latency: Duration
        public var lastError: KeystoreError?
    }

    /// The store's health as last seen.
    public struct StoreState: Sendable {
        public var reachable: Bool
        public var checkedAt: Date?
        public var lastError: String?
    }

    private let state = NIOLockedValueBox<(keystores: [String: KeystoreState], store: StoreState)>(
        ([:], StoreState(reachable: false, checkedAt: nil, lastError: "not checked yet")))
    private let now: @Sendable () -> Date

    init(now: @escaping @Sendable () -> Date) {
        self.now = now
    }

    /// Every keystore, by name.
    public var keystores: [KeystoreState] { state.withLockedValue { Array($0.keystores.values) }.sorted { $0.name < $1.name } }

    /// The store.
    public var store: StoreState { state.withLockedValue { $0.store } }

    /// The readiness inputs in one lock, without copying: whether the store answered, and
    /// whether every keystore is healthy.
    var readinessInputs: (storeReachable: Bool, keystoresHealthy: Bool) {
        state.withLockedValue { value in
            (value.store.reachable, value.keystores.values.allSatisfy(\.healthy))
        }
    }

    /// Starts tracking a set of keystores (after a reload, keystores that left are dropped).
    func track(keystores: [(name: String, type: String)]) {
        let time = now()
        state.withLockedValue { value in
            var next: [String: KeystoreState] = [:]
            for (name, type) in keystores {
                next[name] = value.keystores[name].map { var kept = $0; kept.type = type; return kept }
                    ?? KeystoreState(name: name, type: type, healthy: true, since: time, checkedAt: nil, detail: "not checked yet", latency: .zero, lastError: nil)
            }
            value.keystores = next
        }
    }

    func record(keystore name: String, health: KeystoreHealth) {
        let time = now()
        state.withLockedValue { value in
            guard var entry = value.keystores[name] else { return }
            if entry.healthy != health.isHealthy { entry.since = time }
            entry.healthy = health.isHealthy
            entry.checkedAt = time
            entry.detail = health.detail
            entry.latency = health.latency
            if let error = health.error { entry.lastError = error }
            value.keystores[name] = entry
        }
    }

    /// A failed call seen on a request path marks the keystore unhealthy at once; the next
    /// background check notices recovery.
    func recordFailure(keystore name: String, error: KeystoreError) {
        record(keystore: name, health: .unhealthy(error))
    }

    func record(storeReachable: Bool, error: String?) {
        let time = now()
        state.withLockedValue { $0.store = StoreState(reachable: storeReachable, checkedAt: time, lastError: error) }
    }

    /// Checks every keystore (concurrently) and the store once.
    public func checkAll(_ broker: Broker) async {
        await withTaskGroup(of: (String, KeystoreHealth).self) { group in
            for (name, keystore) in broker.keystores {
                group.addTask {
                    let clock = ContinuousClock()
                    let start = clock.now
                    let health = await keystore.checkHealth()
                    return (name, health.measured(clock.now - start))
                }
            }
            for await (name, health) in group { record(keystore: name, health: health) }
        }
        await checkStore(broker)
    }

    /// Checks the store once.
    public func checkStore(_ broker: Broker) async {
        do {
            try await broker.store.ping()
            record(storeReachable: true, error: nil)
        } catch {
            record(storeReachable: false, error: "\(error)")
        }
    }
}
