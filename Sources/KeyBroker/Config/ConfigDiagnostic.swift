/// A place in a configuration file, 1-based as editors count.
public struct ConfigLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file as given to the loader.
    public let file: String
    /// The line, from 1.
    public let line: Int
    /// The column, from 1.
    public let column: Int

    /// Creates a location.
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, the form editors and terminals turn into links.
    public var description: String { "\(file):\(line):\(column)" }
}

/// One finding about a configuration: an error that stops it from loading, or a warning.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// How serious a finding is.
    public enum Severity: String, Sendable, Hashable {
        case error, warning
    }

    /// How serious it is.
    public let severity: Severity
    /// Where it is, when it belongs to a place in a file.
    public let location: ConfigLocation?
    /// What is wrong and what is allowed instead.
    public let message: String

    /// Creates a finding.
    public init(_ severity: Severity, at location: ConfigLocation?, _ message: String) {
        self.severity = severity
        self.location = location
        self.message = message
    }

    /// `file:line:column: error: message`.
    public var description: String {
        let prefix = location.map { "\($0): " } ?? ""
        return "\(prefix)\(severity.rawValue): \(message)"
    }
}
