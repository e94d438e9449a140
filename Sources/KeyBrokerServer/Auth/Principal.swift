public import KeyBroker

/// Who made a request, as established by its bearer token.
public struct Principal: Sendable {
    /// The token's configured name (audit logs say this, never the token).
    public let name: String
    /// What the token may do.
    public let permissions: Set<Permission>
    /// The organizations it may do it for; `nil` for every organization (`"*"`).
    public let organizations: Set<OrganizationID>?

    /// Creates a principal.
    public init(name: String, permissions: Set<Permission>, organizations: Set<OrganizationID>?) {
        self.name = name
        self.permissions = permissions
        self.organizations = organizations
    }

    /// Whether the principal may do `permission` for `organization` (or, with `nil`, for every
    /// organization — server-wide operations need a `"*"` token).
    public func may(_ permission: Permission, for organization: OrganizationID?) -> Bool {
        guard permissions.contains(permission) else { return false }
        guard let organizations else { return true }
        guard let organization else { return false }
        return organizations.contains(organization)
    }

    /// Whether answers to this principal are redacted: it may act for some organizations
    /// only, so it must learn nothing of the others, nor of the server's files.
    public var seesRedacted: Bool { organizations != nil }
}
