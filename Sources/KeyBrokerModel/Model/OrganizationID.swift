/// The identifier of a tenant organization.
///
/// Organization ids end up in file names, log lines, SQL parameters and AWS KMS
/// encryption contexts, so the allowed form is deliberately narrow: 1–128 characters
/// of ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit and
/// never containing `..`. UUIDs (the usual form) fit; path-like values (`../x`, `a/b`),
/// spaces and control characters do not.
public struct OrganizationID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The identifier as written by the operator.
    public let rawValue: String

    /// A human-readable description of the allowed form, used in error messages.
    public static let allowedForm =
        "1-128 characters of letters, digits, '-', '_' or '.', starting with a letter or digit, without '..'"

    /// Creates an organization id, or returns `nil` when `rawValue` is not of the allowed form.
    /// - Parameter rawValue: the candidate identifier.
    public init?(_ rawValue: String) {
        guard Self.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// The message for a value that is not an organization id: the value (control and
    /// non-ASCII characters escaped) and the allowed form.
    public static func invalidMessage(_ value: String) -> String {
        "'\(DisplayText.escaped(value))' is not a valid organization id; allowed: \(allowedForm)"
    }

    /// Whether `value` is of the allowed form.
    public static func isValid(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard (1...128).contains(bytes.count), isAlphanumeric(bytes[0]) else { return false }
        var previous: UInt8 = 0
        for byte in bytes {
            let allowed =
                isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: ".")
            guard allowed else { return false }
            if byte == UInt8(ascii: "."), previous == UInt8(ascii: ".") { return false }
            previous = byte
        }
        return true
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    public var description: String { rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
