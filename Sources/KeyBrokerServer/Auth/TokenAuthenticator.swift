import Crypto
import Foundation
import KeyBroker

/// Checks bearer tokens against the configured SHA-256 hashes: one hash of the presented
/// token and one dictionary lookup, whatever the number of tokens.
public struct TokenAuthenticator: Sendable {
    private let tokens: [Data: Principal]

    /// Creates an authenticator for the configured tokens (parsed once per (re)load).
    public init(_ settings: AuthSettings) {
        var tokens: [Data: Principal] = [:]
        for token in settings.tokens {
            // The loader accepts 64 hex digits only, unique, so every hash converts once.
            guard let digest = Data(hexEncoded: token.sha256) else { continue }
            tokens[digest] = Principal(name: token.name, permissions: token.permissions, organizations: token.organizations)
        }
        self.tokens = tokens
    }

    /// The principal of a bearer token, or `nil`.
    ///
    /// The presented token is hashed, and the digest is looked up among the configured hashes.
    /// What the lookup's timing could tell — whether some configured hash shares a bucket or a
    /// prefix with the SHA-256 of the guess — is about the digest of the guess, not the token:
    /// turning it into a token would take a SHA-256 preimage. The dictionary's hash is seeded
    /// per process, so even the buckets differ between runs. (Until issue 14 every hash was
    /// compared in constant time, one by one: a cost that grew with the tokens.)
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
        return tokens[Data(SHA256.hash(data: Data(utf8[start..<end])))]
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
