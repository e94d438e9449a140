import Foundation
import KeyBroker
import NIOConcurrencyHelpers

/// One JSON line per key operation: generate, unwrap, test, reload, denied access.
/// Never key material: only ids, names, results and error messages.
public final class AuditLog: Sendable {
    /// One audit record.
    public struct Entry: Encodable, Sendable {
        public var time: Date
        public var event: String
        public var actor: String
        public var organization: String?
        public var keyPairId: String?
        public var result: String
        public var error: String?
        public var backend: ErrorBody.Backend?
    }

    private let handle: NIOLockedValueBox<FileHandle>

    /// Opens the destination: standard error, or a file appended to (created 0600).
    public init(_ settings: AuditSettings) throws {
        switch settings {
        case .stderr:
            handle = NIOLockedValueBox(FileHandle.standardError)
        case .file(let url):
            let descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw AuditLogError(description: "cannot open audit log '\(url.path)': \(String(cString: strerror(errno)))")
            }
            handle = NIOLockedValueBox(FileHandle(fileDescriptor: descriptor, closeOnDealloc: true))
        }
    }

    /// Writes one record.
    public func record(
        _ event: String, actor: String, organization: OrganizationID? = nil, keyPairID: UUID? = nil, result: String,
        error: (any Error)? = nil
    ) {
        var backend: ErrorBody.Backend?
        var message: String?
        if let error {
            let keystoreError = (error as? KeystoreError) ?? (error as? BrokerError)?.keystoreError
            if let keystoreError, let code = keystoreError.backendCode {
                backend = ErrorBody.Backend(type: code, message: keystoreError.backendMessage ?? "")
            }
            message = (error as? BrokerError)?.message ?? "\(error)"
        }
        let entry = Entry(
            time: Date(), event: event, actor: actor, organization: organization?.rawValue,
            keyPairId: keyPairID?.uuidString.lowercased(), result: result, error: message, backend: backend)
        guard var line = try? APIJSON.encoder.encode(entry) else { return }
        line.append(UInt8(ascii: "\n"))
        handle.withLockedValue { handle in
            // A full disk must not take the server down; the failure is reported on stderr.
            do {
                try handle.write(contentsOf: line)
            } catch {
                try? FileHandle.standardError.write(contentsOf: Data("keybroker: audit log write failed: \(error)\n".utf8))
            }
        }
    }
}

struct AuditLogError: Error, CustomStringConvertible {
    let description: String
}
