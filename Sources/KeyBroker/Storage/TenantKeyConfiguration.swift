public import Foundation

/// An organization's own key configuration, set by its administrator through the API: the
/// tenant layer between the operator's pins (`organizations:`, which win) and `defaults`.
public struct TenantKeyConfiguration: Sendable, Hashable {
    /// The type of keystore: a key of `tenantKeystores:`, or ``defaultType`` for the
    /// operator's default keystore.
    public let type: String
    /// The tenant's own key (for `aws-kms-symmetric`: an alias ARN or key ARN); `nil` for
    /// the default type.
    public let keyAlias: String?
    /// How often its pair rotates; `nil`: as `defaults.rotation` says.
    public let rotation: RotationCadence?
    /// The RSA spec of its pairs; `nil`: the keystore's, else `defaults.keyPairSpec`.
    public let keyPairSpec: KeyPairSpec?

    /// Whether this is the platform's default in every respect (what a reset leaves).
    public var followsDefaults: Bool { type == Self.defaultType && rotation == nil && keyPairSpec == nil }

    /// The type that means "the platform's default keystore".
    public static let defaultType = "default"

    /// For the audit log: `default`, or the type, key, cadence and spec that are set.
    public var summary: String {
        guard !followsDefaults else { return "default" }
        return [type, keyAlias, rotation?.rawValue, keyPairSpec?.rawValue].compactMap { $0 }.joined(separator: " ")
    }

    /// The audit log's `change` from `old` (`nil`: none stored) to `new`.
    public static func change(from old: TenantKeyConfiguration?, to new: TenantKeyConfiguration) -> String {
        "\(old?.summary ?? "default") -> \(new.summary)"
    }

    /// The platform's default in every respect.
    public static let platformDefault = TenantKeyConfiguration(type: defaultType, keyAlias: nil, rotation: nil, keyPairSpec: nil)

    /// Creates a configuration.
    public init(type: String, keyAlias: String?, rotation: RotationCadence?, keyPairSpec: KeyPairSpec?) {
        self.type = type
        self.keyAlias = keyAlias
        self.rotation = rotation
        self.keyPairSpec = keyPairSpec
    }
}

/// A tenant's configuration as stored, with its version (for `If-Match`) and the last error
/// a test, rotation or unwrap through it met.
public struct StoredKeyConfiguration: Sendable, Hashable {
    /// Whose.
    public let organization: OrganizationID
    /// What.
    public let configuration: TenantKeyConfiguration
    /// Starts at 1 and grows by one with every save.
    public let version: Int
    /// When it was last saved, and by whom (a token name or CLI user).
    public let updatedAt: Date
    public let updatedBy: String
    /// The last failure through it, cleared by a save.
    public let lastError: KeyConfigurationError?

    /// Creates a stored configuration.
    public init(
        organization: OrganizationID,
        configuration: TenantKeyConfiguration,
        version: Int,
        updatedAt: Date,
        updatedBy: String,
        lastError: KeyConfigurationError?
    ) {
        self.organization = organization
        self.configuration = configuration
        self.version = version
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
        self.lastError = lastError
    }
}

/// A failure through a tenant's configuration, kept on it so that the tenant's administrator
/// sees the backend's own error (`NotFoundException`, …) where they edit it.
public struct KeyConfigurationError: Sendable, Hashable, Codable {
    /// The backend's code (`DisabledException`), or the kind of failure when it gave none.
    public let code: String
    /// The message, safe to show the tenant (no server paths, no other tenant's data).
    public let message: String
    /// When.
    public let at: Date

    /// Creates an error record.
    public init(code: String, message: String, at: Date) {
        self.code = code
        self.message = message
        self.at = at
    }
}

/// The outcome of ``KeyPairStore/saveKeyConfiguration(_:for:expectedVersion:updatedBy:at:newPair:)``.
public enum KeyConfigurationSave: Sendable, Hashable {
    /// Stored, with the new pair as the organization's current pair.
    case saved(StoredKeyConfiguration)
    /// Nothing stored: the stored version is not the expected one (another save came first).
    case conflict(storedVersion: Int)
    /// The organization is revoked: nothing stored.
    case revoked
}
