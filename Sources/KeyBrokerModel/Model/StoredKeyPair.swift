import Foundation

/// A stored pair together with whether it is the organization's current one.
public struct StoredKeyPair: Sendable, Hashable {
    /// The pair.
    public let record: KeyPairRecord
    /// Whether new data keys are wrapped with this pair's public key.
    public let isCurrent: Bool

    /// Creates a stored pair.
    public init(record: KeyPairRecord, isCurrent: Bool) {
        self.record = record
        self.isCurrent = isCurrent
    }
}
