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
