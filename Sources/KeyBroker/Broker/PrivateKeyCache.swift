public import Foundation

/// Decrypted private keys by organization and key-pair id, within a ``PrivateKeyCachePolicy``,
/// with one keystore call per pair however many requests miss at once (single flight).
///
/// The organization is part of the key: a lookup for another organization's pair is a miss,
/// exactly as for an unknown id, so a hit never tells a caller that a pair id of another
/// organization exists. A dropped key is released to BoringSSL, whose allocator clears memory
/// when it frees it.
public actor PrivateKeyCache {
    /// What happened on a lookup, for metrics.
    public enum Event: Sendable {
        case hit, miss, joined
    }

    private struct Key: Hashable {
        let organization: OrganizationID
        let pair: UUID
    }

    private enum Entry {
        case ready(PrivateKeyMaterial, loadedAt: Date, uses: Int, sequence: Int)
        case loading(Task<PrivateKeyMaterial, any Error>)
    }

    /// The limits in force.
    public nonisolated let policy: PrivateKeyCachePolicy
    private let now: @Sendable () -> Date
    private let onEvent: @Sendable (Event) -> Void
    private var entries: [Key: Entry] = [:]
    /// The pairs with an entry, by organization, so that one organization's keys are dropped
    /// without walking the others'.
    private var pairsByOrganization: [OrganizationID: Set<UUID>] = [:]
    /// Ready keys, oldest load first, with the sequence number they were stored under; an
    /// element whose entry is gone or newer is stale and skipped (dropping is O(1)).
    private var order: [(key: Key, sequence: Int)] = []
    private var orderStart = 0
    private var nextSequence = 0
    private var readyCount = 0
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
    public var count: Int { readyCount }

    /// The key of pair `id` of `organization` when it is cached and within its limits (a
    /// hit, counted as a use), else `nil`: then the caller reads the pair and calls
    /// ``key(for:of:load:)``.
    public func cachedKey(for id: UUID, of organization: OrganizationID) -> PrivateKeyMaterial? {
        guard policy.isEnabled else { return nil }
        dropExpired()
        let key = Key(organization: organization, pair: id)
        guard case .ready(let material, let loadedAt, let uses, let sequence) = entries[key],
            now().timeIntervalSince(loadedAt) < policy.maxAge.seconds
        else { return nil }
        onEvent(.hit)
        if uses + 1 >= policy.maxUses {
            drop(key)
        } else {
            entries[key] = .ready(material, loadedAt: loadedAt, uses: uses + 1, sequence: sequence)
        }
        return material
    }

    /// The key of pair `id` of `organization`, from the cache or from `load` (called once for
    /// concurrent misses).
    /// - Parameter keep: asked when the load finishes whether the key may be kept (not for an
    ///   organization revoked meanwhile).
    public func key(
        for id: UUID,
        of organization: OrganizationID,
        keep: @Sendable () -> Bool = { true },
        load: @escaping @Sendable () async throws(BrokerError) -> PrivateKeyMaterial
    ) async throws(BrokerError) -> PrivateKeyMaterial {
        guard policy.isEnabled else {
            onEvent(.miss)
            return try await load()
        }
        if let material = cachedKey(for: id, of: organization) { return material }
        let id = Key(organization: organization, pair: id)
        switch entries[id] {
        case .loading(let task):
            onEvent(.joined)
            return try await Self.value(of: task)
        case .ready, nil:
            onEvent(.miss)
            drop(id)
            let task = Task<PrivateKeyMaterial, any Error> { try await load() }
            entries[id] = .loading(task)
            pairsByOrganization[organization, default: []].insert(id.pair)
            let started = generation
            do {
                let key = try await Self.value(of: task)
                if generation == started, keep() {
                    store(key, for: id)
                } else if generation == started, case .loading = entries[id] {
                    forget(id)
                }
                return key
            } catch {
                if generation == started, case .loading = entries[id] { forget(id) }
                throw error
            }
        }
    }

    /// Drops every decrypted key of `organization` (revoked, reconfigured, or its keystore
    /// denied access), at once: O(its entries).
    public func removeAll(of organization: OrganizationID) {
        for pair in pairsByOrganization[organization] ?? [] { drop(Key(organization: organization, pair: pair)) }
        pairsByOrganization[organization] = nil
        // A load in flight now finishes for its callers but is not kept.
        generation += 1
    }

    /// Drops every decrypted key (on reload, so revocations take effect at once).
    public func removeAll() {
        // Loads in flight finish for their callers but are not kept (see `generation`).
        entries.removeAll()
        pairsByOrganization.removeAll()
        order.removeAll()
        orderStart = 0
        readyCount = 0
        generation += 1
    }

    /// Releases keys older than `maxAge` at once, so that the limit bounds how long a key
    /// stays in memory, not only how long it is reused.
    private func dropExpired() {
        let time = now()
        while let (key, loadedAt) = oldestReady(), time.timeIntervalSince(loadedAt) >= policy.maxAge.seconds {
            drop(key)
        }
    }

    /// The oldest ready entry, skipping stale places in `order`.
    private func oldestReady() -> (Key, Date)? {
        while orderStart < order.count {
            let place = order[orderStart]
            if case .ready(_, let loadedAt, _, let sequence) = entries[place.key], sequence == place.sequence {
                return (place.key, loadedAt)
            }
            orderStart += 1
        }
        compactOrder()
        return nil
    }

    private func store(_ material: PrivateKeyMaterial, for key: Key) {
        guard policy.maxUses > 1 else {
            forget(key)
            return
        }
        nextSequence += 1
        entries[key] = .ready(material, loadedAt: now(), uses: 1, sequence: nextSequence)
        pairsByOrganization[key.organization, default: []].insert(key.pair)
        readyCount += 1
        order.append((key, nextSequence))
        if order.count - orderStart > 2 * readyCount + 1024 { discardStalePlaces() }
        while readyCount > policy.maxEntries, let (oldest, _) = oldestReady() {
            drop(oldest)
        }
    }

    private func drop(_ key: Key) {
        if case .ready = entries[key] { readyCount -= 1 }
        forget(key)
        if orderStart > 1024, orderStart * 2 > order.count { compactOrder() }
    }

    /// Removes `key`'s entry and its place in the index by organization.
    private func forget(_ key: Key) {
        entries[key] = nil
        if var pairs = pairsByOrganization[key.organization], pairs.remove(key.pair) != nil {
            pairsByOrganization[key.organization] = pairs.isEmpty ? nil : pairs
        }
    }

    /// Keeps only the places of ready entries, so keys dropped out of order (by `maxUses`) do
    /// not let `order` grow beyond a constant factor of the entries held.
    private func discardStalePlaces() {
        order = order[orderStart...].filter { place in
            if case .ready(_, _, _, let sequence) = entries[place.key] { return sequence == place.sequence }
            return false
        }
        orderStart = 0
    }

    /// Forgets the places before `orderStart`, so `order` does not grow without bound.
    private func compactOrder() {
        order.removeFirst(orderStart)
        orderStart = 0
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
