import Foundation
import KeyBroker

/// The JSON shapes of the HTTP API, shared with the CLI's `--json` output and its remote mode.
/// None of them holds key material: wrapped private keys are never sent, and public keys only
/// by the public-key endpoint.

/// A key pair as the API shows it.
public struct KeyPairView: Codable, Sendable, Equatable {
    public let id: String
    public let organization: String
    public let current: Bool
    public let createdAt: Date
    public let reason: String
    public let requestedBy: String
    public let keystore: String
    public let keystoreType: String
    public let backendKeyReference: String?
    public let spec: String
    public let publicKeyFingerprint: String

    /// The view of a stored pair.
    public init(_ record: KeyPairRecord, current: Bool) {
        id = record.id.uuidString.lowercased()
        organization = record.organization.rawValue
        self.current = current
        createdAt = record.createdAt
        reason = record.reason.rawValue
        requestedBy = record.requestedBy
        keystore = record.keystoreName
        keystoreType = record.keystoreType
        backendKeyReference = record.backendKeyReference
        spec = record.spec.rawValue
        publicKeyFingerprint = record.publicKeyFingerprint
    }
}

/// A keystore error with the backend's own code and message.
public struct KeystoreErrorView: Codable, Sendable, Equatable {
    public let kind: String
    public let message: String
    public let backendCode: String?
    public let backendMessage: String?
    public let hint: String?

    /// The kind and the backend's code only, for callers who may not see other
    /// organizations' details.
    public init(redacting error: KeystoreError) {
        kind = error.kind.description
        message = "the keystore reported \(error.kind) (details need a token for every organization)"
        backendCode = error.backendCode
        backendMessage = nil
        hint = nil
    }

    /// The view of an error.
    public init(_ error: KeystoreError) {
        kind = error.kind.description
        message = error.message
        backendCode = error.backendCode
        backendMessage = error.backendMessage
        hint = error.hint
    }
}

/// A configuration finding.
public struct DiagnosticView: Codable, Sendable, Equatable {
    public let severity: String
    public let file: String?
    public let line: Int?
    public let column: Int?
    public let message: String

    /// The view of a finding.
    public init(_ diagnostic: ConfigDiagnostic) {
        severity = diagnostic.severity.rawValue
        file = diagnostic.location?.file
        line = diagnostic.location?.line
        column = diagnostic.location?.column
        message = diagnostic.message
    }
}

/// `GET /v1/orgs/{org}/public-key`.
public struct PublicKeyView: Codable, Sendable {
    public let keyPair: KeyPairView
    public let publicKeyPEM: String
    public let publicKeyDER: String

    /// The view of a current pair.
    public init(_ record: KeyPairRecord) {
        keyPair = KeyPairView(record, current: true)
        publicKeyPEM = PublicKeyEncryption.pem(ofDER: record.publicKeyDER)
        publicKeyDER = record.publicKeyDER.base64EncodedString()
    }
}

/// `GET /v1/orgs/{org}/keypairs`.
public struct KeyPairPage: Codable, Sendable {
    public let items: [KeyPairView]
    public let nextOffset: Int?
}

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
                name: step.name, outcome: step.outcome.rawValue, durationMs: step.duration.milliseconds, detail: detail,
                backendError: error.map { redacted ? KeystoreErrorView(redacting: $0) : KeystoreErrorView($0) })
        }
    }
}

/// `GET /v1/status`, and `keybroker status --json`.
public struct StatusView: Codable, Sendable {
    public struct Keystore: Codable, Sendable {
        public let name: String
        public let type: String
        public let healthy: Bool
        public let since: Date?
        public let checkedAt: Date?
        public let detail: String
        public let latencyMs: Double
        public let error: KeystoreErrorView?
    }

    /// The key-pair store as the health monitor last saw it.
    public struct Store: Codable, Sendable {
        public let usable: Bool
        public let checkedAt: Date?
        /// Why it is not usable (for a scoped caller, the kind only).
        public let error: String?
    }

    /// A current key pair whose stored row cannot be read.
    public struct CorruptKeyPair: Codable, Sendable {
        public let id: String
        public let organization: String?
        public let problem: String
    }

    public struct Organization: Codable, Sendable {
        public let organization: String
        public let keystore: String
        public let rotation: String
        public let keyPairSpec: String
        public let currentKeyPair: KeyPairView?
        public let nextRotation: Date?
        public let rotationDue: Bool
        public let keystoreChanged: Bool
        /// Rotation is due but the keystore cannot make a new pair: encryption goes on with
        /// the last known public key.
        public let fallbackInUse: Bool
        public let lastRotationError: String?
        public let nextRotationAttempt: Date?
    }

    public let checkedAt: Date
    /// The store; absent in the CLI's embedded mode, which opened it to answer.
    public let store: Store?
    public let keystores: [Keystore]
    public let organizations: [Organization]
    public let corruptKeyPairs: [CorruptKeyPair]

    /// Builds the view.
    public init(checkedAt: Date, store: Store?, keystores: [Keystore], organizations: [Organization], corruptKeyPairs: [CorruptKeyPair]) {
        self.checkedAt = checkedAt
        self.store = store
        self.keystores = keystores
        self.organizations = organizations
        self.corruptKeyPairs = corruptKeyPairs
    }
}

/// `GET /v1/orgs/{org}`: an organization's effective configuration.
public struct OrganizationView: Codable, Sendable {
    public let organization: String
    public let keystore: String
    public let keystoreType: String
    public let rotation: String
    public let keyPairSpec: String
    public let currentKeyPair: KeyPairView?
    public let nextRotation: Date?
    public let lastRotationError: String?
}

/// `POST /v1/orgs/{org}/unwrap` request.
public struct UnwrapRequest: Codable, Sendable {
    public let keyPairId: String
    public let wrappedKey: String

    /// Creates a request.
    public init(keyPairId: String, wrappedKey: String) {
        self.keyPairId = keyPairId
        self.wrappedKey = wrappedKey
    }
}

/// `POST /v1/orgs/{org}/unwrap` response.
public struct UnwrapResponse: Codable, Sendable {
    public let dataKey: String
}

/// `POST /v1/admin/reload` response.
public struct ReloadView: Codable, Sendable {
    public let reloaded: Bool
    public let changedOrganizations: [String]
    public let diagnostics: [DiagnosticView]
}

/// The one error shape: `{"error": {"code", "message", "backend"?}}`.
public struct ErrorBody: Codable, Sendable {
    public struct Backend: Codable, Sendable {
        public let type: String
        public let message: String
    }

    public struct Detail: Codable, Sendable {
        public let code: String
        public let message: String
        public let backend: Backend?
        public let diagnostics: [DiagnosticView]?
    }

    public let error: Detail
}

/// JSON coding shared by the server and its clients.
public enum APIJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
