import Foundation
import KeyBroker
import NIOConcurrencyHelpers

/// Caps the key pairs the API generates for one organization per minute, so that one
/// tenant's edit token cannot make the broker spend its CPU and its keystores' quota on
/// pairs nobody needs. A sliding window of the last minute's generations per organization;
/// memory is bounded by the organizations that generated within the last minute.
final class GenerationLimiter: Sendable {
    private struct State {
        var recent: [OrganizationID: [Date]] = [:]
        var lastSweep = Date.distantPast
    }

    private let state = NIOLockedValueBox(State())
    private let window: TimeInterval = 60

    /// Takes a slot for `organization` at `now`, or says how long until one frees.
    /// - Parameter limit: generations allowed per minute.
    /// - Returns: `nil` when allowed, else the seconds to wait (at least 1).
    func acquire(_ organization: OrganizationID, limit: Int, now: Date) -> Int? {
        state.withLockedValue { state in
            sweep(&state, now: now)
            // A clock stepped back leaves entries "in the future": they no longer count, so a
            // backward step never locks an organization out.
            var times = state.recent[organization, default: []].filter { (0..<window).contains(now.timeIntervalSince($0)) }
            if times.count >= limit, let oldest = times.first {
                state.recent[organization] = times
                return max(1, Int((window - now.timeIntervalSince(oldest)).rounded(.up)))
            }
            times.append(now)
            state.recent[organization] = times
            return nil
        }
    }

    /// Takes a slot, or refuses with the one message a caller sees for the cap (generations
    /// and tests count alike) and counts the refusal.
    func admit(_ organization: OrganizationID, limit: Int, now: Date, metrics: ServerMetrics) throws(BrokerError) {
        guard let wait = acquire(organization, limit: limit, now: now) else { return }
        metrics.generationRateLimited()
        throw BrokerError.rateLimited(
            retryAfter: wait,
            "organization '\(organization)' had \(limit) key-pair generations or tests in the last minute (server.limits.generationsPerOrganizationPerMinute); try again in \(wait) s"
        )
    }

    /// Drops organizations with nothing in the window, at most once per window.
    private func sweep(_ state: inout State, now: Date) {
        guard now.timeIntervalSince(state.lastSweep) >= window else { return }
        state.lastSweep = now
        state.recent = state.recent.filter { _, times in times.contains { (0..<window).contains(now.timeIntervalSince($0)) } }
    }
}
