public import Foundation
import KeyBroker

/// `GET /v1/status`, and `keybroker status --json`.
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
    }

    public let checkedAt: Date
    /// The store; absent in the CLI's embedded mode, which opened it to answer.
    public let store: Store?
    public let keystores: [Keystore]
    public let organizations: [Organization]
    public let corruptKeyPairs: [CorruptKeyPair]

    /// Builds the view.
    public init(checkedAt: Date, store: Store?, keystores: [Keystore], organizations: [Organization], corruptKeyPairs: [CorruptKeyPair]) {
        self.checkedAt = checkedAt
        self.store = store
        self.keystores = keystores
        self.organizations = organizations
        self.corruptKeyPairs = corruptKeyPairs
    }
}
