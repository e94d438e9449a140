public import Foundation

/// The result of ``Keystore/generateKeyPair(_:context:)``.
public struct GeneratedKeyPair: Sendable {
    /// The public key, DER `SubjectPublicKeyInfo`.
    public let publicKeyDER: Data
    /// The wrapped private key.
    public let wrapped: WrappedPrivateKey

    /// Creates a result.
    public init(publicKeyDER: Data, wrapped: WrappedPrivateKey) {
        self.publicKeyDER = publicKeyDER
        self.wrapped = wrapped
    }
}

/// A private key as wrapped by a keystore: an opaque blob plus the backend's reference to
/// the key that wrapped it (a KMS key ARN, a master-key id), which later unwraps must use.
public struct WrappedPrivateKey: Sendable, Hashable {
    /// The opaque blob.
    public let ciphertext: Data
    /// The backend's key reference, if it has one.
    public let backendKeyReference: String?

    /// Creates a wrapped key.
    public init(ciphertext: Data, backendKeyReference: String?) {
        self.ciphertext = ciphertext
        self.backendKeyReference = backendKeyReference
    }
}
