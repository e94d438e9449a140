import Foundation

/// Durable storage of every key pair ever issued, and of which one is current per organization.
///
/// Implementations must make ``insertCurrent(_:)`` atomic (invariant 6) and keep at most
/// one current pair per organization even when several processes insert at once.
public protocol KeyPairStore: Sendable {
    /// Stores `record` and makes it its organization's current pair, in one transaction.
    func insertCurrent(_ record: KeyPairRecord) async throws

    /// The organization's current pair.
    func current(for organization: OrganizationID) async throws -> KeyPairRecord?

    /// A pair by id, of any organization.
    func keyPair(id: UUID) async throws -> StoredKeyPair?

    /// The organization's pairs, newest first.
    /// - Parameters:
    ///   - limit: at most this many.
    ///   - offset: skip this many of the newest.
    func history(for organization: OrganizationID, limit: Int, offset: Int) async throws -> [StoredKeyPair]

    /// Every organization's current pair, by organization.
    func currentPairs() async throws -> [KeyPairRecord]

    /// How many pairs each keystore wrapped, per organization.
    func keystoreUsage() async throws -> [KeystoreUsage]

    /// Checks that the store answers (for readiness).
    func ping() async throws
}

/// How many pairs of one organization a keystore wrapped.
public struct KeystoreUsage: Sendable, Hashable {
    /// The keystore instance name.
    public let keystoreName: String
    /// Its plugin type when the pairs were made.
    public let keystoreType: String
    /// The organization.
    public let organization: OrganizationID
    /// How many pairs.
    public let count: Int

    /// Creates a usage row.
    public init(keystoreName: String, keystoreType: String, organization: OrganizationID, count: Int) {
        self.keystoreName = keystoreName
        self.keystoreType = keystoreType
        self.organization = organization
        self.count = count
    }
}
