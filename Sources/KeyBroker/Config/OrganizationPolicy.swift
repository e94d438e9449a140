import Foundation

/// The effective settings of an organization.
public struct OrganizationPolicy: Sendable, Hashable {
    /// Where the settings come from, in order of precedence.
    public enum Source: String, Sendable, Hashable {
        /// `organizations:` in the operator's file (read-only over the API).
        case `operator`
        /// The organization's own configuration, stored through the API.
        case tenant
        /// `defaults:`.
        case `default`
    }

    /// The keystore that wraps its new pairs: a `keystores:` name, or a tenant keystore's
    /// stored name (``TenantKeystoreTemplate/instanceName``).
    public let keystore: String
    /// How often its pair rotates.
    public let rotation: RotationCadence
    /// The RSA spec of its new pairs.
    public let keyPairSpec: KeyPairSpec
    /// Where the settings come from.
    public let source: Source
    /// The tenant's own key, for a tenant keystore.
    public let keyAlias: String?

    /// Creates a policy.
    public init(keystore: String, rotation: RotationCadence, keyPairSpec: KeyPairSpec, source: Source = .default, keyAlias: String? = nil) {
        self.keystore = keystore
        self.rotation = rotation
        self.keyPairSpec = keyPairSpec
        self.source = source
        self.keyAlias = keyAlias
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
