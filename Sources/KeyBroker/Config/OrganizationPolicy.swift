import Foundation

/// The effective settings of an organization.
public struct OrganizationPolicy: Sendable, Hashable {
    /// The keystore that wraps its new pairs.
    public let keystore: String
    /// How often its pair rotates.
    public let rotation: RotationCadence
    /// The RSA spec of its new pairs.
    public let keyPairSpec: KeyPairSpec

    /// Creates a policy.
    public init(keystore: String, rotation: RotationCadence, keyPairSpec: KeyPairSpec) {
        self.keystore = keystore
        self.rotation = rotation
        self.keyPairSpec = keyPairSpec
    }
}

/// `organizations.<id>`: settings that differ from `defaults`.
public struct OrganizationOverrides: Sendable, Hashable {
    /// The keystore for new pairs.
    public let keystore: String?
    /// The rotation cadence.
    public let rotation: RotationCadence?
    /// The RSA spec.
    public let keyPairSpec: KeyPairSpec?
}
