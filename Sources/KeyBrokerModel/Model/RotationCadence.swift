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

    public var description: String { rawValue }

    /// The cadence names, for error messages.
    public static var allowedValues: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
