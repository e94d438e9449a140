import Foundation
import Yams

/// A node of a parsed YAML configuration, remembering where it stands in its file.
///
/// Reading through `ConfigNode` instead of `Codable` is deliberate: Codable silently
/// ignores unknown keys and loses positions on type mismatches, while every finding here
/// names `file:line:column` and is collected rather than thrown.
public struct ConfigNode {
    let node: Yams.Node
    /// The file the node came from.
    public let file: String
    /// The dotted path from the document root (`keystores.local.path`), for messages.
    public let path: String
    /// The variables `${VAR}` reads; `nil` where references are not allowed (a candidate
    /// keystore sent over the API must not read the server's environment).
    let environment: [String: String]?
    /// Where the findings go.
    public let diagnostics: ConfigDiagnostics

    init(node: Yams.Node, file: String, path: String, environment: [String: String]?, diagnostics: ConfigDiagnostics) {
        self.node = node
        self.file = file
        self.path = path
        self.environment = environment
        self.diagnostics = diagnostics
    }

    /// Where this node starts.
    public var location: ConfigLocation {
        let mark = node.mark
        return ConfigLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// Records an error at this node.
    public func error(_ message: String) { diagnostics.error(message, at: location) }

    /// Records a warning at this node.
    public func warning(_ message: String) { diagnostics.warning(message, at: location) }

    private var kindName: String {
        switch node {
        case .scalar: isNull ? "nothing (null)" : "a value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// Whether the node is an explicit or empty null (`key:`, `key: ~`, `key: null`).
    public var isNull: Bool {
        guard case .scalar(let scalar) = node else { return false }
        return scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// This node's place with another value (for settings the loader completes itself).
    func replacing(with node: Yams.Node) -> ConfigNode {
        ConfigNode(node: node, file: file, path: path, environment: environment, diagnostics: diagnostics)
    }

    func child(_ node: Yams.Node, path: String) -> ConfigNode {
        ConfigNode(node: node, file: file, path: path, environment: environment, diagnostics: diagnostics)
    }

    /// How messages name this node: `'keystores.local'`, or `the configuration` for the root.
    var displayName: String { path.isEmpty ? "the configuration" : "'\(path)'" }

    /// A value as it may appear in a message: control and non-ASCII characters escaped.
    public static func printable(_ value: String) -> String { DisplayText.escaped(value) }

    /// The node as a mapping, or `nil` after recording an error.
    public func mapping() -> ConfigMapping? {
        guard case .mapping(let mapping) = node else {
            error("\(displayName) must be a mapping of keys to values, found \(kindName)")
            return nil
        }
        return ConfigMapping(node: self, mapping: mapping)
    }

    /// The node as a list, or `nil` after recording an error.
    public func list() -> [ConfigNode]? {
        guard case .sequence(let sequence) = node else {
            error("'\(path)' must be a list, found \(kindName)")
            return nil
        }
        return sequence.enumerated().map { child($1, path: "\(path)[\($0)]") }
    }

    /// The node as a string with `${VAR}` references substituted, or `nil` after recording an error.
    public func string() -> String? {
        guard case .scalar(let scalar) = node, !isNull else {
            error("'\(path)' must be a value, found \(kindName)")
            return nil
        }
        return substituteEnvironment(in: scalar.string)
    }

    /// Whether the node is a value written out in the file, with no `${VAR}` in it.
    public var isWrittenOut: Bool {
        guard case .scalar(let scalar) = node else { return false }
        return !scalar.string.contains("${")
    }

    /// The node as a non-empty string.
    public func nonEmptyString() -> String? {
        guard let value = string() else { return nil }
        guard !value.isEmpty else {
            error("'\(path)' must not be empty")
            return nil
        }
        return value
    }

    /// The node as `true` or `false`.
    public func bool() -> Bool? {
        guard let value = string() else { return nil }
        switch value {
        case "true": return true
        case "false": return false
        default:
            error("'\(path)' must be true or false, found '\(value)'")
            return nil
        }
    }

    /// The node as an integer within `range`.
    public func integer(in range: ClosedRange<Int>) -> Int? {
        guard let value = string() else { return nil }
        guard let number = Int(value), range.contains(number) else {
            error("'\(path)' must be a whole number from \(range.lowerBound) to \(range.upperBound), found '\(value)'")
            return nil
        }
        return number
    }

    /// The node as a duration written `500ms`, `5s` or `2m`, within `range`.
    public func duration(in range: ClosedRange<Duration>) -> Duration? {
        guard let value = string() else { return nil }
        let units: [(suffix: String, scale: Duration)] = [("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60))]
        for unit in units where value.hasSuffix(unit.suffix) {
            // Compared before multiplying: a number of minutes near Int.max would overflow.
            if let number = Int(value.dropLast(unit.suffix.count)), number >= 0,
                Double(number) <= range.upperBound / unit.scale
            {
                let duration = unit.scale * number
                if range.contains(duration) { return duration }
            }
            break
        }
        error("'\(path)' must be a duration such as 500ms, 5s or 2m, from \(range.lowerBound) to \(range.upperBound), found '\(value)'")
        return nil
    }

    /// The node as one of an enumeration's raw values.
    public func value<T: RawRepresentable & CaseIterable>(of type: T.Type) -> T? where T.RawValue == String {
        guard let value = string() else { return nil }
        guard let result = T(rawValue: value) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            error(
                "'\(path)' must be one of \(allowed), found '\(value)'\(Suggestion.phrase(for: value, among: T.allCases.map(\.rawValue)))"
            )
            return nil
        }
        return result
    }

    /// Replaces `${VAR}` and `${VAR:-default}`; `$$` stands for a literal `$`.
    private func substituteEnvironment(in text: String) -> String? {
        guard text.contains("$") else { return text }
        var output = ""
        var rest = Substring(text)
        var failed = false
        while let dollar = rest.firstIndex(of: "$") {
            output += rest[..<dollar]
            let afterDollar = rest.index(after: dollar)
            if afterDollar < rest.endIndex, rest[afterDollar] == "$" {
                output += "$"
                rest = rest[rest.index(after: afterDollar)...]
                continue
            }
            guard afterDollar < rest.endIndex, rest[afterDollar] == "{" else {
                output += "$"
                rest = rest[afterDollar...]
                continue
            }
            guard let environment else {
                error(
                    "'\(path)': environment references (${…}) are not allowed in a keystore sent over the API, whose values would come back in messages; write the value itself (use $$ for a literal $)"
                )
                return nil
            }
            guard let close = rest[afterDollar...].firstIndex(of: "}") else {
                error("'\(path)' has '${' without a closing '}'; write ${NAME} or ${NAME:-default} (use $$ for a literal $)")
                return nil
            }
            let reference = rest[rest.index(after: afterDollar)..<close]
            let (name, fallback) = Self.splitReference(reference)
            if !Self.isVariableName(name) {
                error(
                    "'\(path)': '${\(reference)}' is not a valid environment reference; write ${NAME} or ${NAME:-default} (use $$ for a literal $)"
                )
                failed = true
            } else if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                output += value
            } else if let fallback {
                // As in the shell, ':-' also applies when the variable is set but empty.
                output += fallback
            } else {
                error("'\(path)' uses ${\(name)}, but the environment variable \(name) is not set; set it, or write ${\(name):-default}")
                failed = true
            }
            rest = rest[rest.index(after: close)...]
        }
        output += rest
        return failed ? nil : output
    }

    private static func splitReference(_ reference: Substring) -> (Substring, String?) {
        guard let marker = reference.range(of: ":-") else { return (reference, nil) }
        return (reference[..<marker.lowerBound], String(reference[marker.upperBound...]))
    }

    private static func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.first, first == "_" || first.isLetter, first.isASCII else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
