import Foundation

/// How KMS calls are retried: throttling, 5xx and connection failures only, with capped
/// exponential backoff and full jitter, within a total deadline.
public struct KMSRetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included.
    public var maxAttempts: Int
    /// The first backoff cap; doubled per attempt.
    public var baseDelay: Duration
    /// The largest backoff cap.
    public var maxDelay: Duration
    /// One HTTP request's time limit.
    public var requestTimeout: Duration
    /// The limit for a call with all its retries.
    public var totalTimeout: Duration

    /// Defaults sized for an interactive operation: at most about 10 s.
    public static let `default` = KMSRetryPolicy(
        maxAttempts: 4,
        baseDelay: .milliseconds(100),
        maxDelay: .seconds(2),
        requestTimeout: .seconds(5),
        totalTimeout: .seconds(10)
    )
}
