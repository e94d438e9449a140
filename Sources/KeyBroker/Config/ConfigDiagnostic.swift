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

/// A configuration that cannot be used, with every error found in it (not only the first).
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// The errors, in file order; warnings found on the way are included after them.
    public let diagnostics: [ConfigDiagnostic]

    /// Creates an error from findings.
    public init(_ diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// Creates an error with one finding.
    public init(at location: ConfigLocation?, _ message: String) {
        self.diagnostics = [ConfigDiagnostic(.error, at: location, message)]
    }

    /// The errors only.
    public var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }

    /// One line per finding.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Collects findings while a configuration is read, so that all of them are reported together.
public final class ConfigDiagnostics {
    /// The findings so far.
    public private(set) var items: [ConfigDiagnostic] = []

    /// Creates an empty collection.
    public init() {}

    /// Records an error.
    public func error(_ message: String, at location: ConfigLocation?) {
        items.append(ConfigDiagnostic(.error, at: location, message))
    }

    /// Records a warning.
    public func warning(_ message: String, at location: ConfigLocation?) {
        items.append(ConfigDiagnostic(.warning, at: location, message))
    }

    /// How many errors were recorded.
    public var errorCount: Int { items.count(where: { $0.severity == .error }) }

    /// Errors first (in file order), then warnings.
    public var sorted: [ConfigDiagnostic] {
        func key(_ d: ConfigDiagnostic) -> (Int, Int, Int) {
            (d.severity == .error ? 0 : 1, d.location?.line ?? 0, d.location?.column ?? 0)
        }
        return items.enumerated().sorted { lhs, rhs in
            let (a, b) = (key(lhs.element), key(rhs.element))
            return a != b ? a < b : lhs.offset < rhs.offset
        }.map(\.element)
    }
}
