import Foundation
import KeyBroker
import Logging
import NIOConcurrencyHelpers

/// Keeps this replica coherent with the others that share its store: reads the store's change
/// feed as soon as the store signals new changes (PostgreSQL's LISTEN/NOTIFY) and at least
/// every ``pollInterval`` besides (a notification lost with a dropped connection is read at
/// the next poll), and acts on each change:
///
/// - a revocation: the list of revoked organizations follows it, and the organization's
///   decrypted keys and public-key answer are dropped;
/// - a key configuration saved: the organization's decrypted keys are dropped, and its
///   public-key answer as for a new pair;
/// - a new current pair (another replica's, a CLI's on the same database, or this replica's
///   own, read back): the organization's public-key answer is dropped and, when it was in
///   memory, read again from the store in the background (best effort: while the backlog
///   has room and the store answers), so that an organization being encrypted for is
///   usually back in memory a store read after a rotation, ready for a store outage that
///   follows. The feed does not say whose change it was, so this replica's own generations
///   are read back too: one store read for each organization that was in memory, off the
///   feed's path;
/// - a reload on another replica: this replica reloads its own file.
///
/// Each read that succeeds confirms the revocation list; unwraps are refused while it is older
/// than ``staleAfter`` (fail closed: a replica cut off from its store cannot know of a
/// revocation made meanwhile).
public final class ChangeFollower: Sendable {
    let runtime: BrokerRuntime
    let logger: Logger
    /// Where the feed was read up to.
    private let cursor: NIOLockedValueBox<Int64>
    private let waker = Waker()
    /// Where organizations whose public-key answer was dropped by a new pair go to be read
    /// again, while ``run()`` runs.
    private let refreshes = NIOLockedValueBox<AsyncStream<OrganizationID>.Continuation?>(nil)

    /// How often the feed is read when no signal comes.
    public static let pollInterval = Duration.seconds(1)
    /// How old the revocation list may be before unwraps are refused.
    public static let staleAfter = Duration.seconds(3)
    /// A page of the feed.
    static let pageSize = 500
    /// How many answers may wait to be read again; beyond it (a mass rotation), the next
    /// request for an organization reads its answer, as after any invalidation.
    static let refreshBacklog = 10_000

    init(runtime: BrokerRuntime, startingAfter sequence: Int64, logger: Logger) {
        self.runtime = runtime
        self.cursor = NIOLockedValueBox(sequence)
        self.logger = logger
    }

    /// Runs until cancelled; once per follower (``syncOnce()`` alone only drops answers).
    public func run() async {
        runtime.revocations.requireSync(within: Self.staleAfter)
        let (pending, requests) = AsyncStream.makeStream(of: OrganizationID.self, bufferingPolicy: .bufferingOldest(Self.refreshBacklog))
        refreshes.withLockedValue { $0 = requests }
        defer {
            refreshes.withLockedValue { $0 = nil }
            requests.finish()
        }
        await withTaskGroup(of: Void.self) { group in
            // One at a time, apart from the feed: a revocation behind a page of rotations is
            // not delayed by their store reads.
            group.addTask { [self] in
                for await organization in pending { await readAgain(organization) }
            }
            if let signals = runtime.store.changeSignals() {
                group.addTask { [waker] in
                    for await _ in signals { waker.wake() }
                }
            }
            group.addTask { [self] in
                while !Task.isCancelled {
                    await syncOnce()
                    await waker.wait(upTo: Self.pollInterval)
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Reads and applies every change after the cursor.
    public func syncOnce() async {
        do {
            while true {
                let after = cursor.withLockedValue { $0 }
                let page = try await runtime.store.changes(after: after, limit: Self.pageSize)
                // A store restored from a backup (or a failover that lost commits) has an older
                // feed than this replica read: what is derived from it may name pairs it lacks.
                if page.changes.isEmpty, after > 0, try await runtime.store.latestChange() < after {
                    try await resynchronizeAll()
                    cursor.withLockedValue { $0 = 0 }
                    continue
                }
                if page.missedSome {
                    try await resynchronizeAll()
                    cursor.withLockedValue { $0 = max($0, page.prunedThrough) }
                }
                for change in page.changes { await apply(change) }
                if let last = page.changes.last { cursor.withLockedValue { $0 = max($0, last.sequence) } }
                if page.changes.count < Self.pageSize { break }
            }
            runtime.revocations.markSynced()
        } catch {
            guard !Task.isCancelled else { return }
            runtime.revocations.markSyncFailed(error.message)
            logger.warning(
                "cannot read the store's change feed; unwraps are refused until it answers",
                metadata: ["error": "\(error.message)"]
            )
        }
    }

    private func apply(_ change: StoreChange) async {
        let broker = runtime.broker
        switch change.kind {
        case .revocation:
            guard let organization = change.organization else { return }
            // The change says that it changed; the store says what it is now.
            let revoked: Bool
            do {
                revoked = try await runtime.store.revocation(of: organization) != nil
            } catch {
                // Unreadable: taken as revoked (fail closed) until the next change says otherwise.
                revoked = true
            }
            runtime.revocations.set(organization, revoked: revoked)
            runtime.publicKeys.invalidate(organization)
            await broker.forgetDerivedState(of: organization)
        case .keyConfiguration:
            // A save with a new keystore makes a new pair, and says so with this change only.
            guard let organization = change.organization else { return }
            dropPublicKeyAndReadAgain(organization)
            await broker.forgetDerivedState(of: organization)
        case .currentPair:
            guard let organization = change.organization else { return }
            dropPublicKeyAndReadAgain(organization)
        case .reload:
            guard !runtime.isOwnReload(change.sequence) else { return }
            do {
                _ = try await runtime.reload(announce: false)
                logger.notice("configuration reloaded: another replica reloaded its configuration")
            } catch is ReloadInProgress {
                // A reload running here reads the file as it is now anyway.
            } catch {
                logger.error(
                    "another replica reloaded its configuration; reloading this one's failed, the previous configuration stays in force: \(error)"
                )
            }
        }
    }

    /// Drops the organization's public-key answer; one that was in memory is queued to be
    /// read again (``run()`` reads the queue).
    private func dropPublicKeyAndReadAgain(_ organization: OrganizationID) {
        guard runtime.publicKeys.invalidate(organization) else { return }
        _ = refreshes.withLockedValue { $0?.yield(organization) }
    }

    /// Reads the organization's current answer into memory. An invalidation in its stripe
    /// during the read (another rotation of it, or of an organization sharing the stripe)
    /// spoils the ticket: read again, up to three times. A store that cannot say (its failure
    /// is already the health monitor's, through the instrumented store) leaves it to the next
    /// request.
    private func readAgain(_ organization: OrganizationID) async {
        for _ in 0..<3 {
            // Kept, or the store cannot say: done. Spoiled by an invalidation: read again.
            guard let filled = try? await runtime.publicKeys.fill(organization, from: runtime.broker), !filled.kept else { return }
        }
    }

    /// After changes were pruned before this replica read them: everything derived from the
    /// store is dropped and the revocation list read anew.
    private func resynchronizeAll() async throws(StoreError) {
        logger.warning(
            "the store's change feed no longer holds changes this replica missed; dropping every cached key and reading revocations anew"
        )
        await runtime.broker.cache?.removeAll()
        runtime.publicKeys.removeAll()
        runtime.revocations.replace(with: try await RevocationList.read(from: runtime.store))
    }
}
