import KeyBroker

/// What each mode of the fault proxy (`kms_test_server.py`) must become, for the keystore
/// (`KMSMalformedAnswerTests`) and for the server (`LoadSensitiveKMSFaultTests`) alike;
/// docs/keystores/aws-kms.md shows the same table to operators.
struct KMSFault: Sendable, CustomStringConvertible {
    let mode: String
    /// The backend code an operator reads (nil: none, KeyBroker's own finding).
    let code: String?
    let kind: KeystoreError.Kind
    /// Whether the client tried again.
    let retried: Bool
    /// Whether the health check (`DescribeKey`) passes all the same.
    let healthy: Bool

    init(_ mode: String, _ code: String?, _ kind: KeystoreError.Kind, retried: Bool, healthy: Bool = false) {
        self.mode = mode
        self.code = code
        self.kind = kind
        self.retried = retried
        self.healthy = healthy
    }

    /// The API's answer for a call that failed this way.
    var status: Int { kind.isOutage ? 503 : 502 }
    var apiCode: String { kind.isOutage ? "keystore_unavailable" : "keystore_failed" }
    var description: String { mode }

    /// Every mode: the malformed answers, the slow ones, a refused connection, throttling, 5xx.
    /// A trickle or a black hole outlasts the health check's own deadline first, which then
    /// reports `Timeout` too.
    static let table: [KMSFault] = [
        KMSFault("type:#", "HTTP400", .internalFailure, retried: false),
        KMSFault("type:#Foo", "Foo", .internalFailure, retried: false),
        KMSFault("type:prefixed", "ThrottlingException", .throttled, retried: true),
        KMSFault("no-type", "HTTP400", .internalFailure, retried: false),
        KMSFault("empty-400", "HTTP400", .internalFailure, retried: false),
        KMSFault("non-json-400", "HTTP400", .internalFailure, retried: false),
        KMSFault("html-502", "HTTP502", .unreachable, retried: true),
        KMSFault("header-type:#", "HTTP400", .internalFailure, retried: false),
        KMSFault("ok-non-json", "InvalidResponse", .internalFailure, retried: false),
        KMSFault("ok-empty", "InvalidResponse", .internalFailure, retried: false),
        KMSFault("ok-wrong-types", "InvalidResponse", .internalFailure, retried: false),
        KMSFault("ok-bad-base64", nil, .internalFailure, retried: false, healthy: true),
        KMSFault("ok-huge", "InvalidResponse", .internalFailure, retried: false),
        KMSFault("truncated", "ConnectionFailed", .unreachable, retried: true),
        KMSFault("trickle", "Timeout", .unreachable, retried: true),
        KMSFault("blackhole", "Timeout", .unreachable, retried: true),
        KMSFault("refused", "ConnectionFailed", .unreachable, retried: true),
        KMSFault("throttle", "ThrottlingException", .throttled, retried: true),
        KMSFault("500", "KMSInternalException", .unreachable, retried: true),
    ]
}
