import Foundation
public import KeyBroker

/// `GET /v1/orgs/{org}/public-key`.
public struct PublicKeyView: Codable, Sendable {
    public let keyPair: KeyPairView
    public let publicKeyPEM: String
    public let publicKeyDER: String

    /// The view of a current pair.
    /// - Throws: ``KeyBroker/BrokerError`` (`corruptRecord`) when the stored public key is no
    ///   RSA key: such a key is never handed out.
    public init(_ record: KeyPairRecord) throws(BrokerError) {
        keyPair = KeyPairView(record, current: true)
        do {
            publicKeyPEM = try PublicKeyEncryption.pem(ofDER: record.publicKeyDER)
        } catch {
            throw BrokerError.corruptRecord(
                "the stored public key of key pair \(record.id.uuidString.lowercased()) is not an RSA public key; restore the row from a backup"
            )
        }
        publicKeyDER = record.publicKeyDER.base64EncodedString()
    }
}
