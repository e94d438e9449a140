public import Foundation
public import KeyBroker
import Logging
import NIOConcurrencyHelpers

/// Rotates every organization on its cadence, gives new organizations their first pair,
/// and moves organizations whose keystore changed to the new keystore.
///
/// At most `concurrency` rotations run at once, and each keystore receives at most
/// `perKeystoreRate` generations per second, so that 10,000 organizations due at the same
/// moment are spread out instead of stampeding a KMS. A failed rotation keeps the current
/// pair (encryption goes on with it), is recorded with the backend's error, and is tried
/// again after a backoff that doubles up to `maxRetryDelay`.
public final class RotationScheduler: Sendable {
    /// An organization whose last rotation attempt failed.
    public struct Failure: Sendable {
        /// The failure as an operator sees it (it may name files and other organizations' contexts).
        public let cause: BrokerError
        /// Why the pair was due (`initial`: the organization has no pair to fall back on).
        public let reason: KeyPairReason
        public let failures: Int
        public let nextAttempt: Date

        /// The operator's message.
        public var error: String { cause.message }
    }

    /// What one pass did.
    public struct Pass: Sendable, Equatable {
        public var rotated: [OrganizationID: KeyPairReason] = [:]
        public var failed: [OrganizationID] = []
        public var skippedInBackoff: [OrganizationID] = []
        /// Organizations whose current pair's row cannot be read: not rotated automatically
        /// (the row may have been tampered with); status reports them.
        public var skippedCorrupt: [OrganizationID] = []
        /// Organizations that another writer gave a new pair while this pass made one (the
        /// pass's pair was not stored: the rotation was done already).
        public var replacedMeanwhile: [OrganizationID] = []
        /// Whether the pass ran: only the replica holding the rotation lease rotates.
        public var ranAsLeader = true
    }

    let runtime: BrokerRuntime
    let settings: @Sendable () -> SchedulerSettings
    let audit: AuditLog
    let metrics: ServerMetrics
    let logger: Logger
    /// The rotation lease: passes run only while this replica holds it.
    public let leader: RotationLeader
    private let failures = NIOLockedValueBox<[OrganizationID: Failure]>([:])
    private let limiters = NIOLockedValueBox<[String: RateLimiter]>([:])
    private let waker = Waker()
    private let passCount = NIOLockedValueBox(0)

    /// How many passes ran (for tests and metrics).
    public var passes: Int { passCount.withLockedValue { $0 } }

    init(runtime: BrokerRuntime, audit: AuditLog, metrics: ServerMetrics, logger: Logger) {
        self.runtime = runtime
        let waker = self.waker
        leader = RotationLeader(
            store: runtime.store,
            instanceId: runtime.broker.config.server.instanceId,
            lease: { runtime.broker.config.server.rotationLease },
            logger: logger,
            onElected: { waker.wake() }
        )
        self.settings = { runtime.broker.config.scheduler }
        self.audit = audit
        self.metrics = metrics
        self.logger = logger
    }

    /// The organizations whose last rotation failed.
    public var failuresByOrganization: [OrganizationID: Failure] { failures.withLockedValue { $0 } }

    /// Asks the loop to run a pass now (after a reload).
    public func runSoon() { waker.wake() }

    /// Forgets an organization's failed rotation (a manual generation succeeded).
    public func clearFailure(for organization: OrganizationID) {
        failures.withLockedValue { $0[organization] = nil }
    }

    /// Runs passes every `interval` until cancelled.
    public func run() async {
        while !Task.isCancelled {
            if settings().enabled { _ = await runOnce() }
            await waker.wait(upTo: settings().interval)
        }
    }

    /// One pass: every due organization, within the concurrency and rate limits. The due
    /// organizations come from the store's indexes a page at a time
    /// (``Broker/forEachDueOrganization(at:pageSize:_:)``): a pass with nothing due costs a
    /// few index reads at any number of organizations.
    public func runOnce() async -> Pass {
        passCount.withLockedValue { $0 += 1 }
        // While the pass runs, its lease is renewed every third of it, whether or not the
        // lease loop runs (a pass can outlast a lease: a slow KMS, many due organizations).
        let leader = self.leader
        let keeper = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: leader.lease() / 3)
                if !Task.isCancelled { await leader.renewIfDue() }
            }
        }
        defer { keeper.cancel() }
        return await pass()
    }

    private func pass() async -> Pass {
        var pass = Pass()
        // Renewed before each pass (besides the lease loop), so that a pass starts with a
        // whole lease ahead of it.
        await leader.renewOnce(announce: false)
        guard leader.isLeader else {
            pass.ranAsLeader = false
            metrics.rotationLeader(false)
            return pass
        }
        metrics.rotationLeader(true)
        let clock = ContinuousClock()
        let began = clock.now
        let broker = runtime.broker
        let time = runtime.now()
        var dueCount = 0
        let settings = broker.config.scheduler
        var corrupt = Set<OrganizationID>()
        var leaseLost = false
        do {
            try await broker.forEachDueOrganization(at: time, pageSize: Self.pageSize) { page, unreadable in
                dueCount += page.count
                for row in unreadable {
                    if let organization = row.organization { corrupt.insert(organization) }
                    logger.error(
                        "the current key pair of an organization cannot be read; it is not rotated automatically",
                        metadata: ["keyPair": "\(row.keyPairID)", "problem": "\(row.problem)"]
                    )
                }
                var due: [(OrganizationID, KeyPairReason, UUID?)] = []
                for status in page {
                    guard let reason = status.rotationReason else { continue }
                    // One lookup per due organization: the failures may be many, and a copy per
                    // page would cost O(failures) each time.
                    if let failure = failures.withLockedValue({ $0[status.organization] }), failure.nextAttempt > time {
                        pass.skippedInBackoff.append(status.organization)
                        continue
                    }
                    due.append((status.organization, reason, status.current?.id))
                }
                for (organization, reason, outcome) in await rotate(due, broker: broker, settings: settings) {
                    switch outcome {
                    case .rotated: pass.rotated[organization] = reason
                    case .failed: pass.failed.append(organization)
                    case .replacedMeanwhile: pass.replacedMeanwhile.append(organization)
                    case .leaseLost: leaseLost = true
                    }
                }
                return !Task.isCancelled && !leaseLost && leader.isLeader
            }
        } catch {
            logger.error("rotation pass could not read the store", metadata: ["error": "\(error)"])
        }
        if leaseLost { logger.warning("the rotation lease moved to another replica during a pass; this replica stopped rotating") }
        // The change feed is read by every replica within seconds; an hour is ample.
        if !leaseLost { try? await runtime.store.pruneChanges(olderThan: .seconds(3600)) }
        pass.skippedCorrupt = corrupt.sorted()
        pass.failed.sort()
        // On fallback: organizations that have a pair (still used for encryption) but could not rotate.
        metrics.organizationsOnFallback(failures.withLockedValue { $0.values.filter { $0.reason != .initial }.count })
        metrics.rotationPass(duration: clock.now - began, due: dueCount, rotated: pass.rotated.count)
        return pass
    }

    /// How many due organizations a pass reads from the store at once.
    static let pageSize = 256

    /// What one organization's rotation did.
    enum Outcome: Sendable {
        case rotated, failed, replacedMeanwhile, leaseLost
    }

    /// Rotates `due`, at most `settings.concurrency` at once.
    private func rotate(
        _ due: [(OrganizationID, KeyPairReason, UUID?)],
        broker: Broker,
        settings: SchedulerSettings
    ) async -> [(OrganizationID, KeyPairReason, Outcome)] {
        await withTaskGroup(of: (OrganizationID, KeyPairReason, Outcome).self) { group in
            var results: [(OrganizationID, KeyPairReason, Outcome)] = []
            var iterator = due.makeIterator()
            func addNext() -> Bool {
                guard let (organization, reason, current) = iterator.next() else { return false }
                group.addTask {
                    let outcome = await self.rotate(
                        organization,
                        replacing: current,
                        reason: reason,
                        broker: broker,
                        rate: settings.perKeystoreRate
                    )
                    return (organization, reason, outcome)
                }
                return true
            }
            for _ in 0..<settings.concurrency where !addNext() { break }
            for await result in group {
                results.append(result)
                _ = addNext()
            }
            return results
        }
    }

    /// The pending record said a pair was coming; this says it was discarded, and why.
    private func noteDiscarded(_ outcome: InsertOutcome, _ organization: OrganizationID) async {
        await audit.note(
            .generate,
            actor: "scheduler",
            organization: organization,
            result: .failed,
            error: BrokerError.notStored(outcome, organization)
        )
    }

    private func rotate(
        _ organization: OrganizationID,
        replacing current: UUID?,
        reason: KeyPairReason,
        broker: Broker,
        rate: Double
    ) async -> Outcome {
        // The limiter is per keystore instance name: a tenant keystore type shares one (its
        // tenants' keys are separate, but the broker's own AWS identity calls them all).
        let keystore = (try? await broker.resolvedPolicy(for: organization))?.keystore ?? broker.policy(for: organization).keystore
        let limiter = limiters.withLockedValue { limiters in
            if let existing = limiters[keystore], existing.rate == rate { return existing }
            let limiter = RateLimiter(rate: rate)
            limiters[keystore] = limiter
            return limiter
        }
        await limiter.acquire()
        await leader.renewIfDue()
        // The lease as it is now: a pass that outlived its lease and took it again (a new
        // epoch, granted to this replica) goes on with the new fence. A write started under the
        // old one is refused by the store, as fencing wants.
        guard let fence = leader.fence else { return .leaseLost }
        let audit = self.audit
        do {
            let rotation = try await broker.rotate(
                organization,
                replacing: current,
                reason: reason,
                fence: fence,
                requestedBy: "scheduler",
                beforeCommit: { [leader] record throws(BrokerError) in
                    try await audit.pendingGeneration(by: "scheduler", for: organization)(record)
                    // A generation can take long (a slow KMS, RSA-4096): the lease is renewed
                    // before the commit, so that only a lease really lost refuses the write.
                    await leader.renewIfDue()
                }
            )
            switch rotation {
            case .rotated(let record):
                failures.withLockedValue { $0[organization] = nil }
                metrics.rotation(reason: reason, succeeded: true)
                await audit.note(.generate, actor: "scheduler", organization: organization, keyPairID: record.id, result: .ok)
                return .rotated
            case .replacedMeanwhile:
                await noteDiscarded(.currentChanged, organization)
                return .replacedMeanwhile
            case .leaseLost:
                await noteDiscarded(.leaseLost, organization)
                return .leaseLost
            }
        } catch {
            let maxDelay = broker.config.scheduler.maxRetryDelay.seconds
            let time = runtime.now()
            failures.withLockedValue { failures in
                let count = (failures[organization]?.failures ?? 0) + 1
                let delay = min(maxDelay, 60 * pow(2, Double(count - 1)))
                failures[organization] = Failure(cause: error, reason: reason, failures: count, nextAttempt: time.addingTimeInterval(delay))
            }
            metrics.rotation(reason: reason, succeeded: false)
            await broker.recordTenantError(error, for: organization, keystore: keystore)
            await audit.note(.generate, actor: "scheduler", organization: organization, result: .failed, error: error)
            logger.warning(
                "rotation failed; the current key pair stays in use",
                metadata: ["org": "\(organization)", "reason": "\(reason)", "error": "\(error.message)"]
            )
            return .failed
        }
    }
}
