public import Foundation

/// How often an organization's key pair is replaced by a new one.
///
/// A rotation is due one cadence period after the current pair was created, measured
/// on the UTC calendar (so "monthly" from 31 January is due on 28/29 February, as
/// `Calendar` clamps the day).
public enum RotationCadence: String, CaseIterable, Sendable, CustomStringConvertible {
    case daily, weekly, monthly, yearly, never

    /// The cadence used where neither `defaults.rotation` nor the organization sets one.
    public static let `default` = RotationCadence.monthly

    /// When a pair created at `created` is due for rotation, or `nil` for `never`.
    /// - Parameter created: the creation time of the current pair.
    public func nextRotation(after created: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let component: (Calendar.Component, Int)
        switch self {
        case .daily: component = (.day, 1)
        case .weekly: component = (.day, 7)
        case .monthly: component = (.month, 1)
        case .yearly: component = (.year, 1)
        case .never: return nil
        }
        return calendar.date(byAdding: component.0, value: component.1, to: created)
    }

    /// Whether a pair created at `created` must be rotated at `now`.
    public func isDue(created: Date, now: Date) -> Bool {
        guard let next = nextRotation(after: created) else { return false }
        return next <= now
    }

    /// The latest creation time whose pair is due at `now`: a pair created at or before it is
    /// due, one created after it is not (``isDue(created:now:)``, to the microsecond a store
    /// keeps). `nil` for `never`. This is what lets a store answer "which pairs are due" with
    /// one range over an index of creation times, at any number of organizations.
    ///
    /// Months and years have no fixed length (31 January + 1 month is 28 February), so it is
    /// found by bisection over ``nextRotation(after:)``, which never decreases as the creation
    /// time grows: about 45 calendar steps, once per pass.
    public func latestDueCreation(at now: Date) -> Date? {
        guard self != .never else { return nil }
        let nowMicroseconds = (now.timeIntervalSince1970 * 1_000_000).rounded(.down)
        func due(_ microseconds: Double) -> Bool {
            self.isDue(created: Date(timeIntervalSince1970: microseconds / 1_000_000), now: now)
        }
        // A period is at most 366 days: the answer lies within a year and a week before now.
        var low = nowMicroseconds - 373 * 86_400 * 1_000_000
        var high = nowMicroseconds
        guard due(low) else { return nil }
        if due(high) { return Date(timeIntervalSince1970: high / 1_000_000) }
        // Invariant: low is due, high is not.
        while high - low > 1 {
            let middle = ((low + high) / 2).rounded(.down)
            if due(middle) { low = middle } else { high = middle }
        }
        return Date(timeIntervalSince1970: low / 1_000_000)
    }

    public var description: String { rawValue }

    /// The cadence names, for error messages.
    public static var allowedValues: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
