public import Hummingbird
public import HummingbirdAuth

/// Sets the request's identity from its bearer token, checked against the tokens of the
/// request's snapshot. A missing or unknown token leaves the identity empty; the routes that
/// need one refuse with `401` (``RequirePermission``), after the organization id's form was
/// checked.
public struct TokenAuthenticatorMiddleware<Context: KeyBrokerContext>: AuthenticatorMiddleware {
    public typealias Identity = Principal

    public init() {}

    public func authenticate(request: Request, context: Context) async throws -> Principal? {
        try context.snapshot.authenticator.authenticate(authorization: request.headers[.authorization])
    }
}
