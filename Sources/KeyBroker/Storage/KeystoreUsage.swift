import Foundation

/// How many pairs of one organization a keystore wrapped.
public struct KeystoreUsage: Sendable, Hashable {
    /// The keystore instance name.
    public let keystoreName: String
    /// Its plugin type when the pairs were made.
    public let keystoreType: String
    /// The organization, as stored (printable even when it is not a valid id).
    public let organization: String
    /// How many pairs.
    public let count: Int

    /// Creates a usage row.
    public init(keystoreName: String, keystoreType: String, organization: String, count: Int) {
        self.keystoreName = keystoreName
        self.keystoreType = keystoreType
        self.organization = organization
        self.count = count
    }
}
