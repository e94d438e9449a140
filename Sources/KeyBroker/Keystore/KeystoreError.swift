/// An error from a keystore backend, typed so that callers (status, the CLI, HTTP) can
/// react by kind, and carrying the backend's own code and message verbatim so an operator
/// can act on it.
public struct KeystoreError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case unreachable, denied
            case keyUnusable = "key-unusable"
            case badCiphertext = "bad-ciphertext"
            case throttled
            case busy
            case wrongKey = "wrong-key"
            case misconfigured
            case internalFailure = "internal"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The backend could not be reached (network, timeout, missing file).
        public static let unreachable = Kind(.unreachable)
        /// The backend refused (permissions, key policy, file mode).
        public static let denied = Kind(.denied)
        /// The wrapping key exists but cannot be used (disabled, pending deletion).
        public static let keyUnusable = Kind(.keyUnusable)
        /// The wrapped blob is corrupt, was tampered with, or belongs to another context.
        public static let badCiphertext = Kind(.badCiphertext)
        /// The backend asked us to slow down.
        public static let throttled = Kind(.throttled)
        /// Too many calls to this keystore are in flight already: this replica refused one
        /// more rather than queue without bound behind a slow backend. Not an outage.
        public static let busy = Kind(.busy)
        /// The blob was wrapped by a key this keystore does not have.
        public static let wrongKey = Kind(.wrongKey)
        /// The keystore's configuration cannot work.
        public static let misconfigured = Kind(.misconfigured)
        /// Anything else, including failures inside cryptographic libraries.
        public static let internalFailure = Kind(.internalFailure)

        /// A stable lowercase name (`bad-ciphertext`), used in JSON and metrics.
        public var description: String { value.rawValue }

        /// Whether a retry may succeed without anyone changing anything.
        public var isTransient: Bool { self == .unreachable || self == .throttled || self == .busy }

        /// Whether the keystore as a whole cannot serve now — unreachable, throttled, its key
        /// disabled, access denied, or its configuration broken — rather than one blob or one
        /// call failing. The one rule for: the API's 503 `keystore_unavailable` (vs 502), the
        /// health monitor marking the keystore unhealthy from a request path, and readiness.
        /// A busy keystore is not one: it answers, this replica only has enough calls to it
        /// in flight, and taking the replica out of its load balancer for that would move the
        /// load onto the others.
        public var isOutage: Bool {
            self == .unreachable || self == .throttled || self == .keyUnusable || self == .denied || self == .misconfigured
        }
    }

    /// The kind of failure.
    public let kind: Kind
    /// The keystore instance name.
    public let keystore: String
    /// What KeyBroker was doing and what went wrong, in one sentence.
    public let message: String
    /// The backend's own error code (`AccessDeniedException`), if it gave one.
    public let backendCode: String?
    /// The backend's own error message, verbatim.
    public let backendMessage: String?
    /// What the operator can do about it.
    public let hint: String?
    /// Whether ``backendCode`` and ``backendMessage`` are the backend's own answer (an error
    /// response), rather than the plugin's words for a call that got none (a connection
    /// failure, missing credentials), which may name the server's endpoint or files.
    public let backendAnswered: Bool

    /// Creates an error.
    public init(
        _ kind: Kind,
        keystore: String,
        message: String,
        backendCode: String? = nil,
        backendMessage: String? = nil,
        hint: String? = nil,
        backendAnswered: Bool = true
    ) {
        self.kind = kind
        self.keystore = keystore
        self.message = message
        self.backendCode = backendCode
        self.backendMessage = backendMessage
        self.hint = hint
        self.backendAnswered = backendAnswered && (backendCode != nil || backendMessage != nil)
    }

    /// One readable line: `keystore 'local': <message> [<code>: <backend message>] (hint: …)`.
    public var description: String {
        var text = "keystore '\(keystore)': \(message)"
        if backendCode != nil || backendMessage != nil {
            text += " [" + [backendCode, backendMessage].compactMap { $0 }.joined(separator: ": ") + "]"
        }
        if let hint { text += " (hint: \(hint))" }
        return text
    }
}
