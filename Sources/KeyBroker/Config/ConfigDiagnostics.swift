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
