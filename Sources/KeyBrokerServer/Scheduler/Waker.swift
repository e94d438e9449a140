import NIOConcurrencyHelpers

/// Wakes a waiting loop early; a wake-up with nobody waiting is kept for the next wait.
final class Waker: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation = 0
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
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let generation = state.withLockedValue { state -> Int? in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return nil
                    }
                    state.generation += 1
                    state.waiter = continuation
                    return state.generation
                }
                guard let generation else { return continuation.resume() }
                Task { [weak self] in
                    try? await Task.sleep(for: duration)
                    self?.fire(generation: generation)
                }
            }
        } onCancel: {
            fire(generation: nil)
        }
    }

    private func fire(generation: Int?) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard generation == nil || generation == state.generation, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
