import Foundation
import Synchronization

/// The organizations revoked in the store, held in memory so that every unwrap can check
/// without a store read (a cache hit reads nothing else), and kept current from the store's
/// change feed (``ChangeFollower``). Shared by every broker of a process, across reloads.
///
/// Fail closed: once ``requireSync(within:)`` is set, a list not confirmed against the store
/// within that time refuses every unwrap, since a revocation made on another replica might
/// be missing from it.
public final class RevocationList: Sendable {
    private struct State {
        var revoked: Set<OrganizationID> = []
        var syncedAt: ContinuousClock.Instant = .now
        var maximumAge: Duration?
        var lastSyncError: String?
    }

    private let state = Mutex(State())

    /// An empty list (tests; ``load(from:)`` reads the store's).
    public init(revoked: Set<OrganizationID> = []) {
        state.withLock { $0.revoked = revoked }
    }

    /// The store's revoked organizations, a page at a time (revocations are few: this is
    /// O(revoked organizations), not O(organizations)).
    public static func load(from store: any KeyPairStore) async throws(StoreError) -> RevocationList {
        RevocationList(revoked: try await read(from: store))
    }

    /// The store's revoked organizations.
    public static func read(from store: any KeyPairStore) async throws(StoreError) -> Set<OrganizationID> {
        var revoked: Set<OrganizationID> = []
        var after: String?
        repeat {
            let page = try await store.revokedOrganizations(after: after, limit: 1000)
            revoked.formUnion(page.revocations.map(\.organization))
            // The cursor is the last row's stored key, so unreadable rows cannot end the walk early.
            guard let next = page.next, next != after else { break }
            after = next
        } while true
        return revoked
    }

    /// Whether `organization` is revoked, as far as this process knows.
    public func isRevoked(_ organization: OrganizationID) -> Bool {
        state.withLock { $0.revoked.contains(organization) }
    }

    /// Sets what the store says of `organization`.
    public func set(_ organization: OrganizationID, revoked: Bool) {
        state.withLock { state in
            if revoked { state.revoked.insert(organization) } else { state.revoked.remove(organization) }
        }
    }

    /// Replaces the whole list (after the feed missed changes).
    public func replace(with revoked: Set<OrganizationID>) {
        state.withLock { $0.revoked = revoked }
    }

    /// The list was just confirmed against the store.
    public func markSynced() {
        state.withLock { state in
            state.syncedAt = .now
            state.lastSyncError = nil
        }
    }

    /// The store could not be read to confirm the list.
    public func markSyncFailed(_ message: String) {
        state.withLock { $0.lastSyncError = message }
    }

    /// From now on, refuse unwraps while the list is older than `maximumAge`.
    public func requireSync(within maximumAge: Duration) {
        state.withLock { state in
            state.maximumAge = maximumAge
            state.syncedAt = .now
        }
    }

    /// Throws when `organization` is revoked, or when the list cannot be trusted to say.
    public func check(_ organization: OrganizationID) throws(BrokerError) {
        let (revoked, stale) = state.withLock { state -> (Bool, String?) in
            let age = ContinuousClock.now - state.syncedAt
            guard let maximumAge = state.maximumAge, age > maximumAge else { return (state.revoked.contains(organization), nil) }
            let cause = state.lastSyncError.map { ": \($0)" } ?? ""
            return (
                state.revoked.contains(organization),
                "revocations were last confirmed with the store \(age.components.seconds) s ago\(cause)"
            )
        }
        if revoked { throw BrokerError.revoked(organization) }
        if let stale {
            throw BrokerError(
                .storageFailed,
                "private keys are not used while this replica cannot confirm that organization '\(organization)' is not revoked (\(stale)); it resumes as soon as the store answers",
                storeError: StoreError(.unavailable, stale)
            )
        }
    }
}

extension BrokerError {
    /// `organization` is revoked.
    static func revoked(_ organization: OrganizationID) -> BrokerError {
        BrokerError(
            .revoked,
            "organization '\(organization)' is revoked: its private keys are not used and it gets no new key pair until the platform's operator restores it (keybroker org restore --org \(organization), or POST /v1/orgs/\(organization)/restore with encryption-key:edit for every organization)"
        )
    }
}
