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
    func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError)
        -> GeneratedKeyPair

    /// Unwraps a private key that this keystore wrapped.
    /// - Parameters:
    ///   - wrapped: the wrapped key as stored on the pair.
    ///   - context: the context stored on the pair; a different one must fail.
    func decryptPrivateKey(_ wrapped: WrappedPrivateKey, context: EncryptionContext) async throws(KeystoreError)
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

/// What the caller of a keystore expects of the call in progress.
public enum KeystoreCall {
    /// Set while the broker makes a call it expects the keystore to refuse (the keystore
    /// test's `context-binding` probe): such a refusal says nothing about the keystore's
    /// health, so instrumentation must not count it as an outage.
    @TaskLocal public static var expectsRefusal = false
}

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

/// The health of a keystore as last checked.
public struct KeystoreHealth: Sendable {
    /// `nil` when healthy; otherwise the error the backend gave.
    public let error: KeystoreError?
    /// A short note for operators (`key file ./data/master.key, id 3f2a…`).
    public let detail: String
    /// How long the check took.
    public let latency: Duration

    /// Whether the keystore can be used.
    public var isHealthy: Bool { error == nil }

    /// A healthy result.
    public static func healthy(_ detail: String, latency: Duration = .zero) -> Self {
        KeystoreHealth(error: nil, detail: detail, latency: latency)
    }

    /// An unhealthy result.
    public static func unhealthy(_ error: KeystoreError, latency: Duration = .zero) -> Self {
        KeystoreHealth(error: error, detail: error.description, latency: latency)
    }

    /// Creates a result.
    public init(error: KeystoreError?, detail: String, latency: Duration) {
        self.error = error
        self.detail = detail
        self.latency = latency
    }

    /// The same result with a measured latency.
    public func measured(_ latency: Duration) -> Self {
        KeystoreHealth(error: error, detail: detail, latency: latency)
    }
}
