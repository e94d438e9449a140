import Synchronization

/// Bounds the calls in flight to one keystore.
///
/// A KMS that answers slowly holds every call made to it until its deadline. Unbounded, a
/// burst of unwraps for one slow customer key would hold as many connections, tasks and
/// buffers as there are requests. Beyond ``Settings/maxCalls`` a call waits for a free slot
/// at most ``Settings/maxWait`` (and never past its own deadline), then is refused as busy.
final class KMSCallLimiter: Sendable {
    struct Settings: Sendable, Hashable {
        /// Calls in flight at most.
        var maxCalls: Int
        /// How long a call waits for a slot.
        var maxWait: Duration

        static let `default` = Settings(maxCalls: 32, maxWait: .seconds(1))
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var inFlight = 0
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    let settings: Settings
    private let state = Mutex(State())

    init(settings: Settings) {
        self.settings = settings
    }

    /// Takes a slot, waiting until `deadline` at most.
    /// - Returns: `false` when none came free in time (or the caller was cancelled); a `true`
    ///   must be paired with ``release()``.
    func acquire(waitingUntil deadline: ContinuousClock.Instant) async -> Bool {
        let id: UInt64? = state.withLock { state in
            if state.inFlight < settings.maxCalls {
                state.inFlight += 1
                return nil
            }
            state.nextID &+= 1
            return state.nextID
        }
        guard let id else { return true }
        guard deadline > .now else { return false }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let queued: Bool? = state.withLock { state in
                    // A slot may have come free since the check above.
                    if state.inFlight < settings.maxCalls {
                        state.inFlight += 1
                        return false
                    }
                    // Cancelled before it could queue: the handler found nothing to cancel.
                    if Task.isCancelled { return nil }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return true
                }
                guard let queued else { return continuation.resume(returning: false) }
                guard queued else { return continuation.resume(returning: true) }
                Task {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    self.giveUp(id)
                }
            }
        } onCancel: {
            giveUp(id)
        }
    }

    /// Returns a slot: to the longest waiter, or to the pool.
    func release() {
        let next: Waiter? = state.withLock { state in
            if state.waiters.isEmpty {
                state.inFlight = max(0, state.inFlight - 1)
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.continuation.resume(returning: true)
    }

    /// Calls in flight now (status, tests).
    var inFlight: Int { state.withLock { $0.inFlight } }

    /// A waiter's time is up (or it was cancelled): it leaves the queue with `false`, unless a
    /// slot reached it first.
    private func giveUp(_ id: UInt64) {
        let waiter: Waiter? = state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: false)
    }
}
