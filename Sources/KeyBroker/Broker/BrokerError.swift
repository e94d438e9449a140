import Foundation

/// An error of the broker itself (not of a keystore backend), with a message that says
/// what to do.
public struct BrokerError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure, for mapping to exit codes and HTTP statuses in one place.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String {
            case invalidInput = "invalid-input", notFound = "not-found", keystoreFailed = "keystore-failed"
            case storageFailed = "storage-failed", corruptRecord = "corrupt-record"
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

        public var description: String { value.rawValue }
    }

    /// The kind of failure.
    public let kind: Kind
    /// One readable sentence.
    public let message: String
    /// The keystore's error, for ``Kind/keystoreFailed``.
    public let keystoreError: KeystoreError?

    init(_ kind: Kind, _ message: String, keystoreError: KeystoreError? = nil) {
        self.kind = kind
        self.message = message
        self.keystoreError = keystoreError
    }

    public var description: String { message }

    static func corruptRecord(_ detail: String) -> Self {
        BrokerError(.corruptRecord, "a stored key pair cannot be read: \(detail)")
    }

    static func storage(_ error: any Error, while action: String) -> Self {
        BrokerError(.storageFailed, "the key-pair store failed while \(action): \(error)")
    }

    static func keystore(_ error: KeystoreError, while action: String) -> Self {
        BrokerError(.keystoreFailed, "\(action) failed: \(error)", keystoreError: error)
    }
}
