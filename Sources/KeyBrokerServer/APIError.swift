import Foundation
import HTTPTypes
import Hummingbird
import KeyBroker
import NIOCore

/// An error answer in the API's one shape: `{"error": {"code", "message", "backend"?}}`.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let backend: ErrorBody.Backend?
    public let diagnostics: [DiagnosticView]?
    let extraHeaders: HTTPFields

    init(
        _ status: HTTPResponse.Status, _ code: String, _ message: String, backend: ErrorBody.Backend? = nil,
        diagnostics: [DiagnosticView]? = nil, headers: HTTPFields = [:]
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
        .unauthorized, "unauthenticated", "send a valid token as 'Authorization: Bearer <token>'",
        headers: [.wwwAuthenticate: "Bearer"])

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }

    /// Maps a broker error to a status: 400 bad input, 404 unknown, 503 keystore outage,
    /// 502 other backend failures, 503 store down, 500 corrupt records.
    init(_ error: BrokerError) {
        let backend = error.keystoreError.flatMap { keystoreError in
            keystoreError.backendCode.map { ErrorBody.Backend(type: $0, message: keystoreError.backendMessage ?? "") }
        }
        switch error.kind {
        case .invalidInput: self.init(.badRequest, "bad_request", error.message)
        case .notFound: self.init(.notFound, "not_found", error.message)
        case .keystoreFailed:
            let outage = error.keystoreError.map { $0.kind.isTransient || $0.kind == .keyUnusable } ?? false
            if outage {
                self.init(.serviceUnavailable, "keystore_unavailable", error.message, backend: backend, headers: [.retryAfter: "5"])
            } else {
                self.init(.badGateway, "keystore_failed", error.message, backend: backend)
            }
        case .storageFailed: self.init(.serviceUnavailable, "store_unavailable", error.message, headers: [.retryAfter: "5"])
        default: self.init(.internalServerError, "internal", error.message)
        }
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
