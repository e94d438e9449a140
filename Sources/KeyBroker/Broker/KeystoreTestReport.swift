import Crypto
import Foundation

/// The outcome of testing a keystore configuration for an organization, step by step.
/// Nothing a test creates is stored.
public struct KeystoreTestReport: Sendable {
    /// The organization the test ran for.
    public let organization: OrganizationID
    /// The keystore tested.
    public let keystore: String
    /// Its plugin type.
    public let keystoreType: String
    /// The spec of the test pair.
    public let spec: KeyPairSpec
    /// The steps in order; after a failed step the rest are skipped.
    public let steps: [KeystoreTestStep]

    /// Whether every step passed.
    public var passed: Bool { steps.allSatisfy { $0.outcome == .passed } }
}

/// One step of a ``KeystoreTestReport``.
public struct KeystoreTestStep: Sendable {
    /// How a step ended.
    public enum Outcome: String, Sendable {
        case passed, failed, skipped
    }

    /// The step's name (`generate-key-pair`).
    public let name: String
    /// How it ended.
    public let outcome: Outcome
    /// How long it took.
    public let duration: Duration
    /// What went wrong, or a note on success.
    public let detail: String?
    /// The backend's error, when a keystore call failed.
    public let keystoreError: KeystoreError?
}
