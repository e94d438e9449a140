import Foundation
public import KeyBroker

/// A configuration finding.
public struct DiagnosticView: Codable, Sendable, Equatable {
    public let severity: String
    public let file: String?
    public let line: Int?
    public let column: Int?
    public let message: String

    /// The view of a finding.
    public init(_ diagnostic: ConfigDiagnostic) {
        severity = diagnostic.severity.rawValue
        file = diagnostic.location?.file
        line = diagnostic.location?.line
        column = diagnostic.location?.column
        message = diagnostic.message
    }
}
