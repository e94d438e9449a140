public import Foundation
import KeyBroker

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
}
