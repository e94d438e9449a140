import Foundation
public import KeyBroker
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
                error.kind,
                keystore: name,
                message: "the new pair did not decrypt again through KMS, so it was not stored: \(error.message)",
                backendCode: error.backendCode,
                backendMessage: error.backendMessage,
                hint: error.hint
            )
        }
        guard material.publicKeyDER == generated.publicKeyDER else {
            throw KeystoreError(
                .wrongKey,
                keystore: name,
                message: "KMS returned a public key that does not belong to the private key it encrypted; the pair was not stored",
                hint: "the endpoint is not answering as KMS does; check the endpoint setting"
            )
        }
        return generated
    }

    private func generateUnverified(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        switch generation {
        case .dataKeyPair:
            let response = try await call(
                .generateDataKeyPair,
                GenerateDataKeyPairRequest(KeyId: key.description, KeyPairSpec: spec.rawValue, EncryptionContext: context.pairs),
                context: context
            )
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
            let keyID = try verifiedKeyID(response.KeyId, operation: .generateDataKeyPair)
            return GeneratedKeyPair(publicKeyDER: publicKey, wrapped: WrappedPrivateKey(ciphertext: blob, backendKeyReference: keyID))
        case .local:
            return try await generateLocally(spec) { der throws(KeystoreError) in
                let plaintext = der.base64EncodedString()
                let response = try await call(
                    .encrypt,
                    EncryptRequest(KeyId: key.description, Plaintext: plaintext, EncryptionContext: context.pairs),
                    context: context
                )
                guard let blob = Data(base64Encoded: response.CiphertextBlob) else {
                    throw KeystoreError(.internalFailure, keystore: name, message: "KMS returned a ciphertext that is not base64")
                }
                return WrappedPrivateKey(ciphertext: blob, backendKeyReference: try verifiedKeyID(response.KeyId, operation: .encrypt))
            }
        }
    }

    public func decryptPrivateKey(
        _ wrapped: WrappedPrivateKey,
        context: EncryptionContext
    ) async throws(KeystoreError) -> PrivateKeyMaterial {
        guard let keyARN = wrapped.backendKeyReference else {
            throw KeystoreError(
                .badCiphertext,
                keystore: name,
                message: "the stored pair has no KMS key ARN, so it was not wrapped by an aws-kms-symmetric keystore"
            )
        }
        let response = try await call(
            .decrypt,
            DecryptRequest(KeyId: keyARN, CiphertextBlob: wrapped.ciphertext.base64EncodedString(), EncryptionContext: context.pairs),
            context: context,
            keyReference: keyARN
        )
        // Key-substitution defence: the key that answered must be the key that wrapped the pair.
        guard response.KeyId == keyARN else {
            throw KeystoreError(
                .wrongKey,
                keystore: name,
                message: "KMS decrypted with key \(response.KeyId), but the pair was wrapped by \(keyARN); refusing the result",
                hint: "the endpoint or key policy is answering with another key; check the endpoint setting"
            )
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
    func verifiedKeyID<Request, Response>(_ reported: String, operation: KMSOperation<Request, Response>) throws(KeystoreError) -> String {
        let shown = DisplayText.escaped(String(reported.prefix(256)))
        guard let arn = KMSKeyARN(reported), case .key = arn.resource, arn.partition == key.partition, arn.account == key.account,
            arn.region == key.region, key.resourceIsAlias || arn == key
        else {
            throw KeystoreError(
                .wrongKey,
                keystore: name,
                message:
                    "KMS \(operation.name) reported key '\(shown)', which is not \(key.resourceIsAlias ? "a key of account \(key.account) in \(key.region)" : "the configured key \(key)"); refusing the pair",
                hint: "the endpoint is not answering as KMS does; check the endpoint setting"
            )
        }
        return arn.description
    }

    public func checkHealth() async -> KeystoreHealth {
        let response: DescribeKeyResponse
        do {
            response = try await call(.describeKey, DescribeKeyRequest(KeyId: key.description), context: nil)
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
            return .unhealthy(
                KeystoreError(
                    .misconfigured,
                    keystore: name,
                    message: "KMS key \(arn) cannot wrap keys: \(wrongKind.joined(separator: "; "))",
                    hint: "configure a symmetric ENCRYPT_DECRYPT key (KeySpec SYMMETRIC_DEFAULT)"
                )
            )
        }
        guard problems.isEmpty else {
            return .unhealthy(
                KeystoreError(
                    .keyUnusable,
                    keystore: name,
                    message: "KMS key \(arn) cannot wrap keys: \(problems.joined(separator: "; "))",
                    backendCode: state,
                    hint: "enable the key (aws kms enable-key) or cancel its deletion (aws kms cancel-key-deletion)"
                )
            )
        }
        return .healthy("\(arn) via \(key), enabled, \(generation.rawValue) generation")
    }

    /// One KMS call, its failure mapped to a keystore error naming the operation and the key.
    private func call<Request, Response>(
        _ operation: KMSOperation<Request, Response>,
        _ request: Request,
        context: EncryptionContext?,
        keyReference: String? = nil
    ) async throws(KeystoreError) -> Response {
        do {
            return try await client.call(operation, request)
        } catch {
            throw KMSErrorMapping.keystoreError(
                error,
                operation: operation,
                keystore: name,
                key: keyReference ?? key.description,
                context: context
            )
        }
    }
}
