public import CoreMetrics
import KeyBroker
import NIOConcurrencyHelpers
public import Prometheus

/// The server's metrics, through swift-metrics with an explicit Prometheus factory (no
/// global bootstrap, so that several servers — or tests — keep their own registries).
public final class ServerMetrics: Sendable {
    /// Where the metrics live; `GET /metrics` renders it.
    public let registry: PrometheusCollectorRegistry
    private let prometheus: PrometheusMetricsFactory
    /// The request metrics by route, method and status, made once each: making a metric looks
    /// it up in the registry by label strings, which every request would otherwise pay.
    /// Bounded: routes are the router's templates, methods and statuses the few it answers.
    private let requestMetrics = NIOLockedValueBox<[RequestKey: RequestMetrics]>([:])
    private let cacheLookups: [PrivateKeyCache.Event: CoreMetrics.Counter]
    private let publicKeyHits: CoreMetrics.Counter
    private let publicKeyMisses: CoreMetrics.Counter
    private let publicKeyEvictions: CoreMetrics.Counter
    private let publicKeyEntries: CoreMetrics.Gauge
    private let publicKeyBytes: CoreMetrics.Gauge

    private typealias RequestMetrics = (count: CoreMetrics.Counter, duration: CoreMetrics.Timer)

    private struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    /// Creates an empty set of metrics.
    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
            .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
        ]
        self.prometheus = factory
        cacheLookups = Dictionary(
            uniqueKeysWithValues: [(PrivateKeyCache.Event.hit, "hit"), (.miss, "miss"), (.joined, "joined")].map { event, result in
                (
                    event,
                    CoreMetrics.Counter(
                        label: "keybroker_private_key_cache_lookups_total",
                        dimensions: [("result", result)],
                        factory: factory
                    )
                )
            }
        )
        publicKeyHits = CoreMetrics.Counter(
            label: "keybroker_public_key_cache_lookups_total",
            dimensions: [("result", "hit")],
            factory: factory
        )
        publicKeyMisses = CoreMetrics.Counter(
            label: "keybroker_public_key_cache_lookups_total",
            dimensions: [("result", "miss")],
            factory: factory
        )
        publicKeyEvictions = CoreMetrics.Counter(label: "keybroker_public_key_cache_evictions_total", factory: factory)
        publicKeyEntries = CoreMetrics.Gauge(label: "keybroker_public_key_cache_entries", factory: factory)
        publicKeyBytes = CoreMetrics.Gauge(label: "keybroker_public_key_cache_bytes", factory: factory)
    }

    /// The factory behind these metrics, for keystores' own (``PluginContext/metrics``).
    public var factory: any MetricsFactory { prometheus }

    func request(route: String, method: String, status: Int, duration: Duration) {
        let key = RequestKey(route: route, method: method, status: status)
        let metrics = requestMetrics.withLockedValue { metrics in
            if let made = metrics[key] { return made }
            let made: RequestMetrics = (
                count: CoreMetrics.Counter(
                    label: "keybroker_http_requests_total",
                    dimensions: [("route", route), ("method", method), ("status", String(status))],
                    factory: prometheus
                ),
                duration: CoreMetrics.Timer(
                    label: "keybroker_http_request_duration_seconds",
                    dimensions: [("route", route)],
                    factory: prometheus
                )
            )
            metrics[key] = made
            return made
        }
        metrics.count.increment()
        metrics.duration.recordNanoseconds(duration.nanoseconds)
    }

    func keystoreCall(keystore: String, operation: String, duration: Duration, error: KeystoreError?) {
        CoreMetrics.Timer(
            label: "keybroker_keystore_call_duration_seconds",
            dimensions: [("keystore", keystore), ("operation", operation)],
            factory: prometheus
        )
        .recordNanoseconds(duration.nanoseconds)
        Counter(
            label: "keybroker_keystore_calls_total",
            dimensions: [("keystore", keystore), ("operation", operation), ("result", error == nil ? "ok" : "error")],
            factory: prometheus
        ).increment()
        if let error {
            Counter(
                label: "keybroker_keystore_errors_total",
                dimensions: [("keystore", keystore), ("kind", error.kind.description)],
                factory: prometheus
            )
            .increment()
        }
    }

    func cache(_ event: PrivateKeyCache.Event) {
        cacheLookups[event]?.increment()
    }

    func publicKeyCache(hit: Bool) {
        (hit ? publicKeyHits : publicKeyMisses).increment()
    }

    func publicKeyCache(evictions: Int, entries: Int, bytes: Int) {
        if evictions > 0 { publicKeyEvictions.increment(by: Int64(evictions)) }
        publicKeyEntries.record(entries)
        publicKeyBytes.record(bytes)
    }

    func rotation(reason: KeyPairReason, succeeded: Bool) {
        Counter(
            label: "keybroker_rotations_total",
            dimensions: [("reason", reason.rawValue), ("result", succeeded ? "done" : "failed")],
            factory: prometheus
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

    /// The last rotation pass: how long it took, how many organizations were due and how
    /// many it rotated.
    /// 1 while this replica holds the rotation lease.
    func rotationLeader(_ isLeader: Bool) {
        Gauge(label: "keybroker_rotation_leader", factory: factory).record(isLeader ? 1 : 0)
    }

    func rotationPass(duration: Duration, due: Int, rotated: Int) {
        Gauge(label: "keybroker_rotation_last_pass_seconds", factory: factory).record(duration.seconds)
        Gauge(label: "keybroker_rotation_last_pass_due", factory: factory).record(due)
        Gauge(label: "keybroker_rotation_last_pass_rotated", factory: factory).record(rotated)
    }

    func render() -> [UInt8] { registry.emitToBuffer() }
}

extension Duration {
    /// Whole nanoseconds, saturating (a duration beyond 292 years records as the largest).
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (sum, overflowed) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowed ? (seconds < 0 ? .min : .max) : sum
    }
}
