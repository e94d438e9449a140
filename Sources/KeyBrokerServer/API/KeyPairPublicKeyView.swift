public import Foundation
public import KeyBroker

/// `GET /v1/orgs/{org}/keypairs/{id}`: one pair's public key and what never changes about
/// the pair (whether it is current does change, so it is not here: the answer is immutable).
public struct KeyPairPublicKeyView: Codable, Sendable {
    public let id: String
    public let organization: String
    public let createdAt: Date
    public let spec: String
    public let publicKeyFingerprint: String
    public let publicKeyPEM: String
    public let publicKeyDER: String

    /// The view of a stored pair.
    /// - Throws: ``KeyBroker/BrokerError`` (`corruptRecord`) when the stored public key is no
    ///   RSA key.
    public init(_ record: KeyPairRecord) throws(BrokerError) {
        let current = try PublicKeyView(record)
        id = current.keyPair.id
        organization = current.keyPair.organization
        createdAt = current.keyPair.createdAt
        spec = current.keyPair.spec
        publicKeyFingerprint = current.keyPair.publicKeyFingerprint
        publicKeyPEM = current.publicKeyPEM
        publicKeyDER = current.publicKeyDER
    }
}
