import Foundation
import KeyBroker
import Logging

/// Wraps private keys with the organization's own AWS KMS symmetric key, bound to the
/// organization by the encryption context. See ``AWSKMSKeystorePlugin``.
///
/// The stored wrapped key is the KMS `CiphertextBlob` itself, so in an emergency the
/// customer can decrypt it with their own tools (`aws kms decrypt` with the same context).
public final class AWSKMSKeystore: Keystore {
    /// How private keys come to exist.
    public enum Generation: String, Sendable, CaseIterable {
        /// `GenerateDataKeyPairWithoutPlaintext`: KMS makes the pair; the plaintext private
        /// key never exists in KeyBroker at generation time.
        case dataKeyPair = "data-key-pair"
        /// KeyBroker generates the pair and wraps the PKCS#8 private key with `Encrypt`.
        case local
    }

    public let name: String
    public var type: String { AWSKMSKeystorePlugin.type }
    /// The key as configured, in the home region.
    public let key: KMSKeyARN
    /// How pairs are generated.
    public let generation: Generation
    let client: KMSClient

    init(name: String, key: KMSKeyARN, generation: Generation, client: KMSClient) {
        self.name = name
        self.key = key
        self.generation = generation
        self.client = client
    }

    public func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        let generated = try await generateUnverified(spec, context: context)
        // Before the pair can be stored and its public key handed out: the private key must
        // come back from KMS, under this context, with the key that wrapped it, and match the
        // public key. A misbehaving endpoint is caught here, not at the first unwrap of a
        // recording that can then never be decrypted.
        let material: PrivateKeyMaterial
        do {
            material = try await decryptPrivateKey(generated.wrapped, context: context)
        } catch {
            throw KeystoreError(
                error.kind, keystore: name, message: "the new pair did not decrypt again through KMS, so it was not stored: \(error.message)",
                backendCode: error.backendCode, backendMessage: error.backendMessage, hint: error.hint)
        }
        guard material.publicKeyDER == generated.publicKeyDER else {
            throw KeystoreError(
                .wrongKey, keystore: name,
                message: "KMS returned a public key that does not belong to the private key it encrypted; the pair was not stored",
                hint: "the endpoint is not answering as KMS does; check the endpoint setting")
        }
        return generated
    }

    private func generateUnverified(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        switch generation {
        case .dataKeyPair:
            let response = try await call("GenerateDataKeyPairWithoutPlaintext", context: context) { () throws(KMSError) in
                try await client.call(
                    "GenerateDataKeyPairWithoutPlaintext",
                    GenerateDataKeyPairRequest(KeyId: key.description, KeyPairSpec: spec.rawValue, EncryptionContext: context.pairs),
                    as: GenerateDataKeyPairResponse.self)
            }
            guard let publicKey = Data(base64Encoded: response.PublicKey),
                let blob = Data(base64Encoded: response.PrivateKeyCiphertextBlob)
            else {
                throw KeystoreError(.internalFailure, keystore: name, message: "KMS returned a data key pair that is not base64")
            }
            do {
                // Refuse a public key that is not an RSA key of the requested size.
                let probe = try PublicKeyEncryption.wrapDataKey(Data(count: 32), publicKeyDER: publicKey)
                guard probe.count == spec.bits / 8 else {
                    throw KeyMaterialError("KMS returned a \(probe.count * 8)-bit public key for \(spec)")
                }
            } catch {
                throw KeystoreError(.internalFailure, keystore: name, message: "KMS returned an unusable public key: \(error)")
            }
            let keyID = try verifiedKeyID(response.KeyId, operation: "GenerateDataKeyPairWithoutPlaintext")
            return GeneratedKeyPair(publicKeyDER: publicKey, wrapped: WrappedPrivateKey(ciphertext: blob, backendKeyReference: keyID))
        case .local:
            return try await generateLocally(spec) { der throws(KeystoreError) in
                let plaintext = der.base64EncodedString()
                let response = try await call("Encrypt", context: context) { () throws(KMSError) in
                    try await client.call(
                        "Encrypt", EncryptRequest(KeyId: key.description, Plaintext: plaintext, EncryptionContext: context.pairs),
                        as: EncryptResponse.self)
                }
                guard let blob = Data(base64Encoded: response.CiphertextBlob) else {
                    throw KeystoreError(.internalFailure, keystore: name, message: "KMS returned a ciphertext that is not base64")
                }
                return WrappedPrivateKey(ciphertext: blob, backendKeyReference: try verifiedKeyID(response.KeyId, operation: "Encrypt"))
            }
        }
    }

    public func decryptPrivateKey(_ wrapped: WrappedPrivateKey, context: EncryptionContext) async throws(KeystoreError) -> PrivateKeyMaterial {
        guard let keyARN = wrapped.backendKeyReference else {
            throw KeystoreError(.badCiphertext, keystore: name, message: "the stored pair has no KMS key ARN, so it was not wrapped by an aws-kms-symmetric keystore")
        }
        let response = try await call("Decrypt", context: context, keyReference: keyARN) { () throws(KMSError) in
            try await client.call(
                "Decrypt",
                DecryptRequest(KeyId: keyARN, CiphertextBlob: wrapped.ciphertext.base64EncodedString(), EncryptionContext: context.pairs),
                as: DecryptResponse.self)
        }
        // Key-substitution defence: the key that answered must be the key that wrapped the pair.
        guard response.KeyId == keyARN else {
            throw KeystoreError(
                .wrongKey, keystore: name,
                message: "KMS decrypted with key \(response.KeyId), but the pair was wrapped by \(keyARN); refusing the result",
                hint: "the endpoint or key policy is answering with another key; check the endpoint setting")
        }
        guard var der = Data(base64Encoded: response.Plaintext) else {
            throw KeystoreError(.internalFailure, keystore: name, message: "KMS returned a plaintext that is not base64")
        }
        return try privateKey(fromUnwrapped: &der)
    }

    /// The key ARN KMS reported for a new pair, once it is one KMS could have used: a key ARN
    /// (not an alias) of the configured partition, account and region, and the configured key
    /// itself when a key ARN is configured. It is stored on the pair and every later `Decrypt`
    /// is pinned to it, so an endpoint that names another key here must be refused now.
    func verifiedKeyID(_ reported: String, operation: String) throws(KeystoreError) -> String {
        let shown = DisplayText.escaped(String(reported.prefix(256)))
        guard let arn = KMSKeyARN(reported), case .key = arn.resource, arn.partition == key.partition, arn.account == key.account,
            arn.region == key.region, key.resourceIsAlias || arn == key
        else {
            throw KeystoreError(
                .wrongKey, keystore: name,
                message: "KMS \(operation) reported key '\(shown)', which is not \(key.resourceIsAlias ? "a key of account \(key.account) in \(key.region)" : "the configured key \(key)"); refusing the pair",
                hint: "the endpoint is not answering as KMS does; check the endpoint setting")
        }
        return arn.description
    }

    public func checkHealth() async -> KeystoreHealth {
        let response: DescribeKeyResponse
        do {
            response = try await call("DescribeKey", context: nil) { () throws(KMSError) in
                try await client.call("DescribeKey", DescribeKeyRequest(KeyId: key.description), as: DescribeKeyResponse.self)
            }
        } catch {
            return .unhealthy(error)
        }
        let metadata = response.KeyMetadata
        // Values from KMS's answer go into messages and (the state) into the backend code,
        // which unauthenticated readiness shows: bounded and escaped, the state as a code.
        let arn = DisplayText.escaped(String(metadata.Arn.prefix(256)))
        let state = metadata.KeyState.flatMap(KMSClient.errorCode)
        let spec = DisplayText.escaped(String((metadata.KeySpec ?? metadata.CustomerMasterKeySpec ?? "SYMMETRIC_DEFAULT").prefix(64)))
        var problems: [String] = []
        if !metadata.Enabled || (metadata.KeyState.map { $0 != "Enabled" } ?? false) {
            problems.append("the key is \(state ?? "disabled")")
        }
        var wrongKind: [String] = []
        if spec != "SYMMETRIC_DEFAULT" { wrongKind.append("its key spec is \(spec), not SYMMETRIC_DEFAULT") }
        if let usage = metadata.KeyUsage, usage != "ENCRYPT_DECRYPT" {
            wrongKind.append("its key usage is \(DisplayText.escaped(String(usage.prefix(64)))), not ENCRYPT_DECRYPT")
        }
        guard wrongKind.isEmpty else {
            return .unhealthy(KeystoreError(
                .misconfigured, keystore: name, message: "KMS key \(arn) cannot wrap keys: \(wrongKind.joined(separator: "; "))",
                hint: "configure a symmetric ENCRYPT_DECRYPT key (KeySpec SYMMETRIC_DEFAULT)"))
        }
        guard problems.isEmpty else {
            return .unhealthy(KeystoreError(
                .keyUnusable, keystore: name, message: "KMS key \(arn) cannot wrap keys: \(problems.joined(separator: "; "))",
                backendCode: state, hint: "enable the key (aws kms enable-key) or cancel its deletion (aws kms cancel-key-deletion)"))
        }
        return .healthy("\(arn) via \(key), enabled, \(generation.rawValue) generation")
    }

    private func call<T>(
        _ operation: String, context: EncryptionContext?, keyReference: String? = nil, _ body: () async throws(KMSError) -> T
    ) async throws(KeystoreError) -> T {
        do {
            return try await body()
        } catch {
            throw KMSErrorMapping.keystoreError(
                error, operation: operation, keystore: name, key: keyReference ?? key.description, context: context)
        }
    }
}

/// Maps KMS errors to typed keystore errors with a hint an operator can act on.
enum KMSErrorMapping {
    /// - Parameter key: the key the call named (the configured alias, or the pair's stored key ARN).
    static func keystoreError(_ error: KMSError, operation: String, keystore: String, key: String, context: EncryptionContext?) -> KeystoreError {
        let condition = context.map { ctx in
            ctx.pairs.sorted { $0.key < $1.key }.map { "kms:EncryptionContext:\($0.key) = \($0.value)" }.joined(separator: ", ")
        }
        let (kind, hint): (KeystoreError.Kind, String?)
        switch error.code {
        case "AccessDeniedException", "AccessDenied":
            (kind, hint) = (.denied, "the key policy must allow kms:\(operation)" + (condition.map { " with \($0)" } ?? "") + " for KeyBroker's principal; see: keybroker aws key-policy")
        case "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "IncompleteSignature",
            "ExpiredTokenException", "MissingAuthenticationToken", "MissingCredentials", "InvalidSignatureException":
            (kind, hint) = (.denied, "check the AWS credentials KeyBroker uses (accessKeyId/secretAccessKey, AWS_* variables or the profile) and the server clock")
        case "DisabledException", "KMSInvalidStateException", "KeyUnavailableException":
            (kind, hint) = (.keyUnusable, "enable the key (aws kms enable-key) or cancel its scheduled deletion (aws kms cancel-key-deletion)")
        case "NotFoundException":
            (kind, hint) = (.keyUnusable, "check \(key): the alias or key does not exist in this account and region (keyAlias, region, endpoint)")
        case "InvalidCiphertextException":
            (kind, hint) = (.badCiphertext, "the stored key is corrupt, or the encryption context differs from the one it was wrapped with (another organization?)")
        case "InvalidResponse":
            (kind, hint) = (.internalFailure, "the endpoint answered with something that is not a KMS answer; check the endpoint setting")
        case "IncorrectKeyException":
            (kind, hint) = (.wrongKey, "the ciphertext was wrapped by another KMS key than the one recorded on the pair")
        case _ where KMSError.throttlingCodes.contains(error.code):
            (kind, hint) = (.throttled, "KMS request quota reached; KeyBroker retried with backoff; raise the quota or spread rotations")
        case "ValidationException", "InvalidKeyUsageException", "UnsupportedOperationException", "InvalidGrantTokenException":
            (kind, hint) = (.misconfigured, operation == "GenerateDataKeyPairWithoutPlaintext" ? "this endpoint may not support data key pairs; set generation: local" : "check the keystore configuration")
        default:
            if error.isTransport || (error.status ?? 0) >= 500 || error.code == "KMSInternalException" || error.code == "DependencyTimeoutException" {
                (kind, hint) = (.unreachable, "KMS at \(error.isTransport ? "the configured endpoint" : "its endpoint") did not serve the request; check the endpoint and network, then retry")
            } else {
                (kind, hint) = (.internalFailure, nil)
            }
        }
        let attempts = error.attempts > 1 ? " after \(error.attempts) attempts" : ""
        return KeystoreError(
            kind, keystore: keystore, message: "KMS \(operation) on \(key) failed\(attempts)", backendCode: error.code,
            backendMessage: error.message, hint: hint)
    }
}
