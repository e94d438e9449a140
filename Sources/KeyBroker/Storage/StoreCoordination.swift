public import Foundation

/// What must still hold when ``KeyPairStore/insertCurrent(_:if:)`` stores a pair, all checked
/// in the one transaction that stores it.
public struct InsertCondition: Sendable, Hashable {
    /// The organization's stored configuration must still be at this version (0: none).
    public var configurationVersion: Int?
    /// The organization's current pair must still be this one (`.some(nil)`: it has none): a
    /// rotation replaces the pair it found due, so that a "change key now" on another replica
    /// that replaced it meanwhile is not followed by a second new pair.
    public var replacing: UUID??
    /// The lease this writer holds must still be held, at this epoch (fencing: a replica that
    /// lost its lease while its write was under way cannot store it).
    public var fence: LeaseFence?
    /// The organization must not be revoked (checked against the store, not a replica's
    /// memory, which may be a second behind).
    public var unlessRevoked: Bool

    /// A condition.
    public init(configurationVersion: Int? = nil, replacing: UUID?? = nil, fence: LeaseFence? = nil, unlessRevoked: Bool = false) {
        self.configurationVersion = configurationVersion
        self.replacing = replacing
        self.fence = fence
        self.unlessRevoked = unlessRevoked
    }

    /// No condition: the pair is stored whatever else happened.
    public static let none = InsertCondition()
}

/// What ``KeyPairStore/insertCurrent(_:if:)`` did.
public enum InsertOutcome: Sendable, Hashable {
    /// The pair is stored and current.
    case stored
    /// Nothing stored: the organization's configuration is no longer at the expected version.
    case configurationChanged
    /// Nothing stored: the organization's current pair is no longer the one replaced.
    case currentChanged
    /// Nothing stored: the writer's lease expired or another holder took it.
    case leaseLost
    /// Nothing stored: the organization is revoked.
    case revoked
}

/// A lease as its holder proves it on each write: the store refuses a write whose epoch is
/// not the lease's epoch now, or whose lease has expired by the store's clock.
public struct LeaseFence: Sendable, Hashable, CustomStringConvertible {
    /// The lease, e.g. ``LeaseFence/rotationLease``.
    public let name: String
    /// Who holds it (unique per process run).
    public let holder: String
    /// Raised each time the lease changes hands (or lapses and is taken again).
    public let epoch: Int64

    /// A fence.
    public init(name: String, holder: String, epoch: Int64) {
        self.name = name
        self.holder = holder
        self.epoch = epoch
    }

    /// The lease of the replica that runs scheduled rotations.
    public static let rotationLease = "rotation"

    public var description: String { "\(name) lease epoch \(epoch) held by \(holder)" }
}

/// A lease granted (or renewed) by ``KeyPairStore/acquireLease(_:holder:for:)``.
public struct LeaseGrant: Sendable, Hashable {
    /// The fence to write with.
    public let fence: LeaseFence
    /// Whether this call took the lease (from nobody, an expired holder, or a new epoch)
    /// rather than renewing it.
    public let isNew: Bool

    /// A grant.
    public init(fence: LeaseFence, isNew: Bool) {
        self.fence = fence
        self.isNew = isNew
    }
}

/// An organization's revocation: while it stands, no private key of the organization is
/// decrypted or used, and it gets no new pair; its public key is still served.
public struct Revocation: Sendable, Hashable {
    /// Whose.
    public let organization: OrganizationID
    /// When.
    public let revokedAt: Date
    /// The identity that revoked it.
    public let revokedBy: String

    /// A revocation.
    public init(organization: OrganizationID, revokedAt: Date, revokedBy: String) {
        self.organization = organization
        self.revokedAt = revokedAt
        self.revokedBy = revokedBy
    }
}

/// One entry of a store's change feed: what other processes sharing the store must act on.
public struct StoreChange: Sendable, Hashable {
    /// What changed.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The organization's key configuration was saved or reset.
        case keyConfiguration = "key-configuration"
        /// The organization got a new current pair.
        case currentPair = "current-pair"
        /// The organization was revoked or restored.
        case revocation
        /// A replica reloaded its configuration file (the others reload theirs).
        case reload
    }

    /// Its place in the feed: increasing, not necessarily dense.
    public let sequence: Int64
    /// What changed.
    public let kind: Kind
    /// Whose (`nil` for ``Kind/reload``).
    public let organization: OrganizationID?

    /// A change.
    public init(sequence: Int64, kind: Kind, organization: OrganizationID?) {
        self.sequence = sequence
        self.kind = kind
        self.organization = organization
    }
}

/// A page of the change feed.
public struct StoreChanges: Sendable, Hashable {
    /// The changes after the cursor, oldest first.
    public let changes: [StoreChange]
    /// The changes up to this sequence were pruned (0: none).
    public let prunedThrough: Int64

    /// The feed no longer holds every change after the cursor: a reader must drop everything
    /// it derived from the store, and go on after ``prunedThrough``.
    public var missedSome: Bool { cursor < prunedThrough }
    private let cursor: Int64

    /// A page read after `cursor`.
    public init(after cursor: Int64, changes: [StoreChange], prunedThrough: Int64) {
        self.cursor = cursor
        self.changes = changes
        self.prunedThrough = prunedThrough
    }
}

/// A page of revoked organizations.
public struct RevocationPage: Sendable, Hashable {
    /// The revocations of the page that could be read.
    public let revocations: [Revocation]
    /// Where the next page starts (the last stored organization of this one, readable or
    /// not), or `nil` after the last page.
    public let next: String?

    /// A page.
    public init(revocations: [Revocation], next: String?) {
        self.revocations = revocations
        self.next = next
    }
}

extension KeyPairStore {
    /// ``insertCurrent(_:if:)`` with only a configuration version to keep.
    /// - Returns: whether it was stored.
    public func insertCurrent(_ record: KeyPairRecord, ifConfigurationVersion version: Int) async throws(StoreError) -> Bool {
        try await insertCurrent(record, if: InsertCondition(configurationVersion: version)) == .stored
    }
}

extension Duration {
    /// The duration in whole microseconds, saturating at the bounds of `Int64` (for stores that
    /// keep times as microseconds).
    public var saturatingMicroseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        return whole.addingReportingOverflow(attoseconds / 1_000_000_000_000).overflow ? .max : whole + attoseconds / 1_000_000_000_000
    }
}
