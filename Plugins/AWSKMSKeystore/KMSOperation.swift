import Foundation

/// One KMS operation KeyBroker uses, with its request and response shapes: its name — the
/// `X-Amz-Target` suffix, the IAM action, what messages call it — is written once, here.
struct KMSOperation<Request: Encodable & Sendable, Response: Decodable & Sendable>: Sendable {
    /// The operation's name (`Decrypt`).
    let name: String

    /// The IAM action a key policy must allow (`kms:Decrypt`).
    var action: String { "kms:\(name)" }
}

extension KMSOperation where Request == DescribeKeyRequest, Response == DescribeKeyResponse {
    /// Reads the key's metadata (the health check).
    static var describeKey: Self { Self(name: "DescribeKey") }
}

extension KMSOperation where Request == GenerateDataKeyPairRequest, Response == GenerateDataKeyPairResponse {
    /// KMS makes the pair and returns the private key encrypted (`data-key-pair` generation).
    static var generateDataKeyPair: Self { Self(name: "GenerateDataKeyPairWithoutPlaintext") }
}

extension KMSOperation where Request == EncryptRequest, Response == EncryptResponse {
    /// Wraps a private key KeyBroker generated (`local` generation).
    static var encrypt: Self { Self(name: "Encrypt") }
}

extension KMSOperation where Request == DecryptRequest, Response == DecryptResponse {
    /// Unwraps a private key.
    static var decrypt: Self { Self(name: "Decrypt") }
}

struct DescribeKeyRequest: Encodable, Sendable {
    let KeyId: String
}

struct DescribeKeyResponse: Decodable, Sendable {
    struct Metadata: Decodable, Sendable {
        let KeyId: String
        let Arn: String
        let Enabled: Bool
        let KeyState: String?
        let KeyUsage: String?
        let KeySpec: String?
        let CustomerMasterKeySpec: String?
        let MultiRegion: Bool?
    }
    let KeyMetadata: Metadata
}

struct GenerateDataKeyPairRequest: Encodable, Sendable {
    let KeyId: String
    let KeyPairSpec: String
    let EncryptionContext: [String: String]
}

struct GenerateDataKeyPairResponse: Decodable, Sendable {
    let KeyId: String
    let PublicKey: String
    let PrivateKeyCiphertextBlob: String
}

struct EncryptRequest: Encodable, Sendable {
    let KeyId: String
    let Plaintext: String
    let EncryptionContext: [String: String]
}

struct EncryptResponse: Decodable, Sendable {
    let KeyId: String
    let CiphertextBlob: String
}

struct DecryptRequest: Encodable, Sendable {
    let KeyId: String
    let CiphertextBlob: String
    let EncryptionContext: [String: String]
}

struct DecryptResponse: Decodable, Sendable {
    let KeyId: String
    let Plaintext: String
}
