/// A failure of the key-pair store, typed so that callers can tell an outage (retry later)
/// from a damaged database (restore it) and from one unreadable record (that pair only).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case unavailable, damaged
            case corruptRecord = "corrupt-record"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The store cannot be used now (I/O error, locked, the file deleted or replaced
        /// under the server). Requests answer 503 and may be retried.
        public static let unavailable = Kind(.unavailable)
        /// The database file itself is damaged (SQLite: "database disk image is malformed").
        /// It does not heal: restore it from a backup.
        public static let damaged = Kind(.damaged)
        /// One stored record cannot be read back (a value of the wrong type, an unknown
        /// spec, an id that is not a UUID). Only the requests that need it fail; retrying
        /// does not help.
        public static let corruptRecord = Kind(.corruptRecord)

        /// A stable lowercase name, used in JSON and metrics.
        public var description: String { value.rawValue }
    }

    /// The kind of failure.
    public let kind: Kind
    /// What failed, in one sentence, for the operator (it may name the database file).
    public let message: String
    /// The key pair concerned, for ``Kind/corruptRecord``.
    public let keyPairID: String?

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, keyPairID: String? = nil) {
        self.kind = kind
        self.message = message
        self.keyPairID = keyPairID
    }

    public var description: String { message }

    /// Whether the failure concerns the whole store (an outage or damage) rather than one
    /// record: such failures make the server unready.
    public var affectsWholeStore: Bool { kind != .corruptRecord }
}
