public import Foundation

/// Which organizations' current pairs a page of ``KeyPairStore/currentPairs(_:limit:)`` holds,
/// and where it starts. Each query is one range over an index, so a page costs the same at one
/// organization and at a million.
public enum CurrentPairQuery: Sendable, Hashable {
    /// Every organization, by id, after the organization `after` (`nil`: from the first).
    /// Cursors are organizations as stored, so that a page can end on a damaged row.
    case byOrganization(after: String?)
    /// Organizations rotating on `cadence` (a tenant's own, from its stored configuration;
    /// `nil`: whatever the operator's file says) whose current pair was created at or before
    /// the date, oldest pair first (ties by organization id), after `after`: the pairs the
    /// cadence makes due (``RotationCadence/latestDueCreation(at:)``).
    case createdAtOrBefore(Date, cadence: RotationCadence?, after: AgeCursor?)
    /// Organizations whose current pair the keystore `keystore` wrapped, by id, after `after`.
    case wrappedBy(keystore: String, after: String?)

    /// A place in the order of ``createdAtOrBefore(_:after:)``.
    public struct AgeCursor: Sendable, Hashable {
        /// The creation time of the last pair seen, in microseconds since 1970.
        public let createdAtMicroseconds: Int64
        /// Its organization.
        public let organization: String

        /// Creates a cursor.
        public init(createdAtMicroseconds: Int64, organization: String) {
            self.createdAtMicroseconds = createdAtMicroseconds
            self.organization = organization
        }
    }
}

extension CurrentPairQuery {
    /// The same range, continuing after a row with these stored keys (a store builds the
    /// next page's query from the last row it read, whatever else in that row is damaged).
    /// - Parameter createdAtMicroseconds: the row's creation time as stored, `nil` when it
    ///   cannot be read (the age range then ends after this page rather than loop).
    public func continuing(afterOrganization organization: String, createdAtMicroseconds: Int64?) -> CurrentPairQuery {
        switch self {
        case .byOrganization:
            .byOrganization(after: organization)
        case .wrappedBy(let keystore, _):
            .wrappedBy(keystore: keystore, after: organization)
        case .createdAtOrBefore(let threshold, let cadence, _):
            .createdAtOrBefore(
                threshold,
                cadence: cadence,
                after: AgeCursor(createdAtMicroseconds: createdAtMicroseconds ?? Int64.max, organization: organization)
            )
        }
    }
}
