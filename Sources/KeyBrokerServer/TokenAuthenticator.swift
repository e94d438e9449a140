import Crypto
import Foundation
import KeyBroker

/// Who made a request, as established by its bearer token.
public struct Principal: Sendable {
    /// The token's configured name (audit logs say this, never the token).
    public let name: String
    let permissions: Set<Permission>
    let organizations: Set<OrganizationID>?

    /// Whether the principal may do `permission` for `organization` (or, with `nil`, for every
    /// organization — server-wide operations need a `"*"` token).
    public func may(_ permission: Permission, for organization: OrganizationID?) -> Bool {
        guard permissions.contains(permission) else { return false }
        guard let organizations else { return true }
        guard let organization else { return false }
        return organizations.contains(organization)
    }
}

/// Checks bearer tokens against the configured SHA-256 hashes, in constant time.
public struct TokenAuthenticator: Sendable {
    private let tokens: [(hash: [UInt8], settings: TokenSettings)]

    /// Creates an authenticator for the configured tokens.
    public init(_ settings: AuthSettings) {
        tokens = settings.tokens.map { token in
            let bytes = stride(from: 0, to: token.sha256.count, by: 2).map { index -> UInt8 in
                let start = token.sha256.index(token.sha256.startIndex, offsetBy: index)
                return UInt8(token.sha256[start..<token.sha256.index(start, offsetBy: 2)], radix: 16) ?? 0
            }
            return (bytes, token)
        }
    }

    /// The principal of an `Authorization: Bearer <token>` header, or `nil`.
    ///
    /// The presented token is hashed, and the hash is compared with every configured hash
    /// without stopping early, so timing says nothing about which hash (or how much of it)
    /// matched.
    public func authenticate(authorization: String?) -> Principal? {
        guard let authorization, authorization.count < 4096 else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let presented = Array(SHA256.hash(data: Data(parts[1].trimmingCharacters(in: .whitespaces).utf8)))
        var match: TokenSettings?
        for token in tokens where Self.constantTimeEqual(token.hash, presented) {
            match = token.settings
        }
        return match.map { Principal(name: $0.name, permissions: $0.permissions, organizations: $0.organizations) }
    }

    /// Compares two byte arrays in time that depends only on their length.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    /// A new random token (256 bits, base64url) and its SHA-256 hex, for `keybroker token create`.
    public static func newToken() -> (token: String, sha256: String) {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let token = "kb_" + bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let hash = SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
        return (token, hash)
    }
}
