/// Text from outside the process (a request, a file, a database row) as it may appear in a
/// message or a log line: control and non-ASCII characters escaped, so that a value cannot
/// forge a line or hide what it is.
public enum DisplayText {
    /// `value` with every character outside printable ASCII written as a Swift escape.
    public static func escaped(_ value: String) -> String {
        value.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F ? String($0) : $0.escaped(asASCII: true) }
            .joined()
    }
}
