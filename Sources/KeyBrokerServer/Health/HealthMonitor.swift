public import Foundation
public import KeyBroker
import Logging
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
        /// Whether the last check (or request) found it usable.
        public var reachable: Bool
        /// Whether SQLite reported the database file damaged. Damage does not heal, so this
        /// stays set until a restart, even if a later check happens to read intact pages.
        public var damaged: Bool
        public var checkedAt: Date?
        /// The last failure, for operators (it may name the database file).
        public var lastError: StoreError?

        /// Whether requests can be served from it.
        public var usable: Bool { reachable && !damaged }
    }

    private let state = NIOLockedValueBox<(keystores: [String: KeystoreState], store: StoreState)>(
        ([:], StoreState(reachable: false, damaged: false, checkedAt: nil, lastError: StoreError(.unavailable, "not checked yet")))
    )
    private let now: @Sendable () -> Date
    private let logger: Logger

    init(now: @escaping @Sendable () -> Date, logger: Logger) {
        self.now = now
        self.logger = logger
    }

    /// Every keystore, by name.
    public var keystores: [KeystoreState] { state.withLockedValue { Array($0.keystores.values) }.sorted { $0.name < $1.name } }

    /// The store.
    public var store: StoreState { state.withLockedValue { $0.store } }

    /// The readiness inputs in one lock, without copying: whether the store answered, and
    /// whether every keystore is healthy.
    var readinessInputs: (storeReachable: Bool, keystoresHealthy: Bool) {
        state.withLockedValue { value in
            (value.store.usable, value.keystores.values.allSatisfy(\.healthy))
        }
    }

    /// Starts tracking a set of keystores (after a reload, keystores that left are dropped).
    func track(keystores: [(name: String, type: String)]) {
        let time = now()
        state.withLockedValue { value in
            var next: [String: KeystoreState] = [:]
            for (name, type) in keystores {
                next[name] =
                    value.keystores[name].map {
                        var kept = $0
                        kept.type = type
                        return kept
                    }
                    ?? KeystoreState(
                        name: name,
                        type: type,
                        healthy: true,
                        since: time,
                        checkedAt: nil,
                        detail: "not checked yet",
                        latency: .zero,
                        lastError: nil
                    )
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

    /// Records the outcome of a store check, or a store failure seen on a request path
    /// (which makes the server unready at once, as keystore failures mark keystores).
    func record(store error: StoreError?) {
        let time = now()
        let (wasUsable, isUsable) = state.withLockedValue { value -> (Bool, Bool) in
            let before = value.store.usable
            value.store.reachable = error == nil
            value.store.damaged = value.store.damaged || error?.kind == .damaged
            value.store.checkedAt = time
            if let error { value.store.lastError = error }
            return (before, value.store.usable)
        }
        if wasUsable, !isUsable, let error {
            logger.error(
                "the key-pair store is unusable; readiness is unavailable (503) until it recovers",
                metadata: ["error": "\(error)"]
            )
        } else if !wasUsable, isUsable {
            logger.notice("the key-pair store is usable again")
        }
    }

    /// A store failure seen on a request path: only failures of the whole store count (one
    /// corrupt record does not make the server unready).
    func recordFailure(store error: StoreError) {
        guard error.affectsWholeStore else { return }
        record(store: error)
    }

    /// The longest a keystore's health check may take, whatever the interval.
    public static let maximumCheckTime = Duration.seconds(10)

    /// Checks every keystore (concurrently) and the store once.
    /// - Parameter limit: how long a keystore's check may take (the health-check interval), at
    ///   most ``maximumCheckTime``; one that has not answered by then is unhealthy with
    ///   `Timeout`, and the loop goes on without it. A backend that trickles its answer must
    ///   not keep readiness at its last "ok".
    public func checkAll(_ broker: Broker, within limit: Duration = maximumCheckTime) async {
        let timeout = min(limit, Self.maximumCheckTime)
        await withTaskGroup(of: (String, KeystoreHealth).self) { group in
            for (name, keystore) in broker.keystores {
                group.addTask {
                    let clock = ContinuousClock()
                    let start = clock.now
                    let health = await Deadline.run(within: timeout) { await keystore.checkHealth() }
                    guard let health else {
                        let error = KeystoreError(
                            .unreachable,
                            keystore: name,
                            message:
                                "the health check did not finish within \(timeout.readable) (the health check interval, at most \(Self.maximumCheckTime.readable))",
                            backendCode: "Timeout",
                            hint: "the backend accepts the connection but answers slowly or not at all; check it and the network to it",
                            backendAnswered: false
                        )
                        return (name, KeystoreHealth.unhealthy(error).measured(clock.now - start))
                    }
                    return (name, health.measured(clock.now - start))
                }
            }
            for await (name, health) in group {
                // A check refused because the keystore has as many calls in flight as it
                // allows says nothing of its health (and busy is no reason to leave the pool).
                if health.error?.kind == .busy { continue }
                record(keystore: name, health: health)
            }
        }
        await checkStore(broker)
    }

    /// Checks the store once.
    public func checkStore(_ broker: Broker) async {
        do {
            try await broker.store.check()
            record(store: nil)
        } catch {
            record(store: error)
        }
    }
}
