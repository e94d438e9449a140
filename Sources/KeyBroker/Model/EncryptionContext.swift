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
        for (index, key) in pairs.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
            .enumerated()
        {
            if index > 0 { out += "," }
            out += Self.jsonString(key) + ":" + Self.jsonString(pairs[key]!)
        }
        out += "}"
        return Data(out.utf8)
    }

    /// Parses the output of ``canonicalBytes``.
    public init(canonicalBytes: Data) throws {
        let object = try JSONSerialization.jsonObject(with: canonicalBytes)
        guard let pairs = object as? [String: String] else {
            throw BrokerError.corruptRecord("encryption context is not a JSON object of strings")
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
