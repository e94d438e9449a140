import CoreMetrics
import KeyBroker
public import Prometheus

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
        Counter(
            label: "keybroker_http_requests_total",
            dimensions: [("route", route), ("method", method), ("status", String(status))],
            factory: factory
        ).increment()
        CoreMetrics.Timer(label: "keybroker_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(Int64(duration.seconds * 1e9))
    }

    func keystoreCall(keystore: String, operation: String, duration: Duration, error: KeystoreError?) {
        CoreMetrics.Timer(
            label: "keybroker_keystore_call_duration_seconds",
            dimensions: [("keystore", keystore), ("operation", operation)],
            factory: factory
        )
        .recordNanoseconds(Int64(duration.seconds * 1e9))
        Counter(
            label: "keybroker_keystore_calls_total",
            dimensions: [("keystore", keystore), ("operation", operation), ("result", error == nil ? "ok" : "error")],
            factory: factory
        ).increment()
        if let error {
            Counter(
                label: "keybroker_keystore_errors_total",
                dimensions: [("keystore", keystore), ("kind", error.kind.description)],
                factory: factory
            )
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
            label: "keybroker_rotations_total",
            dimensions: [("reason", reason.rawValue), ("result", succeeded ? "done" : "failed")],
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
