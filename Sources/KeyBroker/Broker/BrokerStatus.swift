public import Foundation

/// A snapshot of every keystore's health and a summary of the organizations' keys.
public struct BrokerStatus: Sendable {
    /// When the snapshot was taken.
    public let checkedAt: Date
    /// Every configured keystore.
    public let keystores: [KeystoreStatus]
    /// How many pairs each keystore wrapped, and how many organizations use it now.
    public let usage: [KeystoreUsage]
    /// The first organizations that need a new pair now.
    public let due: [OrganizationStatus]
    /// Whether more organizations than ``due`` need one.
    public let moreDue: Bool
    /// Current key pairs found unreadable while looking for due organizations.
    public let corruptKeyPairs: [CorruptKeyPair]

    /// Creates a snapshot.
    public init(
        checkedAt: Date,
        keystores: [KeystoreStatus],
        usage: [KeystoreUsage],
        due: [OrganizationStatus],
        moreDue: Bool,
        corruptKeyPairs: [CorruptKeyPair]
    ) {
        self.checkedAt = checkedAt
        self.keystores = keystores
        self.usage = usage
        self.due = due
        self.moreDue = moreDue
        self.corruptKeyPairs = corruptKeyPairs
    }
}

/// One keystore in a ``BrokerStatus``.
public struct KeystoreStatus: Sendable {
    /// The instance name.
    public let name: String
    /// The plugin type.
    public let type: String
    /// The result of its health check.
    public let health: KeystoreHealth
}

/// One organization in a ``BrokerStatus``.
public struct OrganizationStatus: Sendable {
    /// The organization.
    public let organization: OrganizationID
    /// Its effective settings.
    public let policy: OrganizationPolicy
    /// Its current pair, if it has one.
    public let current: KeyPairRecord?
    /// When the current pair is due for rotation.
    public let nextRotation: Date?
    /// Why it needs a new pair now, if it does (see ``Broker/rotationReason(for:current:at:)``).
    public let rotationReason: KeyPairReason?

    /// Whether it needs a new pair now (none yet, cadence due, or its keystore changed).
    public var rotationDue: Bool { rotationReason != nil }
    /// Whether the current pair was wrapped by another keystore than the configured one.
    public var keystoreChanged: Bool { rotationReason == .configChange }
}
