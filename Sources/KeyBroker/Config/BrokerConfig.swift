import Foundation

/// A validated configuration. Built only by ``ConfigLoader``.
public struct BrokerConfig: Sendable {
    /// The file it was read from.
    public let source: String
    /// `storage:`.
    public let storage: StorageSettings
    /// `keystores:` by instance name.
    public let keystores: [String: KeystoreSettings]
    /// `defaults:`.
    public let defaults: OrganizationPolicy
    /// `organizations:`: the organizations with settings of their own.
    public let organizations: [OrganizationID: OrganizationOverrides]
    /// `privateKeyCache:`.
    public let privateKeyCache: PrivateKeyCachePolicy
    /// The sections other layers read (`server:`, `auth:`, … for `keybroker serve`).
    public let sections: ConfigSections

    /// The settings that apply to `organization`: its own, then the keystore's spec, then
    /// `defaults`.
    public func policy(for organization: OrganizationID) -> OrganizationPolicy {
        let overrides = organizations[organization]
        let keystore = overrides?.keystore ?? defaults.keystore
        let spec = overrides?.keyPairSpec ?? keystores[keystore]?.keyPairSpec ?? defaults.keyPairSpec
        return OrganizationPolicy(
            keystore: keystore, rotation: overrides?.rotation ?? defaults.rotation, keyPairSpec: spec)
    }
}

/// `storage:`.
public enum StorageSettings: Sendable, Hashable {
    /// A SQLite database file.
    case sqlite(SQLiteStorageSettings)
}

/// `storage.sqlite`.
public struct SQLiteStorageSettings: Sendable, Hashable {
    /// The database file.
    public let path: URL
    /// Whether a missing database file is created. An existing empty or foreign file is
    /// refused either way, so that a volume that failed to mount is never taken for a new
    /// deployment.
    public let createIfMissing: Bool

    /// Creates the settings.
    public init(path: URL, createIfMissing: Bool) {
        self.path = path
        self.createIfMissing = createIfMissing
    }
}

/// One `keystores.<name>` entry: what the core itself reads from it.
public struct KeystoreSettings: Sendable, Hashable {
    /// The instance name.
    public let name: String
    /// The plugin type.
    public let type: String
    /// The encryption-context key under which the organization id is bound.
    public let contextKey: String
    /// The spec for organizations of this keystore that do not set their own.
    public let keyPairSpec: KeyPairSpec?
    /// Where the entry starts, for findings about it.
    public let location: ConfigLocation

    /// The context that binds a key of `organization` in this keystore.
    public func context(for organization: OrganizationID) -> EncryptionContext {
        .organization(organization, contextKey: contextKey)
    }
}

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
