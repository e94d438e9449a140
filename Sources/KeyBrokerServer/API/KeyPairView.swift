public import Foundation
public import KeyBroker

/// A key pair as the API shows it.
public struct KeyPairView: Codable, Sendable, Equatable {
    public let id: String
    public let organization: String
    public let current: Bool
    public let createdAt: Date
    public let reason: String
    public let requestedBy: String
    public let keystore: String
    public let keystoreType: String
    public let backendKeyReference: String?
    public let spec: String
    public let publicKeyFingerprint: String

    /// The view of a stored pair.
    public init(_ record: KeyPairRecord, current: Bool) {
        id = record.id.uuidString.lowercased()
        organization = record.organization.rawValue
        self.current = current
        createdAt = record.createdAt
        reason = record.reason.rawValue
        requestedBy = record.requestedBy
        keystore = record.keystoreName
        keystoreType = record.keystoreType
        backendKeyReference = record.backendKeyReference
        spec = record.spec.rawValue
        publicKeyFingerprint = record.publicKeyFingerprint
    }
}
