import Synchronization

/// Fails calls fast while a keystore is known to be down.
///
/// After ``Settings/failureThreshold`` calls in a row failed in a way that says KMS is not
/// serving (a timeout, a connection failure, a 5xx, throttling), the breaker opens: for
/// ``Settings/openFor`` every call fails at once with the last failure, costing KMS nothing.
/// Then one call is let through as a probe; its success closes the breaker, its failure opens
/// it again. Answers that say something about one request (access denied, a bad ciphertext)
/// prove KMS is up and count as successes here.
final class KMSCircuitBreaker: Sendable {
    struct Settings: Sendable, Hashable {
        /// Failures in a row that open the breaker.
        var failureThreshold: Int
        /// How long it stays open before a probe.
        var openFor: Duration

        static let `default` = Settings(failureThreshold: 5, openFor: .seconds(2))
    }

    /// What a caller may do now.
    enum Admission: Sendable {
        /// Call KMS.
        case call
        /// Call KMS as the one probe of an open breaker: no retries.
        case probe
        /// Do not call: KMS failed `failures` times in a row, most recently with `lastError`;
        /// the next probe is in `retryIn`.
        case rejected(lastError: KMSError, failures: Int, retryIn: Duration)
    }

    /// The state changes that metrics and logs report.
    enum Transition: Sendable {
        case opened, closed
    }

    private enum State {
        case closed(failures: Int)
        case open(until: ContinuousClock.Instant, failures: Int, lastError: KMSError)
        case probing(failures: Int, lastError: KMSError)
    }

    let settings: Settings
    private let state = Mutex(State.closed(failures: 0))

    init(settings: Settings) {
        self.settings = settings
    }

    /// Whether a call may go to KMS now.
    func admit(now: ContinuousClock.Instant = .now) -> Admission {
        state.withLock { state in
            switch state {
            case .closed:
                return .call
            case .open(let until, let failures, let lastError):
                guard now >= until else { return .rejected(lastError: lastError, failures: failures, retryIn: until - now) }
                state = .probing(failures: failures, lastError: lastError)
                return .probe
            case .probing(let failures, let lastError):
                // One probe at a time; the others fail fast until it answers.
                return .rejected(lastError: lastError, failures: failures, retryIn: .zero)
            }
        }
    }

    /// KMS answered (any answer that is not an outage).
    /// - Returns: `.closed` when this closed an open breaker.
    func recordSuccess() -> Transition? {
        state.withLock { state in
            let wasOpen: Bool
            switch state {
            case .closed: wasOpen = false
            case .open, .probing: wasOpen = true
            }
            state = .closed(failures: 0)
            return wasOpen ? .closed : nil
        }
    }

    /// A call failed in a way that says KMS is not serving.
    /// - Returns: `.opened` when this opened the breaker.
    func recordFailure(_ error: KMSError, now: ContinuousClock.Instant = .now) -> Transition? {
        state.withLock { state in
            switch state {
            case .closed(let failures):
                let count = failures + 1
                guard count >= settings.failureThreshold else {
                    state = .closed(failures: count)
                    return nil
                }
                state = .open(until: now + settings.openFor, failures: count, lastError: error)
                return .opened
            case .probing(let failures, _):
                state = .open(until: now + settings.openFor, failures: failures + 1, lastError: error)
                return nil
            case .open(let until, let failures, _):
                // A call admitted before the breaker opened, failing late.
                state = .open(until: until, failures: failures + 1, lastError: error)
                return nil
            }
        }
    }

    /// The probe never reached KMS (no slot was free): the next call probes instead.
    func abandonProbe(now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            guard case .probing(let failures, let lastError) = state else { return }
            state = .open(until: now, failures: failures, lastError: lastError)
        }
    }

    /// Whether calls fail fast now (status, tests).
    var isOpen: Bool {
        state.withLock { state in
            if case .closed = state { return false }
            return true
        }
    }
}
