import Foundation

/// How many stored pairs one keystore wrapped, as one type: kept by the store as it writes,
/// so that reading it costs the same at any size of history.
public struct KeystoreUsage: Sendable, Hashable {
    /// The keystore instance name, as stored (printable even when damaged).
    public let keystoreName: String
    /// Its plugin type when the pairs were made.
    public let keystoreType: String
    /// How many pairs, current and old.
    public let pairs: Int
    /// How many of them are their organization's current pair: how many organizations use it.
    public let currentPairs: Int

    /// Creates a usage row.
    public init(keystoreName: String, keystoreType: String, pairs: Int, currentPairs: Int) {
        self.keystoreName = keystoreName
        self.keystoreType = keystoreType
        self.pairs = pairs
        self.currentPairs = currentPairs
    }

    /// How many pairs of one organization a keystore wrapped (for messages that name them).
    public struct PerOrganization: Sendable, Hashable {
        /// The organization, as stored (printable even when it is not a valid id).
        public let organization: String
        /// How many pairs.
        public let count: Int

        /// Creates a row.
        public init(organization: String, count: Int) {
            self.organization = organization
            self.count = count
        }
    }
}
