import NIOConcurrencyHelpers

/// Wakes a waiting loop early; a wake-up with nobody waiting is kept for the next wait.
///
/// A wait is a race between a sleep and a wake-up, in a task group: whichever ends first
/// cancels the other, so nothing outlives the wait (a timer left sleeping after each wake-up
/// would pile up under frequent wake-ups).
final class Waker: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())

    func wake() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns after `duration`, on `wake()`, or on cancellation, whichever comes first.
    func wait(upTo duration: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: duration) }
            group.addTask { await self.wakeUp() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns on `wake()` (or at once for a wake-up kept from before) or on cancellation.
    private func wakeUp() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waitNow = state.withLockedValue { state -> Bool in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return false
                    }
                    state.waiter = continuation
                    return true
                }
                if !waitNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
