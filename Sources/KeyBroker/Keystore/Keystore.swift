import Foundation

/// A backend that wraps and unwraps the private halves of key-encryption key pairs.
///
/// One instance exists per named keystore in the configuration. Implementations must be
/// safe to call concurrently. Every method receives the encryption context that binds the
/// key to its organization, and an implementation must make an unwrap under a different
/// context fail (invariant 5).
public protocol Keystore: Sendable {
    /// The instance name from the configuration (`keystores.<name>`).
    var name: String { get }

    /// The plugin type that built this instance (`local-file`, …).
    var type: String { get }

    /// Creates a key pair whose private key is wrapped by this keystore.
    /// - Parameters:
    ///   - spec: the RSA spec.
    ///   - context: the context to bind the wrapped private key to.
    /// - Returns: the public key and the wrapped private key; the plaintext private key
    ///   does not leave the call.
    func generateKeyPair(
        _ spec: KeyPairSpec,
        context: EncryptionContext
    ) async throws(KeystoreError)
        -> GeneratedKeyPair

    /// Unwraps a private key that this keystore wrapped.
    /// - Parameters:
    ///   - wrapped: the wrapped key as stored on the pair.
    ///   - context: the context stored on the pair; a different one must fail.
    func decryptPrivateKey(
        _ wrapped: WrappedPrivateKey,
        context: EncryptionContext
    ) async throws(KeystoreError)
        -> PrivateKeyMaterial

    /// Checks that the backend is usable. Cheap, and called by background checkers and
    /// `status`, never on a request path.
    func checkHealth() async -> KeystoreHealth

    /// What shows that this keystore wrapped key pairs before (a master key file that
    /// exists), or `nil`. When the database is missing but a keystore shows prior use,
    /// KeyBroker refuses to create a new, empty database: the old one was lost, and a new
    /// one would strand every recording made before. Only cheap, local checks; no backend call.
    func priorUseEvidence() async -> String?
}

extension Keystore {
    /// No evidence: backends such as KMS leave nothing local to look at.
    public func priorUseEvidence() async -> String? { nil }
}
