import Foundation
import KeyBroker

/// What the CLI prints about a key pair. Holds no key material: the wrapped private key is
/// never printed, and the public key only by `keys public`.
struct KeyPairView: Encodable {
    let id: String
    let organization: String
    let current: Bool
    let createdAt: Date
    let reason: String
    let requestedBy: String
    let keystore: String
    let keystoreType: String
    let backendKeyReference: String?
    let spec: String
    let publicKeyFingerprint: String

    init(_ record: KeyPairRecord, current: Bool) {
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

/// A keystore error as JSON, with the backend's own code and message.
struct KeystoreErrorView: Encodable {
    let kind: String
    let message: String
    let backendCode: String?
    let backendMessage: String?
    let hint: String?

    init(_ error: KeystoreError) {
        kind = error.kind.description
        message = error.message
        backendCode = error.backendCode
        backendMessage = error.backendMessage
        hint = error.hint
    }
}

struct DiagnosticView: Encodable {
    let severity: String
    let file: String?
    let line: Int?
    let column: Int?
    let message: String

    init(_ diagnostic: ConfigDiagnostic) {
        severity = diagnostic.severity.rawValue
        file = diagnostic.location?.file
        line = diagnostic.location?.line
        column = diagnostic.location?.column
        message = diagnostic.message
    }
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
