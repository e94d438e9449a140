public import Foundation
public import KeyBroker

/// `GET /v1/status`, and `keybroker status --json`: the health of keystores and store, a
/// summary of the organizations, and one page of them. It costs the same at any number of
/// organizations.
public struct StatusView: Codable, Sendable {
    public struct Keystore: Codable, Sendable {
        public let name: String
        public let type: String
        public let healthy: Bool
        public let since: Date?
        public let checkedAt: Date?
        public let detail: String
        public let latencyMs: Double
        public let error: KeystoreErrorView?
    }

    /// The key-pair store as the health monitor last saw it.
    public struct Store: Codable, Sendable {
        public let usable: Bool
        public let checkedAt: Date?
        /// Why it is not usable (for a scoped caller, the kind only).
        public let error: String?
    }

    /// A current key pair whose stored row cannot be read.
    public struct CorruptKeyPair: Codable, Sendable {
        public let id: String
        public let organization: String?
        public let problem: String
    }

    public struct Organization: Codable, Sendable {
        public let organization: String
        public let keystore: String
        public let rotation: String
        public let keyPairSpec: String
        public let currentKeyPair: KeyPairView?
        public let nextRotation: Date?
        public let rotationDue: Bool
        public let keystoreChanged: Bool
        /// Rotation is due but the keystore cannot make a new pair: encryption goes on with
        /// the last known public key.
        public let fallbackInUse: Bool
        public let lastRotationError: String?
        public let nextRotationAttempt: Date?
        /// The last failure through the organization's own keystore (test, rotation, unwrap),
        /// with KMS's code and message, as its key configuration keeps it.
        public let keyConfigurationError: KeyConfigurationError?
    }

    /// How many organizations there are and which keystores they use, from the store's
    /// counts (for a scoped caller: its own organizations only, and no keystore counts).
    public struct Summary: Codable, Sendable {
        /// Organizations with a current pair.
        public let organizations: Int
        /// Per keystore: the organizations whose current pair it wrapped, and all its pairs.
        public let keystores: [KeystoreCount]
        /// Organizations whose last rotation failed (they encrypt with their last pair).
        public let rotationFailures: Int
        /// Current pairs found unreadable so far.
        public let corruptKeyPairs: Int
    }

    /// One keystore's share of the organizations.
    public struct KeystoreCount: Codable, Sendable {
        public let name: String
        public let type: String
        public let organizations: Int
        public let pairs: Int
    }

    public let checkedAt: Date
    /// The store; absent in the CLI's embedded mode, which opened it to answer.
    public let store: Store?
    public let keystores: [Keystore]
    public let summary: Summary
    /// One page, by organization id: for a `"*"` caller the organizations in trouble (a failed
    /// rotation, or — in the CLI's embedded mode — a new pair due); for a scoped caller its
    /// own organizations.
    public let organizations: [Organization]
    /// Pass as `after` for the next page; absent on the last.
    public let nextAfter: String?
    public let corruptKeyPairs: [CorruptKeyPair]
    /// What the operator should fix about the server itself: plain HTTP on a network address,
    /// a TLS certificate near its end. Empty for a caller scoped to some organizations.
    public let warnings: [String]

    /// Builds the view.
    public init(
        checkedAt: Date,
        store: Store?,
        keystores: [Keystore],
        summary: Summary,
        organizations: [Organization],
        nextAfter: String?,
        corruptKeyPairs: [CorruptKeyPair],
        warnings: [String] = []
    ) {
        self.warnings = warnings
        self.checkedAt = checkedAt
        self.store = store
        self.keystores = keystores
        self.summary = summary
        self.organizations = organizations
        self.nextAfter = nextAfter
        self.corruptKeyPairs = corruptKeyPairs
    }
}
