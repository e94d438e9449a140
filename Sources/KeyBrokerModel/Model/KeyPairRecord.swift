public import Foundation

/// One stored key-encryption key pair of an organization, current or historical.
///
/// Everything needed to unwrap its private key later is on the record itself — the
/// keystore's name and type, the backend's key reference and the encryption context — so
/// decryption never depends on the organization's *current* configuration (invariant 2).
public struct KeyPairRecord: Sendable, Hashable, Identifiable {
    /// A random identifier, carried inside every recording envelope.
    public let id: UUID
    /// The organization that owns the pair.
    public let organization: OrganizationID
    /// The name of the keystore instance that wrapped the private key.
    public let keystoreName: String
    /// The plugin type of that keystore (`local-file`, `aws-kms-symmetric`, `none`).
    public let keystoreType: String
    /// The backend's own reference to the wrapping key (a KMS key ARN, a master-key id).
    public let backendKeyReference: String?
    /// The RSA spec.
    public let spec: KeyPairSpec
    /// The public key as DER `SubjectPublicKeyInfo`.
    public let publicKeyDER: Data
    /// The private key as wrapped by the keystore; opaque to the core.
    public let wrappedPrivateKey: Data
    /// The context the private key was wrapped under.
    public let encryptionContext: EncryptionContext
    /// When the pair was created.
    public let createdAt: Date
    /// Why it was created.
    public let reason: KeyPairReason
    /// Who asked for it (a CLI user, a token name, `scheduler`).
    public let requestedBy: String

    /// Creates a record.
    public init(
        id: UUID,
        organization: OrganizationID,
        keystoreName: String,
        keystoreType: String,
        backendKeyReference: String?,
        spec: KeyPairSpec,
        publicKeyDER: Data,
        wrappedPrivateKey: Data,
        encryptionContext: EncryptionContext,
        createdAt: Date,
        reason: KeyPairReason,
        requestedBy: String
    ) {
        self.id = id
        self.organization = organization
        self.keystoreName = keystoreName
        self.keystoreType = keystoreType
        self.backendKeyReference = backendKeyReference
        self.spec = spec
        self.publicKeyDER = publicKeyDER
        self.wrappedPrivateKey = wrappedPrivateKey
        self.encryptionContext = encryptionContext
        self.createdAt = createdAt
        self.reason = reason
        self.requestedBy = requestedBy
    }

    /// The SHA-256 of the DER public key, hex: how operators and tools identify a public key.
    public var publicKeyFingerprint: String { PublicKeyEncryption.fingerprint(ofDER: publicKeyDER) }
}
