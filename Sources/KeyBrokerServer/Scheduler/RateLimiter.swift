import KeyBroker

/// Spaces calls to one keystore at least `1/rate` seconds apart.
actor RateLimiter {
    nonisolated let rate: Double
    private var next = ContinuousClock.now

    /// The spacing between two calls; the rate is clamped to what the configuration allows,
    /// so the spacing always fits the clock's arithmetic.
    private let spacing: Duration

    init(rate: Double) {
        self.rate = rate
        let clamped = min(max(rate, SchedulerSettings.minimumRate), SchedulerSettings.maximumRate)
        spacing = .nanoseconds(Int64((1_000_000_000 / clamped).rounded()))
    }

    func acquire() async {
        let now = ContinuousClock.now
        let slot = max(now, next)
        next = slot + spacing
        if slot > now { try? await Task.sleep(until: slot, clock: .continuous) }
    }
}
