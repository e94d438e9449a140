import KeyBroker
import NoneKeystore

/// A test double, not a backend: a keystore whose calls fail on demand, delegating to the
/// `none` keystore otherwise. Used where a real backend cannot be made to fail on cue.
/// Configured as `type: test-failing` with `failOn: generate | decrypt | decrypt-unreachable | decrypt-bad-ciphertext | decrypt-leaky | deny-foreign-context | health | nothing`.
enum FailingKeystorePlugin: KeystorePlugin {
    static let type = "test-failing"

    static func make(name: String, settings: ConfigMapping, context: PluginContext) -> (any Keystore)? {
        let failOn = settings["failOn"]?.string() ?? "nothing"
        return FailingKeystore(name: name, failOn: failOn)
    }
}

struct FailingKeystore: Keystore {
    let name: String
    let failOn: String
    var type: String { FailingKeystorePlugin.type }
    private var inner: NoneKeystore { NoneKeystore(name: name) }

    static func backendError(_ name: String) -> KeystoreError {
        KeystoreError(
            .denied,
            keystore: name,
            message: "the backend refused",
            backendCode: "AccessDeniedException",
            backendMessage: "User is not authorized to perform kms:Decrypt",
            hint: "fix the key policy"
        )
    }

    func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        if failOn == "generate" { throw Self.backendError(name) }
        return try await inner.generateKeyPair(spec, context: context)
    }

    func decryptPrivateKey(_ wrapped: WrappedPrivateKey, context: EncryptionContext) async throws(KeystoreError) -> PrivateKeyMaterial {
        if failOn == "decrypt" { throw Self.backendError(name) }
        if failOn == "deny-foreign-context", !(context.pairs.values.first ?? "").hasPrefix("acme") {
            // How KMS refuses a context its key policy does not allow.
            throw Self.backendError(name)
        }
        if failOn == "decrypt-leaky" {
            // What a shared backend's error can carry: the organization of the failed call's
            // context and a path on the server.
            let organization = context.pairs.values.first ?? "?"
            throw KeystoreError(
                .denied,
                keystore: name,
                message: "reading /srv/keybroker/secret/\(organization).key failed for \(organization)",
                backendCode: "AccessDeniedException",
                backendMessage: "no kms:Decrypt with kms:EncryptionContext:organization-id = \(organization)"
            )
        }
        if failOn == "decrypt-bad-ciphertext" {
            throw KeystoreError(
                .badCiphertext,
                keystore: name,
                message: "KMS Decrypt failed",
                backendCode: "InvalidCiphertextException",
                backendMessage: "The ciphertext is invalid"
            )
        }
        if failOn == "decrypt-unreachable" {
            throw KeystoreError(
                .unreachable,
                keystore: name,
                message: "KMS Decrypt failed",
                backendCode: "ConnectionFailed",
                backendMessage: "connection refused"
            )
        }
        return try await inner.decryptPrivateKey(wrapped, context: context)
    }

    func checkHealth() async -> KeystoreHealth {
        failOn == "health" ? .unhealthy(Self.backendError(name)) : .healthy("test keystore")
    }
}
