import Foundation
public import KeyBroker

/// A keystore test report.
public struct TestReportView: Codable, Sendable {
    public struct Step: Codable, Sendable {
        public let name: String
        public let outcome: String
        public let durationMs: Double
        public let detail: String?
        public let backendError: KeystoreErrorView?
    }

    public let organization: String
    public let keystore: String
    public let keystoreType: String
    public let spec: String
    public let passed: Bool
    public let steps: [Step]

    /// The view of a report.
    /// - Parameter redacted: for a caller scoped to some organizations: a failed keystore
    ///   call shows its kind and the backend's code, not messages that may name files.
    public init(_ report: KeystoreTestReport, redacted: Bool = false) {
        organization = report.organization.rawValue
        keystore = report.keystore
        keystoreType = report.keystoreType
        spec = report.spec.rawValue
        passed = report.passed
        steps = report.steps.map { step in
            let error = step.keystoreError
            let detail = redacted && error != nil ? APIError.redactedKeystoreMessage(error) : step.detail
            return Step(
                name: step.name,
                outcome: step.outcome.rawValue,
                durationMs: step.duration.milliseconds,
                detail: detail,
                backendError: error.map { redacted ? KeystoreErrorView(redacting: $0) : KeystoreErrorView($0) }
            )
        }
    }
}
