import Foundation
import KeyBroker
import NoneKeystore
import Synchronization

/// A test double, not a backend: a keystore whose calls fail on demand, delegating to the
/// `none` keystore otherwise. Used where a real backend cannot be made to fail on cue.
/// Configured as `type: test-failing` with `failOn: generate | decrypt | decrypt-unreachable | decrypt-bad-ciphertext | health | nothing`.
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
        if failOn == "decrypt-bad-ciphertext" {
            throw KeystoreError(
                .badCiphertext, keystore: name, message: "KMS Decrypt failed", backendCode: "InvalidCiphertextException",
                backendMessage: "The ciphertext is invalid")
        }
        if failOn == "decrypt-unreachable" {
            throw KeystoreError(.unreachable, keystore: name, message: "KMS Decrypt failed", backendCode: "ConnectionFailed", backendMessage: "connection refused")
        }
        return try await inner.decryptPrivateKey(wrapped, context: context)
    }

    func checkHealth() async -> KeystoreHealth {
        failOn == "health" ? .unhealthy(Self.backendError(name)) : .healthy("test keystore")
    }
}

/// A test double: the `none` keystore, counting calls and concurrency per instance name, with
/// an optional delay per call. Configured as `type: test-counting` with `delayMs: N`.
enum CountingKeystorePlugin: KeystorePlugin {
    static let type = "test-counting"

    static func make(name: String, settings: ConfigMapping, context: PluginContext) -> (any Keystore)? {
        let delay = settings["delayMs"]?.integer(in: 0...10_000) ?? 0
        return CountingKeystore(name: name, delay: .milliseconds(delay))
    }
}

struct CountingKeystore: Keystore {
    struct Counts: Sendable {
        var generate = 0
        var decrypt = 0
        var running = 0
        var maxRunning = 0
    }

    static let counts = Mutex<[String: Counts]>([:])

    let name: String
    let delay: Duration
    var type: String { CountingKeystorePlugin.type }
    private var inner: NoneKeystore { NoneKeystore(name: name) }

    static func counts(_ name: String) -> Counts { counts.withLock { $0[name] ?? Counts() } }
    static func reset(_ name: String) { counts.withLock { $0[name] = Counts() } }

    private func tracked<T>(_ update: (inout Counts) -> Void, _ body: () async throws(KeystoreError) -> T) async throws(KeystoreError) -> T {
        Self.counts.withLock { all in
            var entry = all[name] ?? Counts()
            update(&entry)
            entry.running += 1
            entry.maxRunning = max(entry.maxRunning, entry.running)
            all[name] = entry
        }
        defer { Self.counts.withLock { $0[name]?.running -= 1 } }
        if delay > .zero { try? await Task.sleep(for: delay) }
        return try await body()
    }

    func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        try await tracked({ $0.generate += 1 }) { () throws(KeystoreError) in try await inner.generateKeyPair(spec, context: context) }
    }

    func decryptPrivateKey(_ wrapped: WrappedPrivateKey, context: EncryptionContext) async throws(KeystoreError) -> PrivateKeyMaterial {
        try await tracked({ $0.decrypt += 1 }) { () throws(KeystoreError) in try await inner.decryptPrivateKey(wrapped, context: context) }
    }

    func checkHealth() async -> KeystoreHealth { .healthy("counting test keystore") }
}
