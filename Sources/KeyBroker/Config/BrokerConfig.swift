import Foundation

/// A validated configuration. Built only by ``ConfigLoader``.
public struct BrokerConfig: Sendable {
    /// The file it was read from.
    public let source: String
    /// `server:`; used by `keybroker serve`.
    public let server: ServerSettings
    /// `storage:`.
    public let storage: StorageSettings
    /// `keystores:` by instance name.
    public let keystores: [String: KeystoreSettings]
    /// `defaults:`.
    public let defaults: OrganizationPolicy
    /// `organizations:`: the organizations with settings of their own.
    public let organizations: [OrganizationID: OrganizationOverrides]
    /// `auth:`.
    public let auth: AuthSettings
    /// `scheduler:`: rotation in `keybroker serve`.
    public let scheduler: SchedulerSettings
    /// `audit:`.
    public let audit: AuditSettings
    /// `privateKeyCache:`.
    public let privateKeyCache: PrivateKeyCachePolicy

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

/// `server:`.
public struct ServerSettings: Sendable, Hashable {
    /// The host to listen on. Loopback by default: a new deployment is not reachable from
    /// the network until an operator says so.
    public var host = "127.0.0.1"
    /// The TCP port.
    public var port = 8080
    /// Whether an unhealthy keystore makes `/readyz` fail (503) instead of `degraded` (200).
    public var strictReadiness = false
    /// How often keystores and the store are checked in the background.
    public var healthCheckInterval: Duration = .seconds(30)
    /// The largest request body accepted (413 above).
    public var maxRequestBytes = 64 * 1024
    /// How many key pairs the API may generate for one organization per minute (429 above);
    /// concurrent requests for one organization share one generation and count once.
    public var generationsPerOrganizationPerMinute = 6

    /// The defaults.
    public static let `default` = ServerSettings()
}

/// `scheduler:`: automatic rotation in `keybroker serve`.
public struct SchedulerSettings: Sendable, Hashable {
    /// Whether the server rotates on its own.
    public var enabled = true
    /// How often due organizations are looked for.
    public var interval: Duration = .seconds(60)
    /// How many rotations run at once.
    public var concurrency = 4
    /// How many key-pair generations per second one keystore receives at most.
    public var perKeystoreRate = 5.0
    /// The lowest `perKeystoreRate`: one generation per 1000 s.
    public static let minimumRate = 0.001
    /// The highest `perKeystoreRate`.
    public static let maximumRate = 1000.0
    /// The longest wait before a failed rotation is tried again (backoff doubles up to it).
    public var maxRetryDelay: Duration = .seconds(3600)

    /// The defaults.
    public static let `default` = SchedulerSettings()
}

/// `audit:`: where the audit log goes, and what happens when it cannot be written.
public struct AuditSettings: Sendable, Hashable {
    /// Where records go.
    public enum Destination: Sendable, Hashable {
        /// One JSON line per key operation on standard error.
        case stderr
        /// Appended to a file (created 0600).
        case file(URL)
    }

    /// What a key operation does when its audit record cannot be written.
    public enum FailurePolicy: String, Sendable, Hashable, CaseIterable {
        /// Refuse the operation (503): nothing happens that the audit log does not show.
        case refuse
        /// Go on, and report the failure on standard error and in the metrics.
        case `continue`
    }

    /// Where records go.
    public var destination: Destination
    /// What a key operation does when its record cannot be written.
    public var onFailure: FailurePolicy

    /// Standard error, refusing operations that cannot be audited.
    public static let `default` = AuditSettings(destination: .stderr, onFailure: .refuse)

    /// Creates the settings.
    public init(destination: Destination, onFailure: FailurePolicy) {
        self.destination = destination
        self.onFailure = onFailure
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

/// `auth:`: API tokens, used by `keybroker serve`.
public struct AuthSettings: Sendable, Hashable {
    /// The configured tokens.
    public let tokens: [TokenSettings]

    /// Creates the settings.
    public init(tokens: [TokenSettings]) {
        self.tokens = tokens
    }
}

/// One API token, stored as the SHA-256 of the token so the file never holds a usable secret.
public struct TokenSettings: Sendable, Hashable {
    /// A name for audit logs.
    public let name: String
    /// The lowercase hex SHA-256 of the token.
    public let sha256: String
    /// What the token may do.
    public let permissions: Set<Permission>
    /// The organizations it may do it for; `nil` means all (`"*"`).
    public let organizations: Set<OrganizationID>?

    /// Creates a token entry.
    public init(name: String, sha256: String, permissions: Set<Permission>, organizations: Set<OrganizationID>?) {
        self.name = name
        self.sha256 = sha256
        self.permissions = permissions
        self.organizations = organizations
    }
}

/// A permission an API token can hold.
public enum Permission: String, CaseIterable, Sendable, Hashable {
    case viewKeys = "encryption-key:view"
    case editKeys = "encryption-key:edit"
    case encrypt = "recording:encrypt"
    case decrypt = "recording:decrypt"
}
