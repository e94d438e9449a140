import Hummingbird
import HummingbirdAuth

/// Sets the request's identity from its bearer token, checked against the tokens of the
/// request's snapshot. A missing or unknown token leaves the identity empty and never throws:
/// the order of refusals depends on it. It runs on `/v1` before the organization's child
/// context parses `{org}` (a malformed id is `400`, token or not), and the routes that need an
/// identity refuse with `401` after that, in ``RequirePermission``.
struct TokenAuthenticatorMiddleware<Context: KeyBrokerContext>: AuthenticatorMiddleware {
    typealias Identity = Principal

    init() {}

    func authenticate(request: Request, context: Context) async throws -> Principal? {
        try context.snapshot.authenticator.authenticate(authorization: request.headers[.authorization])
    }
}
