public import Foundation
public import KeyBroker

/// `audit:`: where the audit log goes, and what happens when it cannot be written.
public struct AuditSettings: ConfigSection {
    public static let key = "audit"
    public static let defaultValue = AuditSettings(destination: .stderr, onFailure: .refuse)

    /// Where records go.
    public enum Destination: Sendable, Hashable {
        /// One JSON line per key operation on standard error.
        case stderr
        /// Appended to a file (created 0600).
        case file(URL)
    }

    /// What a key operation does when its audit record cannot be written.
    public enum FailurePolicy: String, Sendable, Hashable, CaseIterable {
        /// Refuse the operation (503): nothing happens that the audit log does not show.
        case refuse
        /// Go on, and report the failure on standard error and in the metrics.
        case `continue`
    }

    /// Where records go.
    public var destination: Destination
    /// What a key operation does when its record cannot be written.
    public var onFailure: FailurePolicy

    /// Creates the settings.
    public init(destination: Destination, onFailure: FailurePolicy) {
        self.destination = destination
        self.onFailure = onFailure
    }
}

extension AuditSettings {
    public static func read(_ node: ConfigNode, context: PluginContext) -> AuditSettings {
        var settings = AuditSettings.defaultValue
        guard let mapping = node.mapping() else { return settings }
        defer { mapping.reportUnknownKeys() }
        if let destination = mapping["destination"]?.nonEmptyString() {
            settings.destination = destination == "stderr" ? .stderr : .file(context.resolvePath(destination))
        }
        if let policy = mapping["onFailure"]?.value(of: AuditSettings.FailurePolicy.self) { settings.onFailure = policy }
        return settings
    }
}
