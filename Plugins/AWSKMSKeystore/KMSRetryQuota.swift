import Synchronization

/// The retry quota of one keystore: the AWS SDKs' "standard" retry mode, a token bucket
/// that retries draw on and successes refill.
///
/// Without it every request retries on its own, and a throttled KMS sees each caller's
/// request several times over: the load that throttles it, multiplied. With it, retries
/// stop once the keystore has been failing for a while, whoever asks — the API's unwraps
/// and the scheduler's rotations draw on the same bucket.
final class KMSRetryQuota: Sendable {
    /// Tokens a retry costs.
    static let retryCost = 5
    /// Tokens a retry after a timeout costs: a timed-out attempt held a connection and a
    /// caller for long, so the budget runs out sooner for those.
    static let timeoutRetryCost = 10
    /// Tokens a call that succeeded at its first attempt puts back.
    static let successRefill = 1

    /// The bucket's size, and where it starts.
    let capacity: Int
    private let tokens: Mutex<Int>

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        self.tokens = Mutex(max(0, capacity))
    }

    /// Takes the tokens for one retry after `error`.
    /// - Returns: what was taken (to refund if the retry succeeds), or `nil` when the bucket
    ///   has too few: then no retry.
    func acquireRetry(after error: KMSError) -> Int? {
        let cost = error.code == "Timeout" ? Self.timeoutRetryCost : Self.retryCost
        return tokens.withLock { tokens in
            guard tokens >= cost else { return nil }
            tokens -= cost
            return cost
        }
    }

    /// A call succeeded: its retries' tokens come back, or, for a first-attempt success, one.
    func recordSuccess(refunding taken: Int) {
        refund(taken > 0 ? taken : Self.successRefill)
    }

    /// Gives back tokens (taken for a retry that did not happen, or a success's refill).
    func refund(_ taken: Int) {
        tokens.withLock { tokens in tokens = min(capacity, tokens + taken) }
    }

    /// The tokens left (status, tests).
    var available: Int { tokens.withLock { $0 } }
}
