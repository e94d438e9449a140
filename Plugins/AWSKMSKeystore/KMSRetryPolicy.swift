import Foundation

/// How KMS calls are retried: throttling, 5xx and connection failures only, with capped
/// exponential backoff and full jitter, within a total deadline, while the keystore's retry
/// quota lasts.
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
    /// The size of the keystore's retry quota (``KMSRetryQuota``): a retry costs 5 tokens (10
    /// after a timeout), a success puts them back; 0 turns retries off.
    public var quota: Int

    /// Defaults sized for an interactive operation: at most about 10 s.
    public static let `default` = KMSRetryPolicy(
        maxAttempts: 4,
        baseDelay: .milliseconds(100),
        maxDelay: .seconds(2),
        requestTimeout: .seconds(5),
        totalTimeout: .seconds(10),
        quota: 500
    )
}
