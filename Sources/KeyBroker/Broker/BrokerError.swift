import Foundation

/// An error of the broker itself (not of a keystore backend), with a message that says
/// what to do.
public struct BrokerError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure, for mapping to exit codes and HTTP statuses in one place.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case invalidInput = "invalid-input"
            case notFound = "not-found"
            case keystoreFailed = "keystore-failed"
            case storageFailed = "storage-failed"
            case corruptRecord = "corrupt-record"
            case auditFailed = "audit-failed"
            case rateLimited = "rate-limited"
            case revoked
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The caller's input cannot be used.
        public static let invalidInput = Kind(.invalidInput)
        /// A key pair or organization has no such record.
        public static let notFound = Kind(.notFound)
        /// A keystore call failed; ``BrokerError/keystoreError`` has the backend's error.
        public static let keystoreFailed = Kind(.keystoreFailed)
        /// The key-pair store failed.
        public static let storageFailed = Kind(.storageFailed)
        /// A stored record cannot be read back.
        public static let corruptRecord = Kind(.corruptRecord)
        /// The operation's audit record could not be written, so the operation was refused
        /// (invariant 7: nothing happens that the audit log does not show).
        public static let auditFailed = Kind(.auditFailed)
        /// Too many operations of one kind for one organization; ``BrokerError/retryAfter`` says when to try again.
        public static let rateLimited = Kind(.rateLimited)
        /// The organization is revoked: its private keys are not used until it is restored.
        public static let revoked = Kind(.revoked)

        public var description: String { value.rawValue }
    }

    /// The kind of failure.
    public let kind: Kind
    /// One readable sentence.
    public let message: String
    /// The keystore's error, for ``Kind/keystoreFailed``.
    public let keystoreError: KeystoreError?
    /// The store's error, for ``Kind/storageFailed`` and a ``Kind/corruptRecord`` read from the store.
    public let storeError: StoreError?
    /// For ``Kind/rateLimited``: seconds until another attempt can succeed.
    public let retryAfter: Int?
    /// For a pair not stored because a condition no longer held.
    public let insertOutcome: InsertOutcome?

    init(
        _ kind: Kind,
        _ message: String,
        keystoreError: KeystoreError? = nil,
        storeError: StoreError? = nil,
        retryAfter: Int? = nil,
        insertOutcome: InsertOutcome? = nil
    ) {
        self.insertOutcome = insertOutcome
        self.kind = kind
        self.message = message
        self.keystoreError = keystoreError
        self.storeError = storeError
        self.retryAfter = retryAfter
    }

    /// A pair of `organization` not stored because `outcome`.
    public static func notStored(_ outcome: InsertOutcome, _ organization: OrganizationID) -> Self {
        let why =
            switch outcome {
            case .leaseLost: "this replica lost the rotation lease while the pair was made"
            case .currentChanged: "another replica gave it a new pair meanwhile"
            case .configurationChanged: "its key configuration changed meanwhile"
            case .revoked: "it is revoked"
            case .stored: "it was stored"
            }
        return BrokerError(
            .storageFailed,
            "the new key pair of organization '\(organization)' was not stored: \(why)",
            insertOutcome: outcome
        )
    }

    /// Too many operations for one organization; try again in `seconds`.
    public static func rateLimited(retryAfter seconds: Int, _ message: String) -> Self {
        BrokerError(.rateLimited, message, retryAfter: seconds)
    }

    public var description: String { message }

    public static func corruptRecord(_ detail: String) -> Self {
        BrokerError(.corruptRecord, "a stored key pair cannot be read: \(detail)")
    }

    /// A store failure, as the API maps it (503 unavailable, 500 corrupt record).
    public static func storage(_ error: StoreError) -> Self {
        BrokerError(error.kind == .corruptRecord ? .corruptRecord : .storageFailed, error.message, storeError: error)
    }

    /// The operation was refused because its audit record could not be written.
    public static func auditFailed(_ error: any Error) -> Self {
        BrokerError(
            .auditFailed,
            "refused: \(error); nothing was changed. Fix the audit destination (audit.destination), or set audit.onFailure: continue to accept unaudited operations"
        )
    }

    static func keystore(_ error: KeystoreError, while action: String) -> Self {
        BrokerError(.keystoreFailed, "\(action) failed: \(error)", keystoreError: error)
    }
}
