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
    /// `tenantKeystores:`: the keystore types tenants may choose, by type; empty: tenants
    /// configure nothing.
    public let tenantKeystores: [String: TenantKeystoreTemplate]
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
            keyPairSpec: spec,
            source: overrides == nil ? .default : .operator
        )
    }

    /// The settings of an organization that configured its own key (`stored`), unless the
    /// operator pinned it (`organizations:` wins).
    public func policy(for organization: OrganizationID, stored: StoredKeyConfiguration?) -> OrganizationPolicy {
        guard organizations[organization] == nil, let stored else { return policy(for: organization) }
        let configuration = stored.configuration
        guard configuration.type != TenantKeyConfiguration.defaultType else {
            return OrganizationPolicy(
                keystore: defaults.keystore,
                rotation: configuration.rotation ?? defaults.rotation,
                keyPairSpec: configuration.keyPairSpec ?? keystores[defaults.keystore]?.keyPairSpec ?? defaults.keyPairSpec,
                source: configuration.followsDefaults ? .default : .tenant
            )
        }
        return OrganizationPolicy(
            keystore: TenantKeystoreTemplate.instanceName(of: configuration.type),
            rotation: configuration.rotation ?? defaults.rotation,
            keyPairSpec: configuration.keyPairSpec ?? tenantKeystores[configuration.type]?.keyPairSpec ?? defaults.keyPairSpec,
            source: .tenant,
            keyAlias: configuration.keyAlias
        )
    }
}
