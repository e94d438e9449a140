import Foundation

/// The health of a keystore as last checked.
public struct KeystoreHealth: Sendable {
    /// `nil` when healthy; otherwise the error the backend gave.
    public let error: KeystoreError?
    /// A short note for operators (`key file ./data/master.key, id 3f2a…`).
    public let detail: String
    /// How long the check took.
    public let latency: Duration

    /// Whether the keystore can be used.
    public var isHealthy: Bool { error == nil }

    /// A healthy result.
    public static func healthy(_ detail: String, latency: Duration = .zero) -> Self {
        KeystoreHealth(error: nil, detail: detail, latency: latency)
    }

    /// An unhealthy result.
    public static func unhealthy(_ error: KeystoreError, latency: Duration = .zero) -> Self {
        KeystoreHealth(error: error, detail: error.description, latency: latency)
    }

    /// Creates a result.
    public init(error: KeystoreError?, detail: String, latency: Duration) {
        self.error = error
        self.detail = detail
        self.latency = latency
    }

    /// The same result with a measured latency.
    public func measured(_ latency: Duration) -> Self {
        KeystoreHealth(error: error, detail: detail, latency: latency)
    }
}
