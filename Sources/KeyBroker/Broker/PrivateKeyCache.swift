public import Foundation

/// Decrypted private keys by key-pair id, within a ``PrivateKeyCachePolicy``, with one
/// keystore call per pair however many requests miss at once (single flight).
///
/// A dropped key is released to BoringSSL, whose allocator clears memory when it frees it.
public actor PrivateKeyCache {
    /// What happened on a lookup, for metrics.
    public enum Event: Sendable {
        case hit, miss, joined
    }

    private enum Entry {
        case ready(PrivateKeyMaterial, loadedAt: Date, uses: Int)
        case loading(Task<PrivateKeyMaterial, any Error>)
    }

    /// The limits in force.
    public nonisolated let policy: PrivateKeyCachePolicy
    private let now: @Sendable () -> Date
    private let onEvent: @Sendable (Event) -> Void
    private var entries: [UUID: Entry] = [:]
    /// Ids of ready keys, oldest load first.
    private var order: [UUID] = []
    /// Bumped by ``removeAll()``, so that a decryption in flight then is not stored afterwards.
    private var generation = 0

    /// Creates a cache.
    /// - Parameters:
    ///   - policy: the limits.
    ///   - now: the clock (tests inject one).
    ///   - onEvent: called on every lookup (metrics).
    public init(
        policy: PrivateKeyCachePolicy,
        now: @escaping @Sendable () -> Date = { Date() },
        onEvent: @escaping @Sendable (Event) -> Void = { _ in }
    ) {
        self.policy = policy
        self.now = now
        self.onEvent = onEvent
    }

    /// How many decrypted keys are held.
    public var count: Int { entries.values.count(where: { if case .ready = $0 { true } else { false } }) }

    /// The key of pair `id`, from the cache or from `load` (called once for concurrent misses).
    public func key(
        for id: UUID,
        load: @escaping @Sendable () async throws(BrokerError) -> PrivateKeyMaterial
    ) async throws(BrokerError) -> PrivateKeyMaterial {
        guard policy.isEnabled else {
            onEvent(.miss)
            return try await load()
        }
        dropExpired()
        switch entries[id] {
        case .ready(let key, let loadedAt, let uses) where now().timeIntervalSince(loadedAt) < policy.maxAge.seconds:
            onEvent(.hit)
            if uses + 1 >= policy.maxUses {
                drop(id)
            } else {
                entries[id] = .ready(key, loadedAt: loadedAt, uses: uses + 1)
            }
            return key
        case .loading(let task):
            onEvent(.joined)
            return try await Self.value(of: task)
        case .ready, nil:
            onEvent(.miss)
            drop(id)
            let task = Task<PrivateKeyMaterial, any Error> { try await load() }
            entries[id] = .loading(task)
            let started = generation
            do {
                let key = try await Self.value(of: task)
                if generation == started { store(key, for: id) }
                return key
            } catch {
                if generation == started, case .loading = entries[id] { entries[id] = nil }
                throw error
            }
        }
    }

    /// Drops every decrypted key (on reload, so revocations take effect at once).
    public func removeAll() {
        // Loads in flight finish for their callers but are not kept (see `generation`).
        entries.removeAll()
        order.removeAll()
        generation += 1
    }

    /// Releases keys older than `maxAge` at once, so that the limit bounds how long a key
    /// stays in memory, not only how long it is reused.
    private func dropExpired() {
        let time = now()
        while let oldest = order.first, case .ready(_, let loadedAt, _) = entries[oldest],
            time.timeIntervalSince(loadedAt) >= policy.maxAge.seconds
        {
            drop(oldest)
        }
    }

    private func store(_ key: PrivateKeyMaterial, for id: UUID) {
        entries[id] = policy.maxUses > 1 ? .ready(key, loadedAt: now(), uses: 1) : nil
        guard entries[id] != nil else { return }
        order.append(id)
        while order.count > policy.maxEntries, let oldest = order.first {
            drop(oldest)
        }
    }

    private func drop(_ id: UUID) {
        entries[id] = nil
        order.removeAll { $0 == id }
    }

    private static func value(of task: Task<PrivateKeyMaterial, any Error>) async throws(BrokerError) -> PrivateKeyMaterial {
        do {
            return try await task.value
        } catch let error as BrokerError {
            throw error
        } catch {
            throw BrokerError(.keystoreFailed, "decrypting the private key was cancelled: \(error)")
        }
    }
}
