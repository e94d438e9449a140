import KeyBroker

/// A keystore that reports every call's latency and errors to the metrics and to the
/// health monitor, wrapped around the configured one.
struct InstrumentedKeystore: Keystore {
    let inner: any Keystore
    let metrics: ServerMetrics
    let onFailure: @Sendable (KeystoreError) -> Void

    var name: String { inner.name }
    var type: String { inner.type }

    func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        try await measure("generate") { () throws(KeystoreError) in try await inner.generateKeyPair(spec, context: context) }
    }

    func decryptPrivateKey(_ wrapped: WrappedPrivateKey, context: EncryptionContext) async throws(KeystoreError) -> PrivateKeyMaterial {
        try await measure("decrypt") { () throws(KeystoreError) in try await inner.decryptPrivateKey(wrapped, context: context) }
    }

    func checkHealth() async -> KeystoreHealth {
        let clock = ContinuousClock()
        let start = clock.now
        let health = await inner.checkHealth()
        metrics.keystoreCall(keystore: name, operation: "health", duration: clock.now - start, error: health.error)
        return health
    }

    private func measure<T>(_ operation: String, _ body: () async throws(KeystoreError) -> T) async throws(KeystoreError) -> T {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let result = try await body()
            metrics.keystoreCall(keystore: name, operation: operation, duration: clock.now - start, error: nil)
            return result
        } catch {
            metrics.keystoreCall(keystore: name, operation: operation, duration: clock.now - start, error: error)
            // An expected refusal (the test's context-binding probe) is no outage; a keystore
            // that did not answer during it is.
            let expected = KeystoreCall.expectsRefusal && !error.kind.isTransient
            if error.kind.isOutage, !expected { onFailure(error) }
            throw error
        }
    }
}
