import Crypto
public import Foundation
import KeyBroker
public import NIOSSL
import SwiftASN1
import X509

/// Finds the identity (`auth.clients`) of a client certificate that the TLS handshake has
/// already verified against `server.tls.clientCA`. Certificates are public, so the lookup
/// is a dictionary: one SHA-256 of the public key, or one parse of the subject.
public struct ClientCertificateAuthenticator: Sendable {
    private let byKey: [Data: Principal]
    private let bySubject: [String: Principal]

    /// Creates an authenticator for the configured clients (once per (re)load).
    public init(_ settings: AuthSettings) {
        var byKey: [Data: Principal] = [:]
        var bySubject: [String: Principal] = [:]
        for client in settings.clients {
            let principal = Principal(name: client.name, permissions: client.permissions, organizations: client.organizations)
            switch client.match {
            case .spkiSha256(let digest): byKey[digest] = principal
            case .subject(let subject): bySubject[subject] = principal
            }
        }
        self.byKey = byKey
        self.bySubject = bySubject
    }

    /// Whether any client is configured (when none is, requests never ask the connection).
    public var isEmpty: Bool { byKey.isEmpty && bySubject.isEmpty }

    /// The identity of a verified peer certificate, or `nil` when none matches: first by its
    /// public key, then by its subject.
    public func authenticate(certificate: NIOSSLCertificate, at time: Date) -> Principal? {
        // The handshake checked validity once; a keep-alive connection or a resumed session
        // may outlast it, so it is checked again for each request.
        let now = time.timeIntervalSince1970
        guard TimeInterval(certificate.notValidBefore) <= now, now < TimeInterval(certificate.notValidAfter) else { return nil }
        if !byKey.isEmpty, let spki = try? certificate.extractPublicKey().toSPKIBytes(),
            let principal = byKey[Data(SHA256.hash(data: spki))]
        {
            return principal
        }
        if !bySubject.isEmpty, let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) {
            return bySubject[Self.subject(of: parsed)]
        }
        return nil
    }

    /// The RFC 4514 form of a certificate's subject, as `auth.clients[].subject` is written
    /// (and as `openssl x509 -noout -subject -nameopt RFC2253` prints it).
    static func subject(of certificate: Certificate) -> String { certificate.subject.description }
}
