public import Foundation

/// The non-secret key/value pairs bound to every wrap and unwrap of a private key.
///
/// KeyBroker always builds it as `{<contextKey>: <organization id>}`; AWS KMS evaluates it
/// in key policies (`kms:EncryptionContext:<contextKey>`) and the local keystores feed its
/// canonical form to AES-GCM as associated data, so a wrapped key of one organization never
/// unwraps under another's context.
public struct EncryptionContext: Hashable, Sendable, CustomStringConvertible {
    /// The pairs, as sent to a backend.
    public let pairs: [String: String]

    /// The context key used where a keystore does not configure one.
    public static let defaultContextKey = "organization-id"

    /// Creates a context from explicit pairs.
    public init(_ pairs: [String: String]) {
        self.pairs = pairs
    }

    /// The context that binds a key to `organization` under `contextKey`.
    public static func organization(_ organization: OrganizationID, contextKey: String = defaultContextKey) -> Self {
        EncryptionContext([contextKey: organization.rawValue])
    }

    /// A canonical byte encoding: a JSON object with keys sorted by their UTF-8 bytes and no
    /// insignificant white space. Two equal contexts always give the same bytes.
    public var canonicalBytes: Data {
        var out = "{"
        let sorted = pairs.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        for (index, pair) in sorted.enumerated() {
            if index > 0 { out += "," }
            out += Self.jsonString(pair.key) + ":" + Self.jsonString(pair.value)
        }
        out += "}"
        return Data(out.utf8)
    }

    /// Parses the output of ``canonicalBytes``; `nil` when the bytes are not a JSON object of
    /// strings.
    public init?(canonicalBytes: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: canonicalBytes), let pairs = object as? [String: String] else {
            return nil
        }
        self.pairs = pairs
    }

    public var description: String { String(decoding: canonicalBytes, as: UTF8.self) }

    private static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
