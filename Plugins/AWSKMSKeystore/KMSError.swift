import Foundation

/// A failed KMS call, with the service's own error type and message.
public struct KMSError: Error, Sendable, CustomStringConvertible {
    /// The KMS error type without its namespace prefix (`AccessDeniedException`), or a
    /// transport description (`ConnectionFailed`, `Timeout`).
    public let code: String
    /// The service's message, verbatim.
    public let message: String
    /// The HTTP status, when a response arrived.
    public let status: Int?
    /// How many attempts were made.
    public let attempts: Int
    /// `false` when another attempt cannot help whatever the status says (an invalid answer).
    let retryable: Bool

    /// Creates an error.
    init(code: String, message: String, status: Int?, attempts: Int, retryable: Bool = true) {
        self.code = code
        self.message = message
        self.status = status
        self.attempts = attempts
        self.retryable = retryable
    }

    /// Whether the failure was in reaching KMS rather than an answer from it.
    public var isTransport: Bool { status == nil }

    /// Whether another attempt may succeed: throttling, 5xx and transport failures.
    var isRetryable: Bool {
        guard retryable else { return false }
        guard let status else { return true }
        return status >= 500 || Self.throttlingCodes.contains(code)
    }

    /// Whether KMS itself answered this, and the answer is about the request rather than
    /// about KMS being unable to serve (which proves it up, for the circuit breaker).
    var isAnswer: Bool {
        guard let status else { return false }
        return status < 500 && !Self.throttlingCodes.contains(code)
    }

    /// The same failure with a note on what KeyBroker did about it.
    func annotated(_ note: String) -> KMSError {
        KMSError(code: code, message: "\(message) (\(note))", status: status, attempts: attempts, retryable: retryable)
    }

    static let throttlingCodes: Set<String> = [
        "ThrottlingException", "LimitExceededException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded",
    ]

    public var description: String { "\(code): \(message)" }
}
