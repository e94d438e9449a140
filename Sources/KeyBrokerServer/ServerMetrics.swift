import CoreMetrics
import KeyBroker
import Prometheus

/// The server's metrics, through swift-metrics with an explicit Prometheus factory (no
/// global bootstrap, so that several servers — or tests — keep their own registries).
public final class ServerMetrics: Sendable {
    /// Where the metrics live; `GET /metrics` renders it.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    /// Creates an empty set of metrics.
    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
            .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
        ]
        self.factory = factory
    }

    func request(route: String, method: String, status: Int, duration: Duration) {
        Counter(label: "keybroker_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory).increment()
        CoreMetrics.Timer(label: "keybroker_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(Int64(duration.seconds * 1e9))
    }

    func keystoreCall(keystore: String, operation: String, duration: Duration, error: KeystoreError?) {
        CoreMetrics.Timer(label: "keybroker_keystore_call_duration_seconds", dimensions: [("keystore", keystore), ("operation", operation)], factory: factory)
            .recordNanoseconds(Int64(duration.seconds * 1e9))
        Counter(
            label: "keybroker_keystore_calls_total",
            dimensions: [("keystore", keystore), ("operation", operation), ("result", error == nil ? "ok" : "error")], factory: factory
        ).increment()
        if let error {
            Counter(label: "keybroker_keystore_errors_total", dimensions: [("keystore", keystore), ("kind", error.kind.description)], factory: factory)
                .increment()
        }
    }

    func cache(_ event: PrivateKeyCache.Event) {
        let result: String
        switch event {
        case .hit: result = "hit"
        case .miss: result = "miss"
        case .joined: result = "joined"
        }
        Counter(label: "keybroker_private_key_cache_lookups_total", dimensions: [("result", result)], factory: factory).increment()
    }

    func rotation(reason: KeyPairReason, succeeded: Bool) {
        Counter(
            label: "keybroker_rotations_total", dimensions: [("reason", reason.rawValue), ("result", succeeded ? "done" : "failed")],
            factory: factory
        ).increment()
    }

    func auditFailure() {
        Counter(label: "keybroker_audit_write_failures_total", factory: factory).increment()
    }

    func generationRateLimited() {
        Counter(label: "keybroker_generations_rate_limited_total", factory: factory).increment()
    }

    func organizationsOnFallback(_ count: Int) {
        Gauge(label: "keybroker_organizations_on_fallback", factory: factory).record(count)
    }

    func render() -> [UInt8] { registry.emitToBuffer() }
}

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
