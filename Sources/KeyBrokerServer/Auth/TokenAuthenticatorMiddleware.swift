import Foundation
import Hummingbird
import HummingbirdAuth
import KeyBroker
import NIOCore
import NIOSSL

/// Sets the request's identity from its bearer token, checked against the tokens of the
/// request's snapshot, or, for a request without an `Authorization` header on a TLS
/// connection, from the client certificate the handshake verified (`auth.clients`). A missing
/// or unknown credential leaves the identity empty and never throws: the order of refusals
/// depends on it. It runs on `/v1` before the organization's child context parses `{org}` (a
/// malformed id is `400`, credential or not), and the routes that need an identity refuse with
/// `401` after that, in ``RequirePermission``.
struct TokenAuthenticatorMiddleware: AuthenticatorMiddleware {
    typealias Context = KeyBrokerRequestContext
    typealias Identity = Principal

    init() {}

    func authenticate(request: Request, context: Context) async throws -> Principal? {
        let snapshot = try context.snapshot
        if let authorization = request.headers[.authorization] {
            // A token that is presented decides alone: a wrong token is not rescued by a
            // certificate, so what a request may do never depends on which credential failed.
            return snapshot.authenticator.authenticate(authorization: authorization)
        }
        guard !snapshot.clients.isEmpty, let peer = await TLSConnectionMark.peer(of: context.channel) else { return nil }
        // Verified under a client CA that a reload has since replaced: no longer an identity.
        guard peer.clientCAFingerprint == snapshot.server.tls?.clientCAFingerprint else { return nil }
        return snapshot.clients.authenticate(certificate: peer.certificate, at: Date())
    }
}
