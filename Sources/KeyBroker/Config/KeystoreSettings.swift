import Foundation

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
