import Foundation
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerServer
import NIOCore
import NIOHTTP1
import Testing

@testable import KeyBrokerTestSupport

/// Tests that measure latency, or wait for a second process, under load they make
/// themselves. `scripts/test` runs them after the parallel suite, one at a time, so that the
/// rest of the suite does not starve them of the machine's two cores.
@Suite("Under load: probes and crashes (run alone)", .serialized)
struct LoadSensitiveTests {
    @Test("kill -9 in a burst of generations: every stored pair has its audit line")
    func killNineKeepsAuditComplete() async throws {
        let directory = try TemporaryDirectory()
        let organizations = (0..<16).map { "org-\($0)" }
        let body =
            ServerFixture.inConfigFolder(ServerFixture.configBody(organizations: "{}"))
            + "server: { listen: 127.0.0.1:0 }\nscheduler: { enabled: false }\n"
        try directory.write("config/keybroker.yaml", ServerFixture.yaml(tokens: ServerFixture.fixedTokens, body: body))
        let server = try ServerProcess(directory: directory.url)
        let answered = Locked(0)
        let burst = Task {
            await withTaskGroup(of: Void.self) { group in
                for org in organizations {
                    group.addTask {
                        let answer = try? await server.request(
                            .POST,
                            "/v1/orgs/\(org)/keypairs",
                            token: ServerFixture.fixedTokens["admin"],
                            timeout: .seconds(5)
                        )
                        if answer?.status == 201 {
                            answered.update { $0 += 1 }
                        }
                    }
                }
            }
        }
        try await waitFor { answered.value >= 4 }
        kill(server.process.processIdentifier, SIGKILL)
        await burst.value
        let store = try SQLiteKeyPairStore(url: directory.url.appendingPathComponent("data/keybroker.sqlite"), createIfMissing: false)
        let lines = try String(contentsOfFile: directory.path("audit.log"), encoding: .utf8)
        var stored = 0
        for org in organizations {
            for pair in try await store.history(for: Fixtures.org(org), limit: 10, offset: 0) {
                stored += 1
                #expect(lines.contains(pair.record.id.uuidString.lowercased()), "pair \(pair.record.id) of \(org) has an audit line")
            }
        }
        #expect(stored >= answered.value, "every answered generation was kept")
    }

    @Test("probes answer while keys are generated for many organizations at once (generation runs off the cooperative pool)")
    func probesUnderGenerationLoad() async throws {
        let directory = try TemporaryDirectory()
        let body =
            ServerFixture.inConfigFolder(ServerFixture.configBody(organizations: "{}"))
            .replacingOccurrences(of: "keyPairSpec: RSA_2048", with: "keyPairSpec: RSA_3072")
            + "server: { listen: 127.0.0.1:0 }\nscheduler: { enabled: false }\n"
        try directory.write("config/keybroker.yaml", ServerFixture.yaml(tokens: ServerFixture.fixedTokens, body: body))
        let server = try ServerProcess(directory: directory.url)
        let done = Locked(false)
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<24 {
                    group.addTask {
                        _ = try? await server.request(.POST, "/v1/orgs/org-\(index)/keypairs", token: ServerFixture.fixedTokens["admin"])
                    }
                }
            }
            done.update { $0 = true }
        }
        var slowest = Duration.zero
        var probes = 0
        let clock = ContinuousClock()
        while !done.value {
            let start = clock.now
            #expect(try await server.request(.GET, "/livez").status == 200)
            slowest = max(slowest, clock.now - start)
            probes += 1
            try await Task.sleep(for: .milliseconds(20))
        }
        await load.value
        #expect(probes >= 5, "the probes ran during the load")
        // Before generation moved off the cooperative pool, /livez waited seconds behind RSA work.
        #expect(slowest < .seconds(1), "slowest /livez \(slowest)")
        #expect(server.stop() == 0)
    }
}
