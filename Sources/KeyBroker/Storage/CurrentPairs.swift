import Foundation

/// A page of ``KeyPairStore/currentPairs(_:limit:)``.
public struct CurrentPairs: Sendable {
    /// The current pairs that could be read, in the query's order.
    public let records: [KeyPairRecord]
    /// Current rows of the page that could not be read, with why.
    public let corrupt: [CorruptKeyPair]
    /// The query for the next page, or `nil` when this page was the last.
    public let next: CurrentPairQuery?

    /// Creates a page.
    public init(records: [KeyPairRecord], corrupt: [CorruptKeyPair], next: CurrentPairQuery?) {
        self.records = records
        self.corrupt = corrupt
        self.next = next
    }
}
