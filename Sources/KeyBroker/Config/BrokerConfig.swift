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
            keystore: keystore,
            rotation: overrides?.rotation ?? defaults.rotation,
            keyPairSpec: spec
        )
    }
}
