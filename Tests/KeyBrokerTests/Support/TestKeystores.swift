import Foundation
import KeyBroker
import NoneKeystore

/// A test double, not a backend: a keystore whose calls fail on demand, delegating to the
/// `none` keystore otherwise. Used where a real backend cannot be made to fail on cue.
/// Configured as `type: test-failing` with `failOn: generate | decrypt | health | nothing`.
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
            .denied, keystore: name, message: "the backend refused", backendCode: "AccessDeniedException",
            backendMessage: "User is not authorized to perform kms:Decrypt", hint: "fix the key policy")
    }

    func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        if failOn == "generate" { throw Self.backendError(name) }
        return try await inner.generateKeyPair(spec, context: context)
    }

    func decryptPrivateKey(_ wrapped: WrappedPrivateKey, context: EncryptionContext) async throws(KeystoreError) -> PrivateKeyMaterial {
        if failOn == "decrypt" { throw Self.backendError(name) }
        return try await inner.decryptPrivateKey(wrapped, context: context)
    }

    func checkHealth() async -> KeystoreHealth {
        failOn == "health" ? .unhealthy(Self.backendError(name)) : .healthy("test keystore")
    }
}
