import Foundation

/// A stored row that cannot be read back as a key pair.
public struct CorruptKeyPair: Sendable, Hashable {
    /// The pair's id as stored (it may itself be what is wrong).
    public let keyPairID: String
    /// The organization as stored, when it is a valid id.
    public let organization: OrganizationID?
    /// What is wrong with the row.
    public let problem: String

    /// Creates a report.
    public init(keyPairID: String, organization: OrganizationID?, problem: String) {
        self.keyPairID = keyPairID
        self.organization = organization
        self.problem = problem
    }
}
