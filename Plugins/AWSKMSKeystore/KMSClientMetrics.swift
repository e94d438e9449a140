import CoreMetrics

/// What one keystore's KMS client reports: retries, an empty retry quota, the breaker, and
/// calls refused as busy. Tenants' keystores of one template share the keystore name, so
/// the breaker is a meter (open breakers) rather than a flag.
struct KMSClientMetrics: Sendable {
    let retries: Counter
    let quotaExhausted: Counter
    let breakerOpened: Counter
    let breakersOpen: Meter
    let rejectedOpen: Counter
    let busy: Counter
    let inFlight: Meter

    init(keystore: String, factory: any MetricsFactory) {
        let dimensions = [("keystore", keystore)]
        retries = Counter(label: "keybroker_kms_retries_total", dimensions: dimensions, factory: factory)
        quotaExhausted = Counter(label: "keybroker_kms_retry_quota_exhausted_total", dimensions: dimensions, factory: factory)
        breakerOpened = Counter(label: "keybroker_kms_circuit_opened_total", dimensions: dimensions, factory: factory)
        breakersOpen = Meter(label: "keybroker_kms_circuits_open", dimensions: dimensions, factory: factory)
        rejectedOpen = Counter(label: "keybroker_kms_circuit_rejected_total", dimensions: dimensions, factory: factory)
        busy = Counter(label: "keybroker_kms_busy_total", dimensions: dimensions, factory: factory)
        inFlight = Meter(label: "keybroker_kms_calls_in_flight", dimensions: dimensions, factory: factory)
    }
}
