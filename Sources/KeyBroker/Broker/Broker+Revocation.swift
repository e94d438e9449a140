import Foundation
import Logging

extension Broker {
    /// Revokes `organization` (the kill switch): from the moment this returns, no private key
    /// of it is decrypted or used by this process, its cached keys are gone, and it gets no
    /// new pair; other processes sharing the store follow within a second (``ChangeFollower``).
    /// Its public key is still served, so encryption goes on (documented).
    /// - Parameter beforeCommit: runs before the revocation is stored (the audit record); when
    ///   it throws, nothing changes.
    /// - Returns: whether anything changed (it may have been revoked already).
    public func revoke(
        _ organization: OrganizationID,
        by actor: String,
        beforeCommit: () async throws(BrokerError) -> Void = {}
    ) async throws(BrokerError) -> Bool {
        try await beforeCommit()
        // Locally first: a revocation is never weaker for a store write that failed.
        revocations.set(organization, revoked: true)
        await cache?.removeAll(of: organization)
        let changed: Bool
        do {
            changed = try await store.setRevocation(
                Revocation(organization: organization, revokedAt: Self.storagePrecision(now()), revokedBy: actor),
                for: organization
            )
        } catch {
            throw BrokerError.storage(error)
        }
        // Again after the commit: the change follower may have applied an older change of this
        // organization meanwhile, and a decryption in flight may have finished.
        revocations.set(organization, revoked: true)
        await cache?.removeAll(of: organization)
        logger.notice("organization revoked", metadata: ["org": "\(organization)", "by": "\(actor)", "changed": "\(changed)"])
        return changed
    }

    /// Lifts the revocation of `organization`.
    /// - Returns: whether anything changed.
    public func restore(
        _ organization: OrganizationID,
        by actor: String,
        beforeCommit: () async throws(BrokerError) -> Void = {}
    ) async throws(BrokerError) -> Bool {
        try await beforeCommit()
        let changed: Bool
        do {
            changed = try await store.setRevocation(nil, for: organization)
        } catch {
            throw BrokerError.storage(error)
        }
        revocations.set(organization, revoked: false)
        logger.notice("organization restored", metadata: ["org": "\(organization)", "by": "\(actor)", "changed": "\(changed)"])
        return changed
    }

    /// The organization's revocation as stored, if it is revoked.
    public func revocation(of organization: OrganizationID) async throws(BrokerError) -> Revocation? {
        do {
            return try await store.revocation(of: organization)
        } catch {
            throw BrokerError.storage(error)
        }
    }

    /// Drops what this process derived from the organization's stored state: its decrypted
    /// private keys and its keystore instances (after a change made here or by another process).
    public func forgetDerivedState(of organization: OrganizationID) async {
        await cache?.removeAll(of: organization)
    }
}
