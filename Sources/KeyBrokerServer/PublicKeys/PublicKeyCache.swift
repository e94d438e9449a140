package import KeyBroker
import NIOConcurrencyHelpers

/// The current public-key answer of each organization read lately, in memory, bounded by
/// entries and bytes: the one call on the encryption path then costs no store round trip.
///
/// - **Eviction** is CLOCK, the usual approximation of LRU: a hit sets the entry's reference
///   bit (no list to relink under the lock); making room sweeps a hand over the slots,
///   clearing set bits and evicting the first entry whose bit is clear.
/// - **Coherence.** Every write of this process that changes what an organization's answer
///   would be (a new current pair, a revocation, a key configuration) goes through
///   ``invalidate(_:)`` before its own request is answered (``InstrumentedStore``); the
///   change follower does the same for other replicas' writes. A read that missed takes a
///   ``ticket(for:)`` before it reads the store, and its ``insert(_:for:ticket:)`` is dropped
///   when an invalidation of that organization came in between, so a read that raced a
///   generation can never put the old pair back. Tickets are kept per stripe (a hash of the
///   organization into 4,096 counters), so their memory does not grow with organizations; a
///   ticket spoiled by another organization in its stripe only costs a miss.
public final class PublicKeyCache: Sendable {
    /// The limits (`server.publicKeyCache`).
    public struct Limits: Sendable, Hashable {
        /// At most this many organizations.
        public var maxEntries: Int
        /// At most about this many bytes.
        public var maxBytes: Int

        /// 100,000 organizations (about 70 MiB by the cache's count with RSA-3072 pairs;
        /// docs/performance.md has the resident memory), within 256 MiB.
        public static let `default` = Limits(maxEntries: 100_000, maxBytes: 256 * 1024 * 1024)

        public init(maxEntries: Int, maxBytes: Int) {
            self.maxEntries = maxEntries
            self.maxBytes = maxBytes
        }
    }

    /// A promise that no invalidation of an organization came after it was taken.
    package struct Ticket: Sendable, Equatable {
        fileprivate let stripe: Int
        fileprivate let sequence: UInt64
    }

    private struct Slot {
        var organization: OrganizationID
        var entry: CachedPublicKey
        var referenced: Bool
    }

    private struct State {
        var index: [OrganizationID: Int] = [:]
        var slots: [Slot?] = []
        var free: [Int] = []
        var hand = 0
        var bytes = 0
        var sequence: UInt64 = 0
        var stripes = [UInt64](repeating: 0, count: PublicKeyCache.stripeCount)
    }

    static let stripeCount = 4096
    let limits: Limits
    private let state = NIOLockedValueBox(State())
    private let metrics: ServerMetrics?

    /// Creates an empty cache.
    public init(limits: Limits = .default, metrics: ServerMetrics? = nil) {
        self.limits = limits
        self.metrics = metrics
    }

    /// How many organizations it holds.
    public var count: Int { state.withLockedValue { $0.index.count } }
    /// About how many bytes it holds.
    public var bytes: Int { state.withLockedValue { $0.bytes } }

    /// The organization's entry, or `nil` (counted as a hit or, with `countingMisses`, a miss:
    /// a caller that falls back to a lookup that counts its own passes `false`).
    package func lookup(_ organization: OrganizationID, countingMisses: Bool = true) -> CachedPublicKey? {
        let entry = state.withLockedValue { state -> CachedPublicKey? in
            guard let slot = state.index[organization], let found = state.slots[slot] else { return nil }
            if !found.referenced { state.slots[slot]?.referenced = true }
            return found.entry
        }
        if entry != nil || countingMisses { metrics?.publicKeyCache(hit: entry != nil) }
        return entry
    }

    /// Reads the organization's current answer from `broker`'s store and keeps it, unless an
    /// invalidation came during the read: the ticket is taken before it, so a read that raced
    /// a generation cannot put the older pair back after the generation's answer.
    /// - Returns: the answer, and whether it was kept.
    /// - Throws: what ``KeyBroker/Broker/currentKeyPair(for:)`` and ``CachedPublicKey/init(_:)`` throw.
    package func fill(
        _ organization: OrganizationID,
        from broker: Broker
    ) async throws -> (entry: CachedPublicKey, kept: Bool) {
        let ticket = ticket(for: organization)
        let entry = try CachedPublicKey(try await broker.currentKeyPair(for: organization))
        return (entry, insert(entry, for: organization, ticket: ticket))
    }

    /// Taken before a read of the store that may fill the organization's entry.
    package func ticket(for organization: OrganizationID) -> Ticket {
        let stripe = Self.stripe(of: organization)
        return Ticket(stripe: stripe, sequence: state.withLockedValue { $0.stripes[stripe] })
    }

    /// Keeps `entry` for `organization`, unless an invalidation came after `ticket`; evicts
    /// what the limits need.
    /// - Returns: `false` when the ticket was spoiled (the entry was not kept).
    @discardableResult
    package func insert(_ entry: CachedPublicKey, for organization: OrganizationID, ticket: Ticket) -> Bool {
        guard limits.maxEntries > 0, entry.cost <= limits.maxBytes else { return true }
        let (kept, evicted, entries, bytes) = state.withLockedValue { state -> (Bool, Int, Int, Int) in
            guard state.stripes[ticket.stripe] == ticket.sequence else { return (false, 0, state.index.count, state.bytes) }
            if let slot = state.index[organization], let old = state.slots[slot] {
                state.bytes += entry.cost - old.entry.cost
                state.slots[slot] = Slot(organization: organization, entry: entry, referenced: true)
            } else {
                let slot = state.free.popLast() ?? state.slots.count
                if slot == state.slots.count { state.slots.append(nil) }
                state.slots[slot] = Slot(organization: organization, entry: entry, referenced: false)
                state.index[organization] = slot
                state.bytes += entry.cost
            }
            var evicted = 0
            while state.index.count > limits.maxEntries || state.bytes > limits.maxBytes {
                guard Self.evictOne(&state, sparing: organization) else { break }
                evicted += 1
            }
            return (true, evicted, state.index.count, state.bytes)
        }
        metrics?.publicKeyCache(evictions: evicted, entries: entries, bytes: bytes)
        return kept
    }

    /// Drops the organization's entry and spoils the tickets taken for it so far.
    /// - Returns: whether the organization had an entry.
    @discardableResult
    package func invalidate(_ organization: OrganizationID) -> Bool {
        let stripe = Self.stripe(of: organization)
        let (removed, entries, bytes) = state.withLockedValue { state -> (Bool, Int, Int) in
            state.sequence &+= 1
            state.stripes[stripe] = state.sequence
            guard let slot = state.index.removeValue(forKey: organization), let old = state.slots[slot] else {
                return (false, state.index.count, state.bytes)
            }
            state.bytes -= old.entry.cost
            state.slots[slot] = nil
            state.free.append(slot)
            return (true, state.index.count, state.bytes)
        }
        metrics?.publicKeyCache(evictions: 0, entries: entries, bytes: bytes)
        return removed
    }

    /// Drops every entry and spoils every ticket (the change feed was missed, a restart of
    /// the follower).
    package func removeAll() {
        state.withLockedValue { state in
            let sequence = state.sequence &+ 1
            state = State()
            state.sequence = sequence
            state.stripes = [UInt64](repeating: sequence, count: Self.stripeCount)
        }
        metrics?.publicKeyCache(evictions: 0, entries: 0, bytes: 0)
    }

    private static func stripe(of organization: OrganizationID) -> Int {
        organization.hashValue & (stripeCount - 1)
    }

    /// The clock: clears reference bits until it finds an entry without one, and evicts it.
    /// `sparing` is the entry just inserted (never its own victim).
    private static func evictOne(_ state: inout State, sparing: OrganizationID) -> Bool {
        guard state.index.count > 1 else { return false }
        // Two sweeps clear every bit, so the loop ends within them.
        for _ in 0..<(2 * state.slots.count + 1) {
            if state.hand >= state.slots.count { state.hand = 0 }
            let slot = state.hand
            state.hand += 1
            guard let candidate = state.slots[slot], candidate.organization != sparing else { continue }
            if candidate.referenced {
                state.slots[slot]?.referenced = false
                continue
            }
            state.index.removeValue(forKey: candidate.organization)
            state.bytes -= candidate.entry.cost
            state.slots[slot] = nil
            state.free.append(slot)
            return true
        }
        return false
    }
}
