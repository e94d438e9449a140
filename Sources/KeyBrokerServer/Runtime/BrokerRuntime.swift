public import Foundation
public import KeyBroker
public import Logging
import NIOConcurrencyHelpers

/// The broker in force, swapped whole on reload: a request sees the old broker or the new
/// one, never a mix.
public final class BrokerRuntime: Sendable {
    /// Builds a configuration from the file (the executable supplies one with its plugins).
    public typealias ConfigSource = @Sendable () throws(ConfigError) -> LoadedConfig

    /// The broker and the authenticator for its tokens, swapped together.
    private let current: NIOLockedValueBox<RuntimeSnapshot>
    private let reloading = NIOLockedValueBox(false)
    let source: ConfigSource
    let store: any KeyPairStore
    /// The private-key cache's limits, as read at start (they take effect at a restart). Each
    /// broker gets its own cache: a decryption that a request on an old broker finishes after
    /// a reload lands in the old broker's cache, never in the new one's.
    let cachePolicy: PrivateKeyCachePolicy
    /// Joins concurrent generations for one organization, across reloads.
    let generations = GenerationCoalescer()
    let metrics: ServerMetrics
    /// The health of keystores and store, from background checks.
    public let monitor: HealthMonitor
    /// The current pairs found unreadable so far.
    public let corrupt = CorruptRecordLog()
    /// The revoked organizations, shared by every broker across reloads and kept current by
    /// the change follower.
    public let revocations: RevocationList
    /// The store's change feed as it was before the revocations were read: where the change
    /// follower starts, so that no change made meanwhile is missed.
    let changesReadThrough: Int64
    /// The reload changes this process wrote to the feed (it does not reload again for them).
    private let announcedReloads = NIOLockedValueBox<Set<Int64>>([])

    /// Whether the reload change `sequence` is this process's own (and forgets it).
    func isOwnReload(_ sequence: Int64) -> Bool {
        announcedReloads.withLockedValue { $0.remove(sequence) != nil }
    }
    let now: @Sendable () -> Date
    let logger: Logger
    /// The listener's settings at start and the TLS certificate it serves now.
    public let listener: ListenerState
    /// The current public-key answers, kept coherent by the store's writes here
    /// (``InstrumentedStore``) and by the change follower for other replicas'.
    public let publicKeys: PublicKeyCache

    /// The broker and tokens in force now, in one read: what a request is served with.
    public var snapshot: RuntimeSnapshot { current.withLockedValue { $0 } }

    /// The broker in force now (for background work; requests use ``snapshot``).
    public var broker: Broker { snapshot.broker }

    /// Opens the first broker.
    /// - Parameters:
    ///   - loaded: the configuration read at start.
    ///   - source: reads the configuration again on reload.
    ///   - store: the key-pair store (it cannot change on reload).
    ///   - metrics: where keystore calls and cache lookups are counted.
    ///   - now: the clock.
    public init(
        loaded: LoadedConfig,
        source: @escaping ConfigSource,
        store: any KeyPairStore,
        metrics: ServerMetrics,
        now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) async throws {
        self.source = source
        self.metrics = metrics
        self.now = now
        self.logger = logger
        cachePolicy = loaded.config.privateKeyCache
        listener = ListenerState(started: loaded.config.server)
        monitor = HealthMonitor(now: now, logger: logger)
        publicKeys = PublicKeyCache(limits: loaded.config.server.publicKeyCache, metrics: metrics)
        self.store = InstrumentedStore(inner: store, monitor: monitor, corrupt: corrupt, publicKeys: publicKeys)
        do {
            changesReadThrough = try await self.store.latestChange()
            revocations = try await RevocationList.load(from: self.store)
        } catch {
            throw BrokerError.storage(error)
        }
        let broker = try await Self.open(
            loaded,
            store: self.store,
            cachePolicy: cachePolicy,
            generations: generations,
            revocations: revocations,
            metrics: metrics,
            monitor: monitor,
            now: now,
            logger: logger
        )
        current = NIOLockedValueBox(RuntimeSnapshot(broker: broker))
        monitor.track(keystores: loaded.config.keystores.values.map { ($0.name, $0.type) })
    }

    private static func open(
        _ loaded: LoadedConfig,
        store: any KeyPairStore,
        cachePolicy: PrivateKeyCachePolicy,
        generations: GenerationCoalescer,
        revocations: RevocationList,
        metrics: ServerMetrics,
        monitor: HealthMonitor,
        now: @escaping @Sendable () -> Date,
        logger: Logger
    ) async throws -> Broker {
        let instrumented = loaded.keystores.mapValues { keystore -> any Keystore in
            InstrumentedKeystore(inner: keystore, metrics: metrics) { [weak monitor] error in
                monitor?.recordFailure(keystore: keystore.name, error: error)
            }
        }
        let wrapped = LoadedConfig(
            config: loaded.config,
            keystores: instrumented,
            warnings: loaded.warnings,
            tenantKeystores: loaded.tenantKeystores
        )
        return try await Broker.open(
            wrapped,
            store: store,
            now: now,
            cache: cachePolicy.isEnabled ? PrivateKeyCache(policy: cachePolicy, now: now, onEvent: { metrics.cache($0) }) : nil,
            generations: generations,
            revocations: revocations,
            logger: logger
        )
    }

    /// The outcome of a reload.
    public struct ReloadResult: Sendable {
        /// The operator's organizations whose keystore changed: they get a new pair from the
        /// new keystore.
        public let changedOrganizations: [OrganizationID]
        /// When `defaults.keystore` changed: the organizations following defaults get a new
        /// pair from the new default keystore.
        public let defaultsMoved: DefaultsMove?

        /// A change of `defaults.keystore`.
        public struct DefaultsMove: Sendable {
            /// The keystore before and after.
            public let from: String
            public let to: String
            /// How many current pairs the old default wrapped (the organizations that move,
            /// and any of the operator's organizations that name it).
            public let currentPairs: Int
        }
        /// Warnings from the new configuration.
        public let warnings: [ConfigDiagnostic]
    }

    /// Reads and validates the configuration again, and swaps it in only when all of it is
    /// valid; on any error the old configuration stays in force.
    /// - Parameter beforeSwap: runs once the new configuration is ready and before it takes
    ///   effect (the audit record); when it throws, the old configuration stays.
    /// - Throws: ``ConfigError`` with every finding, ``BrokerError`` when the store fails, or
    ///   what `beforeSwap` threw.
    /// - Parameter announce: whether to tell the other replicas sharing the store to reload
    ///   theirs (not when this reload follows another replica's).
    public func reload(announce: Bool = true, beforeSwap: () async throws -> Void = {}) async throws -> ReloadResult {
        guard
            reloading.withLockedValue({ busy in
                defer { busy = true }
                return !busy
            })
        else {
            throw ReloadInProgress()
        }
        defer { reloading.withLockedValue { $0 = false } }
        // Reading the file may block (a slow mount): off the cooperative pool.
        let source = self.source
        let loaded = try await BlockingWork.io { () throws(ConfigError) in try source() }
        let old = broker
        guard loaded.config.storage == old.config.storage else {
            throw ConfigError(
                at: nil,
                "the storage settings changed; a reload cannot move the database: restart keybroker to use the new storage"
            )
        }
        if loaded.config.privateKeyCache != cachePolicy {
            logger.warning("privateKeyCache settings changed; they take effect at the next restart")
        }
        for note in listener.restartNeeded(for: loaded.config.server) { logger.warning("\(note)") }
        if loaded.config.server.publicKeyCache != publicKeys.limits {
            logger.warning("server.publicKeyCache settings changed; they take effect at the next restart")
        }
        let new = try await Self.open(
            loaded,
            store: store,
            cachePolicy: cachePolicy,
            generations: generations,
            revocations: revocations,
            metrics: metrics,
            monitor: monitor,
            now: now,
            logger: logger
        )
        try await beforeSwap()
        current.withLockedValue { $0 = RuntimeSnapshot(broker: new) }
        if listener.adopt(loaded.config.server.tls), let tls = listener.tlsInUse {
            logger.notice(
                "TLS certificate reloaded: new connections use '\(tls.certificate.path)', valid until \(tls.notValidAfter.formatted(.iso8601))"
            )
        }
        // The new broker starts with an empty cache of its own; the old one's keys are
        // dropped now, not when its last request ends, so that revocations take effect at once.
        await old.cache?.removeAll()
        if announce {
            do {
                let sequence = try await store.recordChange(.reload, organization: nil)
                announcedReloads.withLockedValue { _ = $0.insert(sequence) }
            } catch {
                logger.warning("reloaded here, but could not tell the other replicas to reload theirs: \(error.message)")
            }
        }
        monitor.track(keystores: loaded.config.keystores.values.map { ($0.name, $0.type) })
        // The operator's organizations are listed; those following defaults are counted (there
        // may be a million), from the store's usage counts.
        let organizations = Set(old.config.organizations.keys).union(new.config.organizations.keys)
        let changed = organizations.filter { old.policy(for: $0).keystore != new.policy(for: $0).keystore }.sorted()
        var defaultsMoved: ReloadResult.DefaultsMove?
        if old.config.defaults.keystore != new.config.defaults.keystore {
            let usage = (try? await store.keystoreUsage()) ?? []
            defaultsMoved = ReloadResult.DefaultsMove(
                from: old.config.defaults.keystore,
                to: new.config.defaults.keystore,
                currentPairs: usage.filter { $0.keystoreName == old.config.defaults.keystore }.reduce(0) { $0 &+ $1.currentPairs }
            )
        }
        let listenChanged = (loaded.config.server.host, loaded.config.server.port) != (old.config.server.host, old.config.server.port)
        for (setting, changedSetting) in [("server.listen", listenChanged), ("audit", loaded.config.audit != old.config.audit)]
        where changedSetting {
            logger.warning("\(setting) changed; it takes effect at the next restart")
        }
        return ReloadResult(changedOrganizations: changed, defaultsMoved: defaultsMoved, warnings: loaded.warnings)
    }
}
