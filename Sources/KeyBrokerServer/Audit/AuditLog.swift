public import Foundation
public import KeyBroker
public import Logging
import NIOConcurrencyHelpers

#if canImport(CDispatch)
// On Linux, the clang importer files `struct stat` under libdispatch's module (the first to
// include <sys/stat.h>), so its members need this import; other platforms have no CDispatch.
import CDispatch
#endif

/// One JSON line per key operation: generate, unwrap, test, reload, denied access.
/// Never key material: only ids, names, results and error messages.
///
/// The audit log fails closed: ``record(_:actor:organization:keyPairID:result:error:durable:)``
/// throws when the line cannot be written (a full disk, a closed pipe), and the caller refuses
/// the operation (unless `audit.onFailure: continue`). A generation's record is written and
/// synced *before* the pair is committed, so that after a crash every stored pair has its line.
/// Writes run on one serial queue, outside the cooperative pool: a stalled log reader blocks
/// that queue, not the server.
public final class AuditLog: Sendable {
    /// What happened.
    public enum Event: String, Sendable, Encodable {
        case access, generate, unwrap, test, reload
        /// A tenant's key configuration saved, reset or refused (`change` says old → new).
        case configure
        /// An organization revoked (the kill switch) or restored.
        case revoke, restore
    }

    /// How it ended.
    public enum Result: String, Sendable, Encodable {
        /// Written before a generation is committed; an `ok` or `failed` line follows.
        case pending
        case ok, failed, passed, denied, unauthenticated
        /// A "change key now" that joined a generation already running; `keyPairId` is its pair.
        case joined
    }

    /// One audit record.
    public struct Entry: Encodable, Sendable {
        public var time: Date
        /// The replica that wrote it (`server.instanceId`), so that the records of several
        /// replicas can be collected into one stream.
        public var replica: String
        public var event: Event
        public var actor: String
        public var organization: String?
        public var keyPairId: String?
        public var result: Result
        public var error: String?
        public var backend: ErrorBody.Backend?
        /// For `access`: how many `access` records were left out since the last one written.
        public var suppressed: Int?
        /// For `configure`: the configuration before and after (`default -> aws-kms-symmetric arn:…`).
        public var change: String?
    }

    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let policy: AuditSettings.FailurePolicy
    private let queue = DispatchQueue(label: "keybroker.audit")
    private let logger: Logger
    private let onFailure: @Sendable () -> Void
    /// This replica's name in every record.
    let replica: String
    /// Refused accesses need no credentials to cause: a flood of them must not fill the disk
    /// (which would then refuse every key operation). At most `accessBurst` lines at once,
    /// `accessPerSecond` on average; the lines left out are counted in the next one written.
    private let accessBudget = NIOLockedValueBox(AccessBudget())
    static let accessBurst = 100.0
    static let accessPerSecond = 20.0

    private struct AccessBudget {
        var tokens = AuditLog.accessBurst
        var refilledAt = ContinuousClock.now
        var suppressed = 0
    }

    /// Opens the destination: standard error, or a file appended to (created 0600).
    /// - Parameters:
    ///   - settings: `audit:`.
    ///   - logger: where write failures are reported.
    ///   - onFailure: called on every failed write (metrics).
    public init(
        _ settings: AuditSettings,
        logger: Logger = Logger(label: "keybroker.audit"),
        replica: String = ServerSettings.defaultInstanceId,
        onFailure: @escaping @Sendable () -> Void = {}
    ) throws {
        self.replica = replica
        policy = settings.onFailure
        self.logger = logger
        self.onFailure = onFailure
        switch settings.destination {
        case .stderr:
            descriptor = STDERR_FILENO
            ownsDescriptor = false
        case .file(let url):
            // O_NONBLOCK: a FIFO opens at once (and is refused below) instead of blocking start.
            let descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0o600)
            guard descriptor >= 0 else {
                throw AuditLogError(
                    description: "cannot open audit log '\(url.path)': \(String(cString: strerror(errno))); fix audit.destination"
                )
            }
            var info = stat()
            let kind = fstat(descriptor, &info) == 0 ? info.st_mode & S_IFMT : 0
            guard kind == S_IFREG || kind == S_IFCHR else {
                close(descriptor)
                throw AuditLogError(
                    description:
                        "audit log '\(url.path)' is not a regular file; name a file (or write destination: stderr and collect standard error)"
                )
            }
            self.descriptor = descriptor
            ownsDescriptor = true
        }
    }

    deinit {
        if ownsDescriptor { close(descriptor) }
    }

    /// Writes one record.
    /// - Parameters:
    ///   - durable: also sync it to disk before returning (a generation's `pending` record).
    /// - Throws: ``AuditFailure`` when it could not be written and `audit.onFailure` is `refuse`.
    public func record(
        _ event: Event,
        actor: String,
        organization: OrganizationID? = nil,
        keyPairID: UUID? = nil,
        result: Result,
        error: (any Error)? = nil,
        durable: Bool = false,
        suppressed: Int? = nil,
        change: String? = nil
    ) async throws(AuditFailure) {
        let line = Self.line(
            replica: replica,
            event,
            actor: actor,
            organization: organization,
            keyPairID: keyPairID,
            result: result,
            error: error,
            suppressed: suppressed,
            change: change
        )
        let (descriptor, queue) = (self.descriptor, self.queue)
        let failure = await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            queue.async { continuation.resume(returning: Self.write(line, to: descriptor, sync: durable)) }
        }
        guard let failure else { return }
        onFailure()
        logger.error("audit log write failed", metadata: ["event": "\(event.rawValue)", "error": "\(failure)"])
        guard policy == .refuse else { return }
        throw AuditFailure(reason: failure)
    }

    /// The `pending` record of a generation by `actor`, written and synced before the pair is
    /// committed (pass it as the broker's `beforeCommit`): every stored pair has its line,
    /// and a generation whose line cannot be written is refused.
    public func pendingGeneration(
        by actor: String,
        for organization: OrganizationID,
        event: Event = .generate,
        change: String? = nil
    ) -> @Sendable (KeyPairRecord) async throws(BrokerError) -> Void {
        { record throws(BrokerError) in
            do {
                try await self.record(
                    event,
                    actor: actor,
                    organization: organization,
                    keyPairID: record.id,
                    result: .pending,
                    durable: true,
                    change: change
                )
            } catch {
                throw BrokerError.auditFailed(error)
            }
        }
    }

    /// The record of a reload by `actor`, written before the new configuration takes effect
    /// (pass it to ``BrokerRuntime/reload(beforeSwap:)``): a reload that cannot be audited
    /// does not happen.
    public func reload(by actor: String) -> @Sendable () async throws(BrokerError) -> Void {
        { () throws(BrokerError) in
            do {
                try await self.record(.reload, actor: actor, result: .ok)
            } catch {
                throw BrokerError.auditFailed(error)
            }
        }
    }

    /// Writes one record whose failure cannot change anything (a refusal, an outcome already
    /// decided): failures are reported, never thrown.
    public func note(
        _ event: Event,
        actor: String,
        organization: OrganizationID? = nil,
        keyPairID: UUID? = nil,
        result: Result,
        error: (any Error)? = nil,
        change: String? = nil
    ) async {
        var suppressed: Int?
        if event == .access {
            guard let left = takeAccessToken() else { return }
            suppressed = left > 0 ? left : nil
        }
        do {
            try await record(
                event,
                actor: actor,
                organization: organization,
                keyPairID: keyPairID,
                result: result,
                error: error,
                suppressed: suppressed,
                change: change
            )
        } catch {
            // Already logged by record.
        }
    }

    /// Takes a token for an `access` line: `nil` when the budget is spent (the line is left
    /// out and counted), else how many were left out before this one.
    private func takeAccessToken() -> Int? {
        accessBudget.withLockedValue { budget in
            let now = ContinuousClock.now
            let elapsed = (now - budget.refilledAt).seconds
            budget.tokens = min(Self.accessBurst, budget.tokens + elapsed * Self.accessPerSecond)
            budget.refilledAt = now
            guard budget.tokens >= 1 else {
                budget.suppressed += 1
                return nil
            }
            budget.tokens -= 1
            defer { budget.suppressed = 0 }
            return budget.suppressed
        }
    }

    private static func line(
        replica: String,
        _ event: Event,
        actor: String,
        organization: OrganizationID?,
        keyPairID: UUID?,
        result: Result,
        error: (any Error)?,
        suppressed: Int?,
        change: String?
    ) -> Data {
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
            time: Date(),
            replica: replica,
            event: event,
            actor: actor,
            organization: organization?.rawValue,
            keyPairId: keyPairID?.uuidString.lowercased(),
            result: result,
            error: message,
            backend: backend,
            suppressed: suppressed,
            change: change
        )
        var line = (try? APIJSON.encoder.encode(entry)) ?? Data(#"{"event":"audit-encoding-failed"}"#.utf8)
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Writes the whole line (retrying short writes and EINTR); `nil` on success, else why not.
    private static func write(_ line: Data, to descriptor: Int32, sync: Bool) -> String? {
        let failure: String? = line.withUnsafeBytes { buffer -> String? in
            guard let base = buffer.baseAddress else { return nil }
            var offset = 0
            var waits = 0
            while offset < buffer.count {
                let written = Foundation.write(descriptor, base + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN, waits < 5000 {
                        // A full pipe: wait for its reader, up to five seconds, rather than drop the record.
                        waits += 1
                        usleep(1000)
                        continue
                    }
                    return errno == EAGAIN ? "the destination accepted nothing for five seconds" : String(cString: strerror(errno))
                }
                if written == 0 { return "the destination accepted no bytes" }
                offset += written
            }
            return nil
        }
        if let failure { return failure }
        // Pipes and terminals cannot be synced (EINVAL); files and devices that can must be.
        if sync, fsync(descriptor) != 0, errno != EINVAL, errno != EROFS {
            return "sync failed: \(String(cString: strerror(errno)))"
        }
        return nil
    }
}

/// An audit record that could not be written, so the operation was refused.
public struct AuditFailure: Error, Sendable, CustomStringConvertible {
    /// Why the write failed (an OS error message).
    public let reason: String

    public var description: String { "the audit record could not be written (\(reason))" }
}

struct AuditLogError: Error, CustomStringConvertible {
    let description: String
}
