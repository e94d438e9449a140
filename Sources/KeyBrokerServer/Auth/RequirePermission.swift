import Hummingbird
import HummingbirdAuth
import KeyBroker

/// Lets a request through when its identity holds one of `permissions` for the route's scope;
/// otherwise `401` (no identity) or `403`, each with an audit record. The permission is
/// checked before anything is looked up, so a caller outside its scope gets the same `403`
/// whether or not the organization exists.
struct RequirePermission<Context: KeyBrokerContext>: RouterMiddleware {
    /// For whom the permission must hold.
    enum Scope: Sendable {
        /// The organization of the path (`/v1/orgs/{org}/…`).
        case organization
        /// Any organization: a scoped token sees its own organizations only (`/v1/status`).
        case anyOrganization
        /// Every organization: the token must be scoped to `"*"` (`/v1/admin/reload`).
        case everyOrganization
    }

    let permissions: [Permission]
    let scope: Scope
    let audit: AuditLog

    /// Creates the middleware.
    init(_ permissions: [Permission], for scope: Scope, audit: AuditLog) {
        self.permissions = permissions
        self.scope = scope
        self.audit = audit
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let principal = context.identity else {
            await audit.note(.access, actor: "anonymous", result: .unauthenticated)
            throw APIError.unauthenticated
        }
        let organization = context.organization
        let allowed: Bool
        let scopeText: String
        switch scope {
        case .organization:
            allowed = permissions.contains { principal.may($0, for: organization) }
            scopeText = organization.map { " for organization '\($0)'" } ?? " for every organization"
        case .anyOrganization:
            allowed = permissions.contains { principal.permissions.contains($0) }
            scopeText = ""
        case .everyOrganization:
            allowed = permissions.contains { principal.may($0, for: nil) }
            scopeText = " for every organization"
        }
        guard allowed else {
            await audit.note(.access, actor: principal.name, organization: organization, result: .denied)
            throw APIError(
                .forbidden,
                "forbidden",
                "token '\(principal.name)' lacks \(permissions.map(\.rawValue).joined(separator: " or "))\(scopeText)"
            )
        }
        return try await next(request, context)
    }
}
