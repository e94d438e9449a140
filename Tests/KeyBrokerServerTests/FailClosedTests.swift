import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerServer
import NIOCore
import Synchronization
import Testing

@testable import KeyBrokerTestSupport

/// Fail closed, and bound what one tenant can do: an operation the audit log cannot record is
/// refused, and one tenant's edit token cannot make the broker generate without limit.
@Suite("Fail closed, and bound what one tenant can do")
struct FailClosedTests {
    @Test("with the audit destination failing (/dev/full), unwrap, change key now, test and reload are refused; nothing changed")
    func auditFailureRefuses() async throws {
        let fixture = try await ServerFixture.make(body: ServerFixture.configBody(audit: "{ destination: /dev/full }"))
        let broker = fixture.server.runtime.broker
        let pair = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(pair, Fixtures.dataKey())
            ) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.errorCode == "audit_unavailable")
                #expect(!response.text.contains("dataKey"), "the data key does not leave unaudited")
            }
            try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("admin")) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.errorCode == "audit_unavailable")
                #expect(response.text.contains("No space left on device"), "an operator sees why")
            }
            try await client.execute(uri: "/v1/orgs/acme/test", method: .post, headers: fixture.headers("acme-admin")) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(!response.text.contains("No space"), "a tenant does not see the server's details")
            }
            try await client.execute(uri: "/v1/admin/reload", method: .post, headers: fixture.headers("admin")) {
                #expect($0.status == .serviceUnavailable)
            }
        }
        #expect(try await broker.history(for: Fixtures.org("acme")).map(\.record.id) == [pair.id], "no pair was made")
        #expect(fixture.server.scheduler.failuresByOrganization.isEmpty)
        // The scheduler is refused too: beta gets no unaudited pair.
        let pass = await fixture.server.scheduler.runOnce()
        #expect(pass.failed == [Fixtures.org("beta")])
        #expect(try await broker.history(for: Fixtures.org("beta")).isEmpty)
    }

    @Test("audit.onFailure: continue accepts unaudited operations (and counts them)")
    func auditFailureContinues() async throws {
        let fixture = try await ServerFixture.make(body: ServerFixture.configBody(audit: "{ destination: /dev/full, onFailure: continue }"))
        let pair = try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(pair, Fixtures.dataKey())
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.text.contains("keybroker_audit_write_failures_total")) }
        }
    }

    @Test("a generation's audit record is on disk before its pair is committed")
    func auditBeforeCommit() async throws {
        let seen = Locked<[Bool]>([])
        let directory = try TemporaryDirectory()
        let audit = directory.path("audit.log")
        let fixture = try await ServerFixture.make(
            directory: directory,
            store: { inner in
                ObservedStore(inner: inner) { record in
                    let text = (try? String(contentsOfFile: audit, encoding: .utf8)) ?? ""
                    seen.update { $0.append(text.contains(record.id.uuidString.lowercased())) }
                }
            }
        )
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("admin")) {
                #expect($0.status == .created)
            }
        }
        _ = await fixture.server.scheduler.runOnce()
        #expect(seen.value == [true, true], "the API's and the scheduler's generations were audited before their commits")
    }

    @Test("fifty parallel change-key-now for one organization make at most the per-minute cap of pairs; the rest join or get 429")
    func parallelChangeKeyNow() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            let results = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?, String?).self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("acme-admin")) {
                            response in
                            (response.status, try? response.json(KeyPairView.self).id, response.headers[.retryAfter])
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let created = results.filter { $0.0 == .created }
            #expect(created.count + results.filter { $0.0 == .tooManyRequests }.count == 50, "\(results.map(\.0))")
            #expect(Set(created.compactMap(\.1)).count <= 6)
            #expect(results.filter { $0.0 == .tooManyRequests }.allSatisfy { Int($0.2 ?? "") ?? 0 >= 1 })
            let history = try await fixture.server.runtime.broker.history(for: Fixtures.org("acme"))
            #expect(history.count == Set(created.compactMap(\.1)).count, "every pair made was handed out")
        }
    }

    @Test("the seventh change key now within a minute is 429 with Retry-After; another organization is unaffected")
    func perOrganizationCap() async throws {
        let clock = Locked(Date(timeIntervalSince1970: 1_800_000_000))
        let fixture = try await ServerFixture.make(now: { clock.value })
        try await fixture.test { client in
            for attempt in 1...7 {
                try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("acme-admin")) { response in
                    if attempt <= 6 {
                        #expect(response.status == .created, "attempt \(attempt)")
                    } else {
                        #expect(response.status == .tooManyRequests)
                        #expect(response.errorCode == "rate_limited")
                        #expect(response.headers[.retryAfter] == "60")
                        #expect(response.text.contains("generationsPerOrganizationPerMinute"))
                    }
                }
                clock.update { $0 += 0.001 }
            }
            try await client.execute(uri: "/v1/orgs/beta/keypairs", method: .post, headers: fixture.headers("admin")) {
                #expect($0.status == .created)
            }
            clock.update { $0 += 60 }
            try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("acme-admin")) {
                #expect($0.status == .created, "a minute later the window has moved")
            }
        }
    }

    @Test("the documentation holds no token hash of a guessable string, and the loader warns about every hash it prints")
    func documentedHashes() throws {
        let files = try Self.documentationFiles()
        var found: Set<String> = []
        var words: Set<String> = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in text.matches(of: /sha256:\s*"?([0-9a-f]{64})/) { found.insert(String(match.1)) }
            for word in text.split(whereSeparator: { $0.isWhitespace || "`\"',;()[]{}<>".contains($0) }) { words.insert(String(word)) }
        }
        #expect(!found.isEmpty)
        #expect(
            found.isSubset(of: DocumentedTokenHashes.all),
            "every hash in the docs is known to the loader: \(found.subtracting(DocumentedTokenHashes.all))"
        )
        let guessable = words.filter { DocumentedTokenHashes.all.contains(ServerFixture.tokenHash($0)) }
        #expect(guessable.isEmpty, "no word of the documentation is the token of a documented hash: \(guessable)")
        let loaded = try Fixtures.loader().load(path: packageRoot.appendingPathComponent("config/examples/multi-tenant.yaml").path)
        #expect(loaded.warnings.contains { $0.message.contains("printed in KeyBroker's documentation") })
    }

    static func documentationFiles() throws -> [URL] {
        var files = [packageRoot.appendingPathComponent("README.md")]
        for folder in ["docs", "config"] {
            let root = packageRoot.appendingPathComponent(folder)
            let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
            while let url = enumerator?.nextObject() as? URL {
                if ["md", "yaml", "yml"].contains(url.pathExtension) { files.append(url) }
            }
        }
        return files
    }
}

@Suite("Fail closed: what the review of the red-team fixes found")
struct ReviewFindingTests {
    @Test("a keystore test whose binding probe is refused (as KMS refuses a foreign context) leaves the keystore healthy")
    func bindingProbeIsNoOutage() async throws {
        let body = ServerFixture.configBody(
            organizations: "{ acme: { keystore: strict } }",
            extraKeystores: "  strict: { type: test-failing, failOn: deny-foreign-context }",
            extra: "server: { listen: 127.0.0.1:0, readiness: { strict: true } }\n"
        )
        let fixture = try await ServerFixture.make(body: body)
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/test", method: .post, headers: fixture.headers("acme-admin")) { response in
                #expect(response.status == .ok)
                let report = try response.json(TestReportView.self)
                #expect(report.passed)
            }
            try await client.execute(uri: "/readyz", method: .get) {
                #expect($0.status == .ok, "a tenant's test cannot take the replica out")
            }
        }
    }

    @Test("keystore tests count against the per-organization generation cap")
    func testsAreRateLimited() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            for attempt in 1...7 {
                try await client.execute(uri: "/v1/orgs/acme/test", method: .post, headers: fixture.headers("acme-admin")) { response in
                    #expect(response.status == (attempt <= 6 ? .ok : .tooManyRequests), "attempt \(attempt)")
                }
            }
        }
    }

    @Test("a missing database next to an existing master key file is not created anew: KeyBroker ran here before")
    func lostDatabaseIsNotRecreated() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("config/keybroker.yaml", Fixtures.config().replacingOccurrences(of: "path: data/", with: "path: ../data/"))
        let first = try ProcessRunner.run(ProcessRunner.keybroker, ["keys", "generate", "--org", "acme"], in: directory.url)
        #expect(first.status == 0, "\(first.stderr)")
        for suffix in ["", "-wal", "-shm"] { unlink(directory.path("data/keybroker.sqlite") + suffix) }
        let again = try ProcessRunner.run(ProcessRunner.keybroker, ["status"], in: directory.url)
        #expect(again.status == 1)
        #expect(again.stderr.contains("does not exist, but keystore 'local' was used before (master key file '"), "\(again.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.path("data/keybroker.sqlite")), "nothing was created")
    }

    @Test("a write-ahead log deleted under the store: new pairs are refused")
    func deletedWriteAheadLog() async throws {
        let url = try TemporaryDirectory().url.appendingPathComponent("keybroker.sqlite")
        let store = try SQLiteKeyPairStore(url: url, createIfMissing: true)
        try await store.insertCurrent(try Fixtures.sampleRecord())
        #expect(unlink(url.path + "-wal") == 0)
        let error = await #expect(throws: StoreError.self) { try await store.insertCurrent(try Fixtures.sampleRecord()) }
        #expect(error?.message.contains("(the write-ahead log) was deleted or replaced") == true, "\(error?.message ?? "")")
    }

    @Test("a flood of unauthenticated requests writes a bounded number of audit lines, counting the rest")
    func refusedAccessIsBudgeted() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            for _ in 0..<400 {
                try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("not-a-token")) {
                    #expect($0.status == .unauthorized)
                }
            }
        }
        let lines = try String(contentsOfFile: fixture.directory.path("audit.log"), encoding: .utf8).split(separator: "\n")
        let access = lines.filter { $0.contains(#""event":"access""#) }
        #expect(access.count < 300, "\(access.count) lines for 400 refusals")
        #expect(access.count >= 100, "the first ones are all written")
    }

    @Test("an unwrap whose ciphertext is not the pair's size costs no keystore call")
    func wrongSizeCostsNoKeystoreCall() async throws {
        let fixture = try await ServerFixture.make(
            body: ServerFixture.configBody(
                organizations: "{ acme: { keystore: counted-size } }",
                extraKeystores: "  counted-size: { type: test-counting }",
                extra: "privateKeyCache: { maxAge: 0s }\n"
            )
        )
        CountingKeystore.reset("counted-size")
        let pair = try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ByteBuffer(json: [
                    "keyPairId": pair.id.uuidString, "wrappedKey": Data(repeating: 1, count: 10).base64EncodedString(),
                ])
            ) {
                #expect($0.status == .badRequest)
            }
        }
        #expect(CountingKeystore.counts("counted-size").decrypt == 0)
    }

    @Test("keys generate from the CLI writes its audit lines where the server does, and is refused when it cannot")
    func cliIsAudited() throws {
        for (destination, status) in [("../audit.log", Int32(0)), ("/dev/full", Int32(1))] {
            let directory = try TemporaryDirectory()
            try directory.write(
                "config/keybroker.yaml",
                Fixtures.config().replacingOccurrences(of: "path: data/", with: "path: ../data/")
                    + "\naudit: { destination: \(destination) }\n"
            )
            let result = try ProcessRunner.run(ProcessRunner.keybroker, ["keys", "generate", "--org", "acme", "--json"], in: directory.url)
            #expect(result.status == status, "\(destination): \(result.stderr)")
            if status == 0 {
                let id = try APIJSON.decoder.decode(KeyPairView.self, from: result.stdout).id
                let audit = try String(contentsOfFile: directory.path("audit.log"), encoding: .utf8)
                #expect(
                    audit.contains(
                        #""keyPairId":"\#(id)","organization":"acme","replica":"\#(ServerSettings.defaultInstanceId)","result":"pending""#
                    ),
                    "\(audit)"
                )
                #expect(
                    audit.contains(
                        #""keyPairId":"\#(id)","organization":"acme","replica":"\#(ServerSettings.defaultInstanceId)","result":"ok""#
                    )
                )
            } else {
                #expect(result.stderr.contains("audit record could not be written"), "\(result.stderr)")
                let list = try ProcessRunner.run(ProcessRunner.keybroker, ["keys", "list", "--org", "acme"], in: directory.url)
                #expect(list.stdoutText.contains("has no key pairs"), "no pair was stored: \(list.stdoutText)")
            }
        }
    }

    @Test("a candidate file with values JSON cannot hold is refused with a clear error, not a crash")
    func candidateWithoutJSONForm() throws {
        let directory = try TemporaryDirectory()
        try directory.write("config/keybroker.yaml", Fixtures.config().replacingOccurrences(of: "path: data/", with: "path: ../data/"))
        let candidate = try directory.write("c.yaml", "type: none\nwhen: 2026-12-02\nratio: .nan\n")
        let result = try ProcessRunner.run(
            ProcessRunner.keybroker,
            ["test", "--org", "acme", "--candidate", candidate, "--server", "http://127.0.0.1:9"],
            in: directory.url,
            environment: ["KEYBROKER_TOKEN": "x", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? ""]
        )
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("have no JSON form"), "\(result.stderr)")
    }
}
