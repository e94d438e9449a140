public import KeyBroker

/// One API token, stored as the SHA-256 of the token so the file never holds a usable secret.
public struct TokenSettings: Sendable, Hashable {
    /// A name for audit logs.
    public let name: String
    /// The lowercase hex SHA-256 of the token.
    public let sha256: String
    /// What the token may do.
    public let permissions: Set<Permission>
    /// The organizations it may do it for; `nil` means all (`"*"`).
    public let organizations: Set<OrganizationID>?

    /// Creates a token entry.
    public init(name: String, sha256: String, permissions: Set<Permission>, organizations: Set<OrganizationID>?) {
        self.name = name
        self.sha256 = sha256
        self.permissions = permissions
        self.organizations = organizations
    }
}
