import Synchronization

/// Bounds work in time without trusting it to stop.
///
/// Cancellation in Swift is cooperative: a task group or `withTimeout` built on one waits for
/// its child to notice, and a backend call that trickles its answer a byte a second, or a
/// plugin that never checks for cancellation, would hold its caller as long as it likes.
/// ``run(until:_:)`` answers at the deadline whatever the work does: the work is cancelled
/// and left to finish on its own, and its result, if it ever comes, is dropped.
public enum Deadline {
    /// Runs `operation` until `deadline`.
    /// - Returns: its result, or `nil` when the deadline passed (or the caller was cancelled)
    ///   first; the operation is then cancelled and not waited for.
    public static func run<Value: Sendable>(
        until deadline: ContinuousClock.Instant,
        _ operation: @escaping @Sendable () async -> Value
    ) async -> Value? {
        let race = Race<Value>()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                guard race.start(continuation) else { return }
                let work = Task { race.finish(await operation()) }
                let timer = Task {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    race.finish(nil)
                }
                race.hold(work, timer)
            }
        } onCancel: {
            race.finish(nil)
        }
    }

    /// Runs `operation` within `timeout` from now. See ``run(until:_:)``.
    public static func run<Value: Sendable>(
        within timeout: Duration,
        _ operation: @escaping @Sendable () async -> Value
    ) async -> Value? {
        await run(until: .now + timeout, operation)
    }

    /// The first of the work, the timer and the caller's cancellation to finish resumes the
    /// caller, once; the others are cancelled.
    private final class Race<Value: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<Value?, Never>?
            var finished = false
            var tasks: [Task<Void, Never>] = []
        }
        private let state = Mutex(State())

        /// Installs the caller's continuation; `false` (after resuming it) when the caller
        /// was cancelled before the race began.
        func start(_ continuation: CheckedContinuation<Value?, Never>) -> Bool {
            let cancelled = state.withLock { state in
                if state.finished { return true }
                state.continuation = continuation
                return false
            }
            if cancelled { continuation.resume(returning: nil) }
            return !cancelled
        }

        /// Keeps the tasks to cancel; cancels them now when the race is already over.
        func hold(_ tasks: Task<Void, Never>...) {
            let over = state.withLock { state in
                if !state.finished { state.tasks = tasks }
                return state.finished
            }
            if over { for task in tasks { task.cancel() } }
        }

        func finish(_ value: Value?) {
            let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<Value?, Never>?, [Task<Void, Never>]) in
                guard !state.finished else { return (nil, []) }
                state.finished = true
                defer {
                    state.continuation = nil
                    state.tasks = []
                }
                return (state.continuation, state.tasks)
            }
            for task in tasks { task.cancel() }
            continuation?.resume(returning: value)
        }
    }
}
