import Foundation
public import KeyBroker
import NIOConcurrencyHelpers

/// The current pairs found unreadable — by a request, a rotation pass or a page of the
/// organization list — for the status, without a scan of every organization to find them.
///
/// Bounded: it keeps the first ``capacity`` reports (a damaged table can make every row
/// unreadable; the count of the rest is kept). A report is dropped when its organization
/// gets a new current pair.
public final class CorruptRecordLog: Sendable {
    /// How many reports are kept.
    public static let capacity = 1000

    private let state = NIOLockedValueBox<(reports: [String: CorruptKeyPair], dropped: Int)>(([:], 0))

    /// An empty log.
    public init() {}

    /// Notes `reports` (by pair id: a report seen twice is kept once).
    public func record(_ reports: [CorruptKeyPair]) {
        guard !reports.isEmpty else { return }
        state.withLockedValue { state in
            for report in reports where state.reports[Self.key(report)] == nil {
                if state.reports.count < Self.capacity {
                    state.reports[Self.key(report)] = report
                } else {
                    state.dropped &+= 1
                }
            }
        }
    }

    /// Reports are kept by organization and pair (an unreadable id is "?" for all of them).
    private static func key(_ report: CorruptKeyPair) -> String { "\(report.organization?.rawValue ?? "?")/\(report.keyPairID)" }

    /// Forgets the reports of `organization` (it has a new current pair).
    public func forget(_ organization: OrganizationID) {
        state.withLockedValue { state in
            guard state.reports.values.contains(where: { $0.organization == organization }) else { return }
            state.reports = state.reports.filter { $0.value.organization != organization }
        }
    }

    /// The reports kept, by organization and pair, and how many sightings of others were not
    /// kept once it was full (one unkept pair seen twice counts twice).
    public var reports: (reports: [CorruptKeyPair], more: Int) {
        state.withLockedValue { state in
            (
                state.reports.values.sorted {
                    ($0.organization?.rawValue ?? "", $0.keyPairID) < ($1.organization?.rawValue ?? "", $1.keyPairID)
                }, state.dropped
            )
        }
    }
}
