import Foundation

/// `tenantKeystores.<type>`: a keystore type the operator offers to tenants, with the
/// platform-side settings (region, context key, the broker's own credentials, …). A tenant's
/// keystore is this template plus the settings the plugin leaves to the tenant
/// (``KeystorePlugin/tenantKeys``), such as its own `keyAlias`.
public struct TenantKeystoreTemplate: Sendable, Hashable {
    /// The plugin type, which is also the section's key and what tenants choose.
    public let type: String
    /// The keys a tenant sets.
    public let tenantKeys: [String]
    /// The encryption-context key tenants put in their key policy's condition.
    public let contextKey: String
    /// The spec for tenants that do not choose one.
    public let keyPairSpec: KeyPairSpec?
    /// Where the template starts in the file.
    public let location: ConfigLocation
    /// The template's YAML as written (references unresolved), read again to build each
    /// tenant's instance.
    let yaml: String

    /// The keystore name stored on pairs that a tenant's keystore of this type wrapped: it
    /// names the template, and the pair's backend key reference names the tenant's key.
    public var instanceName: String { Self.instanceName(of: type) }

    /// The stored keystore name for `type`.
    public static func instanceName(of type: String) -> String { "\(prefix)\(type)" }

    /// The template type a stored keystore name refers to, if it is a tenant's.
    public static func type(ofInstanceName name: String) -> String? {
        name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : nil
    }

    private static let prefix = "tenant:"

    /// The context that binds a key of `organization` in a keystore of this template.
    public func context(for organization: OrganizationID) -> EncryptionContext {
        .organization(organization, contextKey: contextKey)
    }
}
