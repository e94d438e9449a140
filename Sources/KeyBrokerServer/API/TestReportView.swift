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
        self.init(report, errors: redacted ? .redacted : .full)
    }

    /// How much of a failed keystore call a caller sees.
    enum ErrorDetail {
        /// Everything (a caller for every organization).
        case full
        /// The kind and the backend's code (a shared keystore, a scoped caller).
        case redacted
        /// The backend's code and message: the caller's own key (``KeystoreErrorView/init(tenantsOwnKey:)``).
        case tenantsOwnKey
    }

    init(_ report: KeystoreTestReport, errors: ErrorDetail) {
        organization = report.organization.rawValue
        keystore = report.keystore
        keystoreType = report.keystoreType
        spec = report.spec.rawValue
        passed = report.passed
        steps = report.steps.map { step in
            let error = step.keystoreError
            let detail: String?
            let view: KeystoreErrorView?
            switch (errors, error) {
            case (_, nil), (.full, _):
                (detail, view) = (step.detail, error.map { KeystoreErrorView($0) })
            case (.redacted, let error?):
                (detail, view) = (APIError.redactedKeystoreMessage(error), KeystoreErrorView(redacting: error))
            case (.tenantsOwnKey, let error?):
                let tenant = KeystoreErrorView(tenantsOwnKey: error)
                (detail, view) = ([tenant.message, tenant.backendMessage].compactMap { $0 }.joined(separator: ": "), tenant)
            }
            return Step(
                name: step.name,
                outcome: step.outcome.rawValue,
                durationMs: step.duration.milliseconds,
                detail: detail,
                backendError: view
            )
        }
    }
}
