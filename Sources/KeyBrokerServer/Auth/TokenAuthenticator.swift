import Crypto
import Foundation
import KeyBroker

/// Checks bearer tokens against the configured SHA-256 hashes: one hash of the presented
/// token and one dictionary lookup, whatever the number of tokens.
public struct TokenAuthenticator: Sendable {
    private let tokens: [Key: Principal]

    /// A SHA-256 digest as four words: a dictionary key that needs no heap allocation.
    private struct Key: Hashable {
        let a: UInt64, b: UInt64, c: UInt64, d: UInt64

        /// The key of 32 bytes (`nil` for any other length).
        init?(_ bytes: some Collection<UInt8>) {
            guard bytes.count == 32 else { return nil }
            func word(_ offset: Int) -> UInt64 { bytes.dropFirst(offset).prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
            (a, b, c, d) = (word(0), word(8), word(16), word(24))
        }
    }

    /// Creates an authenticator for the configured tokens (parsed once per (re)load).
    public init(_ settings: AuthSettings) {
        var tokens: [Key: Principal] = [:]
        for token in settings.tokens {
            // The loader accepts 64 hex digits only, unique, so every hash converts once.
            guard let digest = Data(hexEncoded: token.sha256).flatMap(Key.init) else { continue }
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
        var hasher = SHA256()
        let hashed = utf8[start..<end].withContiguousStorageIfAvailable { bytes -> Bool in
            hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
            return true
        }
        if hashed == nil { hasher.update(data: Data(utf8[start..<end])) }
        return hasher.finalize().withUnsafeBytes { Key($0) }.flatMap { tokens[$0] }
    }

    /// The principal of an `Authorization: Bearer <token>` header, or `nil`.
    public func authenticate(authorization: String?) -> Principal? {
        guard let authorization, authorization.utf8.count < 4096 else { return nil }
        // "Bearer " in any case (RFC 9110 §11.1), compared without allocating.
        let scheme = authorization.utf8.prefix(7)
        guard scheme.count == 7, scheme.last == UInt8(ascii: " "),
            zip(scheme.dropLast(), "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 })
        else { return nil }
        return authenticate(token: authorization.dropFirst(7))
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
