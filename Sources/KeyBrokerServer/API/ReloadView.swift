import Foundation
import KeyBroker

/// `POST /v1/admin/reload` response.
public struct ReloadView: Codable, Sendable {
    public let reloaded: Bool
    public let changedOrganizations: [String]
    public let diagnostics: [DiagnosticView]
}
