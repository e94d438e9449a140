import Foundation
import KeyBroker
import Logging

/// What every handler shares: mapping errors for the caller, and writing the audit record an
/// operation must have before it is answered.
struct RouteSupport: Sendable {
    let audit: AuditLog
    let logger: Logger

    /// Maps an error for the answer to `principal`: the redacted form for a scoped caller.
    /// An error the API has no shape for is logged, since the answer says only "internal
    /// error; see the server log"; so are store, corrupt-record and audit failures, which
    /// name what the operator must fix.
    func mapped(_ error: any Error, for principal: Principal) -> any Error {
        let answer: any Error
        if let error = error as? BrokerError {
            answer = APIError(error, redacted: principal.seesRedacted)
            if error.kind == .corruptRecord || error.kind == .storageFailed || error.kind == .auditFailed {
                logger.error("request failed", metadata: ["error": "\(error.message)"])
            }
        } else {
            answer = APIError.from(error)
        }
        if let api = answer as? APIError, api.code == "internal" {
            logger.error("internal error answering a request: \(error)")
        }
        return answer
    }

    /// Writes the audit record of an operation before it takes effect or is answered: when it
    /// cannot be written, the operation is refused (503 `audit_unavailable`).
    func audited(
        _ event: AuditLog.Event,
        _ principal: Principal,
        organization: OrganizationID?,
        keyPairID: UUID? = nil,
        result: AuditLog.Result,
        durable: Bool = false
    ) async throws {
        do {
            try await audit.record(
                event,
                actor: principal.name,
                organization: organization,
                keyPairID: keyPairID,
                result: result,
                durable: durable
            )
        } catch {
            throw mapped(BrokerError.auditFailed(error), for: principal)
        }
    }
}
