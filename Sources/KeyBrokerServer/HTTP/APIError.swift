import Foundation
public import HTTPTypes
public import Hummingbird
import KeyBroker
import NIOCore
import NIOFoundationEssentialsCompat

/// An error answer in the API's one shape: `{"error": {"code", "message", "backend"?}}`.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let backend: ErrorBody.Backend?
    public let diagnostics: [DiagnosticView]?
    let extraHeaders: HTTPFields

    init(
        _ status: HTTPResponse.Status,
        _ code: String,
        _ message: String,
        backend: ErrorBody.Backend? = nil,
        diagnostics: [DiagnosticView]? = nil,
        headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.backend = backend
        self.diagnostics = diagnostics
        self.extraHeaders = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = ErrorBody(error: .init(code: code, message: message, backend: backend, diagnostics: diagnostics))
        var headers = extraHeaders
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: try APIJSON.encoder.encode(body))))
    }

    static let unauthenticated = APIError(
        .unauthorized,
        "unauthenticated",
        "send a valid token as 'Authorization: Bearer <token>'",
        headers: [.wwwAuthenticate: "Bearer"]
    )

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }

    /// Maps a broker error to a status: 400 bad input, 404 unknown, 429 rate limited, 503
    /// keystore outage or busy keystore, 502 other backend failures, 503 store down or audit failing, 500
    /// corrupt records.
    /// - Parameter redacted: the caller may act for some organizations only. Then the answer
    ///   says what failed and the backend's code, but none of the server's own details (file
    ///   paths, other organizations' contexts, the backend's message): those go to the log
    ///   and to callers with a token for every organization.
    init(_ error: BrokerError, redacted: Bool = false) {
        let keystoreError = error.keystoreError
        let backend = keystoreError.flatMap { keystoreError in
            keystoreError.backendCode.map { ErrorBody.Backend(type: $0, message: redacted ? "" : keystoreError.backendMessage ?? "") }
        }
        switch error.kind {
        case .invalidInput: self.init(.badRequest, "bad_request", error.message)
        case .notFound: self.init(.notFound, "not_found", error.message)
        case .revoked: self.init(.forbidden, "organization_revoked", error.message)
        case .rateLimited:
            self.init(.tooManyRequests, "rate_limited", error.message, headers: [.retryAfter: String(error.retryAfter ?? 60)])
        case .keystoreFailed:
            let message = redacted ? Self.redactedKeystoreMessage(keystoreError) : error.message
            if keystoreError?.kind == .busy {
                // Momentary: the calls in flight to this keystore finish within its timeouts.
                self.init(.serviceUnavailable, "keystore_busy", message, backend: backend, headers: [.retryAfter: "1"])
            } else if keystoreError?.kind.isOutage ?? false {
                self.init(.serviceUnavailable, "keystore_unavailable", message, backend: backend, headers: [.retryAfter: "5"])
            } else {
                self.init(.badGateway, "keystore_failed", message, backend: backend)
            }
        case .storageFailed where error.storeError?.kind == .damaged:
            // A replaced or deleted database does not heal on this replica: no Retry-After, so
            // that clients do not hammer it (its readiness probe already fails).
            let message =
                redacted
                ? "the key-pair store of this server is damaged, and what needs it fails until the operator restores it; another replica may serve you"
                : error.message
            self.init(.serviceUnavailable, "store_unavailable", message)
        case .storageFailed:
            let message =
                redacted
                ? "the key-pair store is unavailable; try again later (the operator sees the cause in /v1/status and the server log)"
                : error.message
            self.init(.serviceUnavailable, "store_unavailable", message, headers: [.retryAfter: "5"])
        case .auditFailed:
            let message =
                redacted ? "refused: the audit record could not be written, and nothing happens unaudited; try again later" : error.message
            self.init(.serviceUnavailable, "audit_unavailable", message, headers: [.retryAfter: "5"])
        case .corruptRecord:
            let pair = error.storeError?.keyPairID.map { "key pair \($0)" } ?? "a stored key pair"
            let message = redacted ? "\(pair) cannot be read: the stored record is damaged; the operator must restore it" : error.message
            self.init(.internalServerError, "corrupt_record", message)
        default: self.init(.internalServerError, "internal", redacted ? "internal error; see the server log" : error.message)
        }
    }

    /// A failed rotation as a caller sees it: the operator's message, or its redacted form
    /// (the same redaction as the error answers) for a token scoped to some organizations.
    static func rotationError(_ failure: RotationScheduler.Failure, redacted: Bool) -> String {
        redacted ? APIError(failure.cause, redacted: true).message : failure.error
    }

    /// What a caller scoped to some organizations learns of a keystore failure: the keystore,
    /// the kind, and the backend's code.
    static func redactedKeystoreMessage(_ error: KeystoreError?) -> String {
        guard let error else { return "the keystore failed (details need a token for every organization)" }
        let code = error.backendCode.map { " (\($0))" } ?? ""
        return "keystore '\(error.keystore)' reported \(error.kind)\(code); details need a token for every organization"
    }

    /// Any error, mapped: API errors as they are, broker and configuration errors by kind,
    /// the rest as 500 without detail (which could carry internals).
    static func from(_ error: any Error) -> any Error {
        switch error {
        case let error as APIError: error
        case let error as BrokerError: APIError(error)
        case let error as ConfigError: APIError(error)
        case let error as any HTTPResponseError: error
        default: APIError(.internalServerError, "internal", "internal error; see the server log")
        }
    }

    /// A configuration that could not be used.
    init(_ error: ConfigError) {
        let first = error.errors.first?.description ?? "invalid configuration"
        let summary = error.errors.count > 1 ? "\(first) (and \(error.errors.count - 1) more)" : first
        self.init(.badRequest, "invalid_config", summary, diagnostics: error.diagnostics.map(DiagnosticView.init))
    }
}
