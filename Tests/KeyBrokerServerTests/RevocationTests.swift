import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerServer
import Testing

@testable import KeyBrokerTestSupport

/// The kill switch on one server (the replicas' view is in keybrokerTests' ReplicaTests).
@Suite("Revoking an organization")
struct RevocationTests {
    @Test(
        "revoked: unwrap 403 even from the cache, no new pair, no rotation, the public key still served; restored: all resume; it survives a restart"
    )
    func killSwitch() async throws {
        let directory = try TemporaryDirectory()
        let fixture = try await ServerFixture.make(directory: directory)
        _ = await fixture.server.scheduler.runOnce()
        let broker = fixture.server.runtime.broker
        let pair = try await broker.currentKeyPair(for: Fixtures.org("acme"))
        let dataKey = Fixtures.dataKey()
        try await fixture.test { client in
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(pair, dataKey)
            ) { #expect($0.status == .ok) }
            #expect(await broker.cache?.count == 1, "the key is cached")
            try await client.execute(uri: "/v1/orgs/acme/revoke", method: .post, headers: fixture.headers("acme-recorder")) {
                #expect($0.status == .forbidden && $0.errorCode == "forbidden", "revoking needs encryption-key:edit")
            }
            try await client.execute(uri: "/v1/orgs/acme/revoke", method: .post, headers: fixture.headers("acme-admin")) { response in
                #expect(response.status == .ok)
                let view = try response.json(RevocationView.self)
                #expect(view.revoked && view.changed == true && view.revokedBy == "token:acme-admin" && view.revokedAt != nil)
            }
            #expect(await broker.cache?.count == 0, "its cached keys are wiped at once")
            try await client.execute(uri: "/v1/orgs/acme/revoke", method: .post, headers: fixture.headers("acme-admin")) { response in
                let view = try response.json(RevocationView.self)
                #expect(view.changed == false, "revoking twice changes nothing")
            }
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(pair, dataKey)
            ) { response in
                #expect(response.status == .forbidden)
                #expect(response.errorCode == "organization_revoked")
                #expect(response.text.contains("restore"), "the message says how to lift it: \(response.text)")
            }
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                #expect($0.status == .ok, "encryption goes on")
            }
            try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("acme-admin")) {
                #expect($0.status == .forbidden && $0.errorCode == "organization_revoked")
            }
            try await client.execute(uri: "/v1/orgs/acme", method: .get, headers: fixture.headers("acme-admin")) { response in
                let view = try response.json(OrganizationView.self)
                #expect(view.revoked?.revokedBy == "token:acme-admin")
            }
            try await client.execute(uri: "/v1/orgs/beta", method: .get, headers: fixture.headers("admin")) { response in
                let view = try response.json(OrganizationView.self)
                #expect(view.revoked == nil, "other organizations are unaffected")
            }
        }
        // Rotation skips it, even when due.
        try Fixtures.editRow(fixture, column: "created_at_us", value: "created_at_us - 40 * 86400000000", of: pair.id)
        let pass = await fixture.server.scheduler.runOnce()
        #expect(pass.rotated[Fixtures.org("acme")] == nil && !pass.failed.contains(Fixtures.org("acme")))
        #expect(try await broker.currentKeyPair(for: Fixtures.org("acme")).id == pair.id)

        // A restart reads it back from the store.
        let restarted = try await ServerFixture.make(directory: directory)
        try await restarted.test { client in
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: restarted.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(pair, dataKey)
            ) { response in #expect(response.errorCode == "organization_revoked", "still revoked after a restart") }
            try await client.execute(uri: "/v1/orgs/acme/restore", method: .post, headers: restarted.headers("acme-admin")) { response in
                #expect(response.status == .forbidden, "a tenant's own token cannot lift a revocation (it may be stolen)")
                #expect(response.text.contains("every organization"), "\(response.text)")
            }
            try await client.execute(uri: "/v1/orgs/acme/restore", method: .post, headers: restarted.headers("admin")) { response in
                let view = try response.json(RevocationView.self)
                #expect(view.revoked == false)
            }
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: restarted.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(pair, dataKey)
            ) { response in
                #expect(response.status == .ok)
                let unwrapped = try response.json(UnwrapResponse.self)
                #expect(unwrapped.dataKey == dataKey.base64EncodedString())
            }
        }
        let rotated = await restarted.server.scheduler.runOnce()
        #expect(rotated.rotated[Fixtures.org("acme")] == .scheduled, "restored: the due rotation happens")
        let audit = try String(contentsOfFile: directory.path("audit.log"), encoding: .utf8)
        #expect(audit.contains(#""event":"revoke""#) && audit.contains(#""event":"restore""#))
    }

    @Test("an unwrap is refused while the revocations cannot be confirmed with the store, and served again once they are")
    func staleRevocations() async throws {
        let list = RevocationList()
        list.requireSync(within: .milliseconds(200))
        let acme = Fixtures.org("acme")
        try list.check(acme)
        try await Task.sleep(for: .milliseconds(300))
        list.markSyncFailed("PostgreSQL at db:5432/keybroker cannot be reached")
        do {
            try list.check(acme)
            Issue.record("a stale list was trusted")
        } catch {
            #expect(error.kind == .storageFailed)
            #expect(error.message.contains("cannot be reached"), "\(error.message)")
        }
        list.markSynced()
        try list.check(acme)
        list.set(acme, revoked: true)
        #expect(throws: BrokerError.self) { try list.check(acme) }
    }
}

/// The change feed followed across processes and servers on one SQLite file. Each test waits
/// at most a poll of the feed plus half a second for what another writer did, a latency
/// claim: run alone (the parallel phase's RSA generations can delay a reload by more).
@Suite("Revoking an organization: another writer on the same store (LoadSensitive: timing)")
struct RevocationFollowerLoadSensitiveTests {
    @Test("a revocation by another process on the same SQLite file (the CLI) takes effect within a poll, its cached keys wiped")
    func otherProcess() async throws {
        let fixture = try await ServerFixture.make()
        _ = await fixture.server.scheduler.runOnce()
        let follower = Task { await fixture.server.follower.run() }
        defer { follower.cancel() }
        let broker = fixture.server.runtime.broker
        let pair = try await broker.currentKeyPair(for: Fixtures.org("acme"))
        _ = try await broker.unwrapDataKey(
            for: pair.organization,
            keyPairID: pair.id,
            wrappedDataKey: try PublicKeyEncryption.wrapDataKey(Fixtures.dataKey(), publicKeyDER: pair.publicKeyDER)
        )
        #expect(await broker.cache?.count == 1)
        let other = try SQLiteKeyPairStore(
            url: URL(fileURLWithPath: fixture.directory.path("data/keybroker.sqlite")),
            createIfMissing: false
        )
        let acme = Fixtures.org("acme")
        #expect(try await other.setRevocation(Revocation(organization: acme, revokedAt: Date(), revokedBy: "cli:ops"), for: acme))
        let began = ContinuousClock.now
        var seen = false
        while ContinuousClock.now - began < .milliseconds(1500) {
            // The follower marks the organization revoked, then wipes its keys: both awaited.
            if broker.revocations.isRevoked(acme), await broker.cache?.count == 0 {
                seen = true
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(seen, "revoked and its keys wiped within a poll of the change feed")
        #expect(broker.revocations.isRevoked(acme))
        _ = try await other.setRevocation(nil, for: acme)
        try await waitFor(seconds: 1.5) { !broker.revocations.isRevoked(acme) }
        #expect(!broker.revocations.isRevoked(acme), "and its restore, within a poll too")
    }

    @Test("a reload on one server makes another on the same store reload its own file within a poll, and not twice itself")
    func reloadFansOut() async throws {
        let directory = try TemporaryDirectory()
        let first = try await ServerFixture.make(directory: directory)
        let second = try await ServerFixture.make(directory: directory)
        let followers = [Task { await first.server.follower.run() }, Task { await second.server.follower.run() }]
        defer { for follower in followers { follower.cancel() } }
        try await Task.sleep(for: .milliseconds(200))
        let (firstBefore, secondBefore) = (ObjectIdentifier(first.server.runtime.broker), ObjectIdentifier(second.server.runtime.broker))
        _ = try await first.server.runtime.reload()
        let reloadedByFirst = ObjectIdentifier(first.server.runtime.broker)
        #expect(reloadedByFirst != firstBefore)
        let began = ContinuousClock.now
        while ContinuousClock.now - began < .milliseconds(1500), ObjectIdentifier(second.server.runtime.broker) == secondBefore {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(ObjectIdentifier(second.server.runtime.broker) != secondBefore, "the other server reloaded")
        try await Task.sleep(for: .milliseconds(1200))
        #expect(ObjectIdentifier(first.server.runtime.broker) == reloadedByFirst, "its own reload change does not reload it again")
    }
}
