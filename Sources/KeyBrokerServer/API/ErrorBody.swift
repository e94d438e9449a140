import Foundation
import KeyBroker

/// The one error shape: `{"error": {"code", "message", "backend"?}}`.
public struct ErrorBody: Codable, Sendable {
    public struct Backend: Codable, Sendable {
        public let type: String
        public let message: String
    }

    public struct Detail: Codable, Sendable {
        public let code: String
        public let message: String
        public let backend: Backend?
        public let diagnostics: [DiagnosticView]?
    }

    public let error: Detail
}
