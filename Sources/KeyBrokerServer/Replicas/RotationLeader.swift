import Foundation
public import KeyBroker
import Logging
import NIOConcurrencyHelpers

/// The rotation lease of this replica: one replica among those that share a store runs
/// scheduled rotations. The lease is a row in the store with an expiry on the *store's* clock
/// (replicas' clocks may disagree) and an epoch raised each time it changes hands; every
/// rotation write carries the epoch (``LeaseFence``) and the store refuses it when the lease
/// moved on, so a leader that stalled past its lease cannot write even if it does not know yet.
///
/// The lease is renewed every third of its length. A replica that cannot reach the store
/// stops counting itself leader when the lease it last renewed would have run out; another
/// takes over when the lease expires by the store's clock: within twice the lease after the
/// leader died. A replica stopping gracefully gives the lease up at once.
public final class RotationLeader: Sendable {
    private struct State {
        var fence: LeaseFence?
        var validUntil: ContinuousClock.Instant = .now
    }

    let store: any KeyPairStore
    /// Unique per process run: a restarted replica is a new holder with a new epoch.
    public let holder: String
    let lease: @Sendable () -> Duration
    let logger: Logger
    let onElected: @Sendable () -> Void
    private let state = NIOLockedValueBox(State())

    init(
        store: any KeyPairStore,
        instanceId: String,
        lease: @escaping @Sendable () -> Duration,
        logger: Logger,
        onElected: @escaping @Sendable () -> Void
    ) {
        self.store = store
        self.holder = "\(instanceId)/\(UUID().uuidString.lowercased().prefix(8))"
        self.lease = lease
        self.logger = logger
        self.onElected = onElected
    }

    /// The fence to write with while this replica holds the lease, else `nil`.
    public var fence: LeaseFence? {
        state.withLockedValue { state in state.validUntil > .now ? state.fence : nil }
    }

    /// Whether this replica runs scheduled rotations now.
    public var isLeader: Bool { fence != nil }

    /// Takes or renews the lease once.
    /// - Parameter announce: wake the scheduler when this takes the lease (not when the
    ///   scheduler itself asks, at the start of a pass).
    public func renewOnce(announce: Bool = true) async {
        let length = lease()
        let started = ContinuousClock.now
        do {
            let grant = try await store.acquireLease(LeaseFence.rotationLease, holder: holder, for: length)
            let wasLeader = isLeader
            state.withLockedValue { state in
                if let grant {
                    state.fence = grant.fence
                    // Counted from before the call: the store's expiry is later than this.
                    state.validUntil = started + length
                } else {
                    state.fence = nil
                }
            }
            if let grant, grant.isNew || !wasLeader {
                logger.notice("this replica now runs scheduled rotations", metadata: ["lease": "\(grant.fence)"])
                if announce { onElected() }
            } else if grant == nil, wasLeader {
                logger.warning("this replica lost the rotation lease to another replica")
            }
        } catch  where !Task.isCancelled {
            logger.warning(
                "cannot renew the rotation lease; rotations stop here until the store answers",
                metadata: ["error": "\(error.message)"]
            )
        } catch {
            // Stopping: the failed call was cut short, not refused by the store.
        }
    }

    /// Renews the lease when less than two thirds of it are left (a long pass keeps it
    /// without waiting for the renewal loop).
    public func renewIfDue() async {
        let left = state.withLockedValue { $0.validUntil - .now }
        if left < lease() * 2 / 3 { await renewOnce() }
    }

    /// Renews until cancelled, then gives the lease up.
    public func run() async {
        while !Task.isCancelled {
            await renewOnce()
            try? await Task.sleep(for: lease() / 3)
        }
        await release()
    }

    /// Gives the lease up (graceful shutdown), so that another replica takes over at once.
    public func release() async {
        guard state.withLockedValue({ $0.fence }) != nil else { return }
        state.withLockedValue { $0.fence = nil }
        // Unstructured: the shutdown that cancelled the caller must not cancel this last write.
        let (store, holder) = (self.store, self.holder)
        await Task { try? await store.releaseLease(LeaseFence.rotationLease, holder: holder) }.value
    }
}
