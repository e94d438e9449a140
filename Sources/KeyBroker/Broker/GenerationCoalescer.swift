import Foundation
import Synchronization

/// Joins concurrent key-pair generations for one organization: while one runs, every other
/// request for the same organization waits for it and gets its pair, instead of starting a
/// keystore call and an RSA generation of its own.
///
/// Fifty parallel "change key now" requests for one organization therefore make one pair.
/// The server keeps one coalescer across reloads, so a reload does not open a gap.
public final class GenerationCoalescer: Sendable {
    private let inFlight = Mutex<[OrganizationID: Task<KeyPairRecord, any Error>]>([:])

    /// Creates an empty coalescer.
    public init() {}

    /// The pair from a generation for `organization`: a new one made by `generate`, or the one
    /// a generation already running makes.
    /// - Parameters:
    ///   - admit: decides, when no generation is running, whether a new one may start (a rate
    ///     limit); it throws to refuse. Joining a running generation needs no admission.
    /// - Returns: the pair, and whether this call joined a generation another caller started.
    func generate(
        for organization: OrganizationID,
        admit: () throws(BrokerError) -> Void,
        _ generate: @escaping @Sendable () async throws(BrokerError) -> KeyPairRecord
    ) async throws(BrokerError) -> (record: KeyPairRecord, joined: Bool) {
        let (task, joined) = try inFlight.withLock { tasks throws(BrokerError) -> (Task<KeyPairRecord, any Error>, Bool) in
            if let running = tasks[organization] { return (running, true) }
            try admit()
            let task = Task<KeyPairRecord, any Error> { try await generate() }
            tasks[organization] = task
            return (task, false)
        }
        defer {
            if !joined { inFlight.withLock { $0[organization] = nil } }
        }
        do {
            return (try await task.value, joined)
        } catch let error as BrokerError {
            throw error
        } catch {
            throw BrokerError(.keystoreFailed, "generating a key pair for organization '\(organization)' was cancelled")
        }
    }
}
