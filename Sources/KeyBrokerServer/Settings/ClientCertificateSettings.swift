public import Foundation
public import KeyBroker

/// One client certificate identity (`auth.clients[]`): a request over TLS that presents a
/// certificate verified against `server.tls.clientCA` and carries no token acts as it.
public struct ClientCertificateSettings: Sendable, Hashable {
    /// How a certificate is recognized.
    public enum Match: Sendable, Hashable {
        /// The SHA-256 of the certificate's SubjectPublicKeyInfo (DER): this key only, whatever
        /// the CA issues around it.
        case spkiSha256(Data)
        /// The certificate's subject in RFC 4514 form (`CN=recorder,O=Acme`): any certificate
        /// the CA issues to that name.
        case subject(String)
    }

    /// A name for audit logs.
    public let name: String
    /// How the certificate is recognized.
    public let match: Match
    /// What the identity may do.
    public let permissions: Set<Permission>
    /// The organizations it may do it for; `nil` means all (`"*"`).
    public let organizations: Set<OrganizationID>?

    /// Creates a client entry.
    public init(name: String, match: Match, permissions: Set<Permission>, organizations: Set<OrganizationID>?) {
        self.name = name
        self.match = match
        self.permissions = permissions
        self.organizations = organizations
    }
}
