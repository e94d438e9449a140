public import Foundation
public import KeyBroker

/// `GET /v1/orgs/{org}`: an organization's effective configuration.
public struct OrganizationView: Codable, Sendable {
    public let organization: String
    public let keystore: String
    public let keystoreType: String
    public let rotation: String
    public let keyPairSpec: String
    public let currentKeyPair: KeyPairView?
    public let nextRotation: Date?
    public let lastRotationError: String?
    /// Present while the organization is revoked.
    public let revoked: RevocationView?
}

/// An organization's revocation: `revoked` in `GET /v1/orgs/{org}`, and the answer of
/// `POST /v1/orgs/{org}/revoke` and `…/restore`.
public struct RevocationView: Codable, Sendable {
    public let organization: String
    /// Whether the organization is revoked now.
    public let revoked: Bool
    /// When and by whom, while revoked.
    public let revokedAt: Date?
    public let revokedBy: String?
    /// Whether this request changed anything (revoking a revoked organization does not).
    public let changed: Bool?

    public init(_ organization: OrganizationID, revocation: Revocation?, changed: Bool?) {
        self.organization = organization.rawValue
        revoked = revocation != nil
        revokedAt = revocation?.revokedAt
        revokedBy = revocation?.revokedBy
        self.changed = changed
    }
}
