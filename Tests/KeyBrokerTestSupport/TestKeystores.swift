import Foundation
import KeyBroker
import NoneKeystore
import Synchronization

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

    private func tracked<T>(
        counting call: WritableKeyPath<Counts, Int>,
        _ body: () async throws(KeystoreError) -> T
    ) async throws(KeystoreError) -> T {
        Self.counts.withLock { all in
            var entry = all[name] ?? Counts()
            entry[keyPath: call] += 1
            entry.running += 1
            entry.maxRunning = max(entry.maxRunning, entry.running)
            all[name] = entry
        }
        defer { Self.counts.withLock { $0[name]?.running -= 1 } }
        if delay > .zero { try? await Task.sleep(for: delay) }
        return try await body()
    }

    func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        try await tracked(counting: \.generate) { () throws(KeystoreError) in try await inner.generateKeyPair(spec, context: context) }
    }

    func decryptPrivateKey(_ wrapped: WrappedPrivateKey, context: EncryptionContext) async throws(KeystoreError) -> PrivateKeyMaterial {
        try await tracked(counting: \.decrypt) { () throws(KeystoreError) in try await inner.decryptPrivateKey(wrapped, context: context) }
    }

    func checkHealth() async -> KeystoreHealth { .healthy("counting test keystore") }
}

/// One RSA key per test process, for records that need a real public key.
enum TestKeys {
    private static let shared = Result { try PrivateKeyMaterial(generating: .rsa2048) }

    static func rsa2048() throws -> PrivateKeyMaterial { try shared.get() }
}

/// A fake store, not a backend: the SQLite store, whose reads fail with a chosen error once
/// ``failReads()`` is called, while ``check()`` keeps passing — the failure a background check
/// can miss and a request path must report.
final class FailingStore: KeyPairStore, @unchecked Sendable {
    private let failure: StoreError
    private let state = Mutex<(inner: (any KeyPairStore)?, failing: Bool)>((nil, false))

    init(failure: StoreError) { self.failure = failure }

    /// Wraps the real store (called by the fixture once it has opened it).
    func wrap(_ inner: any KeyPairStore) -> Self {
        state.withLock { $0.inner = inner }
        return self
    }

    func failReads() { state.withLock { $0.failing = true } }

    private func inner(reading: Bool) throws(StoreError) -> any KeyPairStore {
        let (inner, failing) = state.withLock { ($0.inner, $0.failing) }
        if reading, failing { throw failure }
        guard let inner else { throw StoreError(.unavailable, "the fake store wraps nothing yet") }
        return inner
    }

    func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) { try await inner(reading: false).insertCurrent(record) }
    func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord? {
        try await inner(reading: true).current(for: organization)
    }
    func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair? {
        try await inner(reading: true).keyPair(id: id, of: organization)
    }
    func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair] {
        try await inner(reading: true).history(for: organization, limit: limit, offset: offset)
    }
    func currentPairs() async throws(StoreError) -> CurrentPairs { try await inner(reading: true).currentPairs() }
    func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] { try await inner(reading: false).keystoreUsage() }
    func check() async throws(StoreError) { try await inner(reading: false).check() }
}
