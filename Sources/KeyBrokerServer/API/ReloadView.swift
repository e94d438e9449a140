import Foundation
import KeyBroker

/// `POST /v1/admin/reload` response.
public struct ReloadView: Codable, Sendable {
    public let reloaded: Bool
    /// The operator's organizations (`organizations:`) whose keystore changed.
    public let changedOrganizations: [String]
    /// Set when `defaults.keystore` changed: every organization following defaults moves.
    public let defaultKeystoreChange: DefaultKeystoreChange?
    public let diagnostics: [DiagnosticView]

    /// A change of `defaults.keystore`.
    public struct DefaultKeystoreChange: Codable, Sendable {
        public let from: String
        public let to: String
        /// Current pairs the old default keystore wrapped: about how many organizations get a
        /// new pair from the new one.
        public let currentPairs: Int
    }
}
