import Crypto
import Foundation
import KeyBroker

/// Checks bearer tokens against the configured SHA-256 hashes, in constant time.
public struct TokenAuthenticator: Sendable {
    private let tokens: [(digest: Data, principal: Principal)]

    /// Creates an authenticator for the configured tokens (parsed once per (re)load).
    public init(_ settings: AuthSettings) {
        tokens = settings.tokens.compactMap { token in
            // The loader accepts 64 hex digits only, so every hash converts.
            Data(hexEncoded: token.sha256).map {
                ($0, Principal(name: token.name, permissions: token.permissions, organizations: token.organizations))
            }
        }
    }

    /// The principal of a bearer token, or `nil`.
    ///
    /// The presented token is hashed, and the digest is compared with every configured hash
    /// by swift-crypto's constant-time `Digest ==`, without stopping at a match, so the timing
    /// says nothing about which hash (or how much of it) matched.
    public func authenticate(token: Substring) -> Principal? {
        guard token.utf8.count < 4096 else { return nil }
        // HTTP allows spaces and tabs around a field value (RFC 9110 §5.5); nothing else is
        // trimmed. (Foundation's `trimmingCharacters(in:)` cost a third of authentication.)
        let utf8 = token.utf8
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let start = utf8.firstIndex { !isBlank($0) } ?? utf8.endIndex
        let end = utf8.lastIndex { !isBlank($0) }.map { utf8.index(after: $0) } ?? start
        // A blank token is no token (and the loader refuses the empty string's hash too).
        guard start < end else { return nil }
        let presented = SHA256.hash(data: Data(utf8[start..<end]))
        var match: Principal?
        for entry in tokens where presented == entry.digest {
            match = entry.principal
        }
        return match
    }

    /// The principal of an `Authorization: Bearer <token>` header, or `nil`.
    public func authenticate(authorization: String?) -> Principal? {
        guard let authorization, authorization.utf8.count < 4096 else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return authenticate(token: parts[1])
    }

    /// A new random token (256 bits, base64url) and its SHA-256 hex, for `keybroker token create`.
    public static func newToken() -> (token: String, sha256: String) {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let token =
            "kb_"
            + bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return (token, Data(SHA256.hash(data: Data(token.utf8))).hexEncodedString())
    }
}
