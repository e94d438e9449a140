import KeyBroker
import NoneKeystore
import Synchronization

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
