import Foundation
import KeyBroker
import KeyBrokerServer
import NIOHTTP1
import Testing

@testable import KeyBrokerTestSupport

/// Several `keybroker serve` processes on one PostgreSQL database, on loopback, as behind a
/// load balancer: the built executable, a real cluster started by the tests.
@Suite(
    "Replicas on one PostgreSQL database (LoadSensitive: run alone)",
    .enabled(if: PostgresCluster.available, "\(PostgresCluster.skipMessage)")
)
struct LoadSensitiveReplicaTests {
    @Test("revocation on replica A refuses unwrap on B and C within 1 s; restore on C lets A unwrap again")
    func revocationEverywhere() async throws {
        let replicas = try await ReplicaSet(cluster: try await offPool { try PostgresCluster.shared() })
        let servers = try await replicas.startAll(3)
        defer { for server in servers { _ = server.stop() } }
        let (a, b, c) = (servers[0], servers[1], servers[2])
        let pair = try await replicas.publicKey("acme", on: a, token: "acme-recorder")
        let dataKey = Fixtures.dataKey()
        let body = try ReplicaSet.unwrapBody(pair, dataKey)
        for server in servers {
            let answer = try await server.request(.POST, "/v1/orgs/acme/unwrap", token: replicas.tokens["acme-recorder"], json: body)
            #expect(answer.status == 200, "every replica unwraps (and caches the key) before")
        }

        let revoked = try await a.request(.POST, "/v1/orgs/acme/revoke", token: replicas.tokens["acme-admin"])
        #expect(revoked.status == 200, "\(String(decoding: revoked.body, as: UTF8.self))")
        let view = try APIJSON.decoder.decode(RevocationView.self, from: revoked.body)
        #expect(view.revoked && view.changed == true && view.revokedBy == "token:acme-admin")
        let revokedAt = ContinuousClock.now
        let onA = try await a.request(.POST, "/v1/orgs/acme/unwrap", token: replicas.tokens["acme-recorder"], json: body)
        #expect(onA.status == 403 && ReplicaSet.errorCode(onA.body) == "organization_revoked", "refused at once where it was revoked")
        for (name, server) in [("B", b), ("C", c)] {
            let refused = try await ReplicaSet.poll(within: .seconds(1)) {
                let answer = try await server.request(.POST, "/v1/orgs/acme/unwrap", token: replicas.tokens["acme-recorder"], json: body)
                return answer.status == 403 && ReplicaSet.errorCode(answer.body) == "organization_revoked"
            }
            #expect(refused, "replica \(name) refuses within 1 s of the revocation (\(ContinuousClock.now - revokedAt))")
        }
        let publicKey = try await b.request(.GET, "/v1/orgs/acme/public-key", token: replicas.tokens["acme-recorder"])
        #expect(publicKey.status == 200, "encryption goes on while revoked")
        let generate = try await c.request(.POST, "/v1/orgs/acme/keypairs", token: replicas.tokens["acme-admin"])
        #expect(generate.status == 403 && ReplicaSet.errorCode(generate.body) == "organization_revoked", "no new pair while revoked")
        let shown = try await b.request(.GET, "/v1/orgs/acme", token: replicas.tokens["acme-admin"])
        #expect(try APIJSON.decoder.decode(OrganizationView.self, from: shown.body).revoked?.revoked == true)

        let tenantRestore = try await c.request(.POST, "/v1/orgs/acme/restore", token: replicas.tokens["acme-admin"])
        #expect(tenantRestore.status == 403, "the organization's own token cannot lift its revocation")
        let restored = try await c.request(.POST, "/v1/orgs/acme/restore", token: replicas.tokens["admin"])
        #expect(restored.status == 200)
        #expect(try APIJSON.decoder.decode(RevocationView.self, from: restored.body).revoked == false)
        let unwrapsAgain = try await ReplicaSet.poll(within: .seconds(1)) {
            let answer = try await a.request(.POST, "/v1/orgs/acme/unwrap", token: replicas.tokens["acme-recorder"], json: body)
            guard answer.status == 200 else { return false }
            return try APIJSON.decoder.decode(UnwrapResponse.self, from: answer.body).dataKey == dataKey.base64EncodedString()
        }
        #expect(unwrapsAgain, "restored on C, A unwraps within 1 s")
        let audit = try String(contentsOf: replicas.directory.url.appendingPathComponent("audit-0.log"), encoding: .utf8)
        #expect(audit.contains(#""event":"revoke""#) && audit.contains(#""replica":"replica-0""#), "the record names the replica")
    }

    @Test(
        "PostgreSQL stopped while serving: readyz and unwrap 503 with a clear error, public keys in memory still served and the others 503; all recover without a restart"
    )
    func databaseOutage() async throws {
        let cluster = try await offPool { try PostgresCluster() }
        defer { cluster.stop() }
        let replicas = try await ReplicaSet(cluster: cluster)
        let server = try await replicas.start(0)
        defer { _ = server.stop() }
        let pair = try await replicas.publicKey("acme", on: server, token: "acme-recorder")
        let dataKey = Fixtures.dataKey()
        let body = try ReplicaSet.unwrapBody(pair, dataKey)
        #expect(try await server.request(.POST, "/v1/orgs/acme/unwrap", token: replicas.tokens["acme-recorder"], json: body).status == 200)
        // The first pair's change is read back from the feed within a poll: the answer is
        // dropped and read again then (and a request filling it just as the change arrived
        // would not keep it). Past that, one more read puts it in memory for certain.
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await server.request(.GET, "/v1/orgs/acme/public-key", token: replicas.tokens["acme-recorder"]).status == 200)

        try await offPool { cluster.stop() }
        let stopped = ContinuousClock.now
        let unready = try await ReplicaSet.poll(within: .seconds(4)) { try await server.request(.GET, "/readyz").status == 503 }
        #expect(unready, "readyz fails within the health check interval (1 s) and one store exchange")
        print("readyz 503 after \(ContinuousClock.now - stopped) with PostgreSQL stopped")
        #expect(try await server.request(.GET, "/livez").status == 200, "the process is alive: no restart wanted")
        // acme's answer is in memory (read above): encryption goes on. beta's pair exists but was
        // never read here: 503 with a clear error.
        let publicKey = try await server.request(.GET, "/v1/orgs/acme/public-key", token: replicas.tokens["acme-recorder"])
        #expect(publicKey.status == 200, "a cached organization still gets its public key")
        #expect(try APIJSON.decoder.decode(PublicKeyView.self, from: publicKey.body).keyPair.id == pair.keyPair.id)
        let uncached = try await server.request(.GET, "/v1/orgs/beta/public-key", token: replicas.tokens["admin"])
        #expect(uncached.status == 503 && ReplicaSet.errorCode(uncached.body) == "store_unavailable")
        let verbose = try await server.request(.GET, "/readyz?verbose")
        let readiness = try JSONSerialization.jsonObject(with: verbose.body) as? [String: Any]
        #expect(
            (readiness?["store"] as? [String: Any])?["publicKeysInMemory"] as? Int == 1,
            "\(String(decoding: verbose.body, as: UTF8.self))"
        )
        let status = try await server.request(.GET, "/v1/status", token: replicas.tokens["admin"])
        #expect(status.status == 200, "status answers during a store outage")
        let warnings = try APIJSON.decoder.decode(StatusView.self, from: status.body).warnings
        #expect(warnings.contains { $0.contains("1 organizations' public keys are served from memory") }, "\(warnings)")
        var refused: (status: Int, body: Data)?
        let unwrapRefused = try await ReplicaSet.poll(within: .seconds(5)) {
            let answer = try await server.request(.POST, "/v1/orgs/acme/unwrap", token: replicas.tokens["acme-recorder"], json: body)
            refused = answer
            return answer.status == 503
        }
        #expect(unwrapRefused, "even a cached key is not used once revocations cannot be confirmed")
        let message = refused.map { String(decoding: $0.body, as: UTF8.self) } ?? ""
        #expect(message.contains("store_unavailable"), "\(message)")
        #expect(!message.contains(cluster.password))

        try await offPool { try cluster.start() }
        let ready = try await ReplicaSet.poll(within: .seconds(15)) { try await server.request(.GET, "/readyz").status == 200 }
        #expect(ready, "ready again without a restart")
        let recovered = try await ReplicaSet.poll(within: .seconds(10)) {
            try await server.request(.POST, "/v1/orgs/acme/unwrap", token: replicas.tokens["acme-recorder"], json: body).status == 200
        }
        #expect(recovered)
        #expect(try await server.request(.GET, "/v1/orgs/acme/public-key", token: replicas.tokens["acme-recorder"]).status == 200)
        #expect(!server.log.contains(cluster.password), "the password is never logged")
    }

    @Test("a new pair made on replica A is what replica B answers within 1 s, though B had the old one in memory")
    func publicKeyCoherence() async throws {
        let replicas = try await ReplicaSet(cluster: try await offPool { try PostgresCluster.shared() })
        let servers = try await replicas.startAll(2)
        defer { for server in servers { _ = server.stop() } }
        let (a, b) = (servers[0], servers[1])
        let before = try await replicas.publicKey("acme", on: b, token: "acme-recorder")
        // Read twice on B: the second is served from memory.
        #expect(try await replicas.publicKey("acme", on: b, token: "acme-recorder").keyPair.id == before.keyPair.id)
        for round in 0..<5 {
            let made = try await a.request(.POST, "/v1/orgs/acme/keypairs", token: replicas.tokens["acme-admin"])
            #expect(made.status == 201)
            let id = try APIJSON.decoder.decode(KeyPairView.self, from: made.body).id
            let madeAt = ContinuousClock.now
            let seen = try await ReplicaSet.poll(within: .seconds(1)) {
                try await replicas.publicKey("acme", on: b, token: "acme-recorder").keyPair.id == id
            }
            #expect(seen, "round \(round): B serves A's new pair within 1 s (\(ContinuousClock.now - madeAt))")
            print("round \(round): B served A's new pair after \(ContinuousClock.now - madeAt)")
        }
    }

    @Test(
        "three replicas, 300 mixed requests, the leader killed -9 and restarted: one current pair each, every pair decrypts, each due rotation once, a new leader within 30 s"
    )
    func chaos() async throws {
        let cluster = try await offPool { try PostgresCluster.shared() }
        let replicas = try await ReplicaSet(cluster: cluster)
        var servers = try await replicas.startAll(3)
        defer { for server in servers { _ = server.stop() } }
        let admin = replicas.tokens["admin"]
        let traffic = (0..<8).map { "t-\($0)" }
        let dueFirst = (0..<4).map { "d-\($0)" }
        let dueAfterKill = (0..<4).map { "e-\($0)" }
        let raced = (0..<4).map { "r-\($0)" }
        for (index, organization) in (traffic + dueFirst + dueAfterKill + raced).enumerated() {
            let made = try await servers[index % 3].request(.POST, "/v1/orgs/\(organization)/keypairs", token: admin)
            #expect(made.status == 201, "\(String(decoding: made.body, as: UTF8.self))")
        }
        // Aged past the daily cadence: due for the leader's next pass. The raced ones also get
        // a "change key now" on every replica at the same moment, racing the leader's rotation.
        try replicas.age(dueFirst + raced)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for organization in raced {
                for server in servers {
                    group.addTask { _ = try await server.request(.POST, "/v1/orgs/\(organization)/keypairs", token: admin) }
                }
            }
            try await group.waitForAll()
        }
        guard let leaderIndex = try await replicas.waitForLeader(among: servers) else {
            Issue.record("no replica took the rotation lease")
            return
        }

        let wrongKeys = Locked(0)
        let answered = Locked<[Int: Int]>([:])
        var alive = Set(0..<3)
        var killedAt: ContinuousClock.Instant?
        for batch in 0..<30 {
            if batch == 15 {
                // The leader dies mid-traffic: kill -9, no lease given up.
                kill(servers[leaderIndex].process.processIdentifier, SIGKILL)
                servers[leaderIndex].process.waitUntilExit()
                alive.remove(leaderIndex)
                killedAt = .now
                try replicas.age(dueAfterKill)
            }
            let live = alive.sorted()
            let current = servers
            try await withThrowingTaskGroup(of: Void.self) { group in
                for slot in 0..<10 {
                    let organization = traffic[(batch * 10 + slot) % traffic.count]
                    let server = current[live[(batch + slot) % live.count]]
                    let other = current[live[(batch + slot + 1) % live.count]]
                    group.addTask {
                        let status: Int
                        switch slot % 6 {
                        case 0, 1:
                            status = try await server.request(.POST, "/v1/orgs/\(organization)/keypairs", token: admin).status
                        case 2:
                            status = try await server.request(
                                .PUT,
                                "/v1/orgs/\(organization)/key-configuration",
                                token: admin,
                                json: ["type": "default", "rotation": batch % 2 == 0 ? "weekly" : "monthly"]
                            ).status
                        default:
                            // Encrypt with the public key one replica serves, unwrap on another.
                            let answer = try await server.request(.GET, "/v1/orgs/\(organization)/public-key", token: admin)
                            let pair = try APIJSON.decoder.decode(PublicKeyView.self, from: answer.body)
                            let dataKey = Fixtures.dataKey()
                            let unwrap = try await other.request(
                                .POST,
                                "/v1/orgs/\(organization)/unwrap",
                                token: admin,
                                json: try ReplicaSet.unwrapBody(pair, dataKey)
                            )
                            status = unwrap.status
                            if unwrap.status == 200,
                                try APIJSON.decoder.decode(UnwrapResponse.self, from: unwrap.body).dataKey != dataKey.base64EncodedString()
                            {
                                wrongKeys.update { $0 += 1 }
                            }
                        }
                        answered.update { $0[status, default: 0] += 1 }
                    }
                }
                try await group.waitForAll()
            }
            if batch == 20 {
                // The killed replica comes back (a new process, a new lease holder).
                servers[leaderIndex] = try await replicas.start(leaderIndex)
                alive.insert(leaderIndex)
            }
        }
        let statuses = answered.value
        print("300 requests across three replicas: statuses \(statuses.sorted { $0.key < $1.key })")
        #expect(statuses.values.reduce(0, +) == 300)
        #expect(statuses.keys.allSatisfy { $0 == 200 || $0 == 201 }, "every request to a live replica succeeded: \(statuses)")
        #expect(wrongKeys.value == 0, "no unwrap returned a wrong key")

        // A new leader rotated what came due after the kill within 30 s of it.
        let rotatedInTime = try await ReplicaSet.poll(within: .seconds(30)) {
            try replicas.scheduledRotations(of: dueAfterKill).values.allSatisfy { $0 >= 1 }
        }
        if let killedAt { print("new leader rotated the organizations due after the kill \(ContinuousClock.now - killedAt) after it") }
        #expect(rotatedInTime, "a new leader rotated within 30 s of the leader's death")
        try await Task.sleep(for: .seconds(3))  // passes by the restarted replica too, if it leads

        let rotations = try replicas.scheduledRotations(of: dueFirst + dueAfterKill)
        #expect(rotations.values.allSatisfy { $0 == 1 }, "each due rotation happened once: \(rotations)")
        // Raced: a scheduled pair never follows a manual one that had already replaced the due
        // pair (the rotation would have made a second new pair for one due rotation).
        for organization in raced {
            let reasons = try cluster.psql(
                replicas.database,
                "SELECT string_agg(reason, ' ' ORDER BY seq) FROM key_pair WHERE organization = '\(organization)'"
            ).split(separator: " ").map(String.init)
            let afterDue = Array(reasons.dropFirst())  // the first pair is the one aged
            #expect(afterDue.filter { $0 == "scheduled" }.count <= 1, "\(organization): \(reasons)")
            if let firstManual = afterDue.firstIndex(of: "manual") {
                #expect(
                    !afterDue[firstManual...].contains("scheduled"),
                    "\(organization): a rotation after the pair was replaced: \(reasons)"
                )
            }
        }
        let currents = try cluster.psql(
            replicas.database,
            "SELECT count(*) FROM (SELECT organization FROM key_pair GROUP BY organization HAVING count(*) FILTER (WHERE is_current) <> 1) t"
        )
        #expect(currents == "0", "every organization has exactly one current pair")
        #expect(
            try cluster.psql(replicas.database, "SELECT count(DISTINCT organization) FROM key_pair") == "\(2 + 20)",
            "acme and beta, and the 20 of the test"
        )

        // Every pair in history decrypts, on a replica chosen in turn.
        let pairs = try cluster.psql(
            replicas.database,
            "SELECT id || ' ' || organization || ' ' || replace(encode(public_key, 'base64'), E'\\n', '') FROM key_pair ORDER BY seq"
        ).split(separator: "\n")
        var undecryptable: [String] = []
        for (index, line) in pairs.enumerated() {
            let parts = line.split(separator: " ").map(String.init)
            guard parts.count == 3, let der = Data(base64Encoded: parts[2]) else {
                undecryptable.append(String(line))
                continue
            }
            let dataKey = Fixtures.dataKey()
            let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: der)
            let answer = try await servers[index % 3].request(
                .POST,
                "/v1/orgs/\(parts[1])/unwrap",
                token: admin,
                json: ["keyPairId": parts[0], "wrappedKey": wrapped.base64EncodedString()]
            )
            let unwrapped = answer.status == 200 ? try? APIJSON.decoder.decode(UnwrapResponse.self, from: answer.body).dataKey : nil
            if unwrapped != dataKey.base64EncodedString() { undecryptable.append("\(parts[0]) of \(parts[1]): \(answer.status)") }
        }
        #expect(pairs.count > 60, "history of every organization: \(pairs.count) pairs")
        #expect(undecryptable.isEmpty, "every pair in history decrypts: \(undecryptable)")
    }
}

/// The replicas of one test: a configuration each (one shared master key file, one
/// database), started as `keybroker serve` processes.
struct ReplicaSet {
    let cluster: PostgresCluster
    let database: String
    let directory: TemporaryDirectory
    let tokens = ServerFixture.fixedTokens

    init(cluster: PostgresCluster) async throws {
        self.cluster = cluster
        database = try await offPool { try cluster.createDatabase() }
        directory = try TemporaryDirectory()
    }

    func body(_ index: Int) -> String {
        let shared = directory.url.path
        return ServerFixture.yaml(
            tokens: tokens,
            body: """
                storage:
                  postgres:
                    url: ${KEYBROKER_PG_URL}
                keystores:
                  local:
                    type: local-file
                    path: \(shared)/master.key
                    createIfMissing: true
                defaults:
                  keystore: local
                  rotation: daily
                  keyPairSpec: RSA_2048
                organizations: { acme: {}, beta: {} }
                server:
                  listen: 127.0.0.1:0
                  instanceId: replica-\(index)
                  healthCheckInterval: 1s
                  limits: { generationsPerOrganizationPerMinute: 1000 }
                scheduler: { interval: 2s }
                audit: { destination: \(shared)/audit-\(index).log }
                """
        )
    }

    /// Starts replica `index` (again).
    func start(_ index: Int) async throws -> ServerProcess {
        let folder = directory.url.appendingPathComponent("replica-\(index)")
        _ = try directory.write("replica-\(index)/config/keybroker.yaml", body(index))
        let environment = ["KEYBROKER_PG_URL": cluster.url(database)]
        return try await offPool { try ServerProcess(directory: folder, environment: environment) }
    }

    /// Starts `count` replicas; the first alone, so that it creates the master key file.
    func startAll(_ count: Int) async throws -> [ServerProcess] {
        var servers = [try await start(0)]
        for index in 1..<count { servers.append(try await start(index)) }
        return servers
    }

    /// The organization's public key, once the leader gave it its first pair.
    func publicKey(_ organization: String, on server: ServerProcess, token: String) async throws -> PublicKeyView {
        var answer = try await server.request(.GET, "/v1/orgs/\(organization)/public-key", token: tokens[token])
        for _ in 0..<200 where answer.status == 404 {
            try await Task.sleep(for: .milliseconds(100))
            answer = try await server.request(.GET, "/v1/orgs/\(organization)/public-key", token: tokens[token])
        }
        try #require(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
        return try APIJSON.decoder.decode(PublicKeyView.self, from: answer.body)
    }

    /// The index of the replica that logged taking the rotation lease.
    func waitForLeader(among servers: [ServerProcess]) async throws -> Int? {
        for _ in 0..<100 {
            if let index = servers.firstIndex(where: { $0.log.contains("this replica now runs scheduled rotations") }) { return index }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// Makes the organizations' current pairs two days old (due on the daily cadence).
    func age(_ organizations: [String]) throws {
        let list = organizations.map { "'\($0)'" }.joined(separator: ", ")
        try cluster.psql(
            database,
            "UPDATE key_pair SET created_at_us = created_at_us - 172800000000 WHERE is_current AND organization IN (\(list))"
        )
    }

    /// How many scheduled rotations each organization had.
    func scheduledRotations(of organizations: [String]) throws -> [String: Int] {
        let list = organizations.map { "'\($0)'" }.joined(separator: ", ")
        let rows = try cluster.psql(
            database,
            "SELECT organization || ' ' || count(*) FILTER (WHERE reason = 'scheduled') FROM key_pair WHERE organization IN (\(list)) GROUP BY organization"
        )
        var counts = Dictionary(uniqueKeysWithValues: organizations.map { ($0, 0) })
        for line in rows.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let count = Int(parts[1]) { counts[String(parts[0])] = count }
        }
        return counts
    }

    static func unwrapBody(_ pair: PublicKeyView, _ dataKey: Data) throws -> [String: String] {
        let der = try #require(Data(base64Encoded: pair.publicKeyDER))
        return [
            "keyPairId": pair.keyPair.id,
            "wrappedKey": try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: der).base64EncodedString(),
        ]
    }

    /// The `error.code` of an answer's body.
    static func errorCode(_ body: Data) -> String? {
        (try? APIJSON.decoder.decode(ErrorBody.self, from: body))?.error.code
    }

    /// Whether `condition` held within `limit`, tried every 50 ms.
    static func poll(within limit: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }
}
