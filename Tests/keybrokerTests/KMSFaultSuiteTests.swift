import AsyncHTTPClient
import Foundation
import KeyBroker
import KeyBrokerServer
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import KeyBrokerTestSupport

/// The built `keybroker serve` in front of the fault proxy (a fake, in front of moto with
/// signatures checked): every way a KMS-compatible endpoint can misbehave, slowly or
/// strangely, against unwrap, change key now, the keystore test and the health loop.
@Suite(
    "A KMS that misbehaves: the fault suite (LoadSensitive: run alone)",
    .serialized,
    .enabled(if: KMSTestServer.available(.motoWithAuth), KMSTestServer.skipMessage)
)
struct LoadSensitiveKMSFaultTests {
    /// `totalTimeout` of the KMS keystore in these tests, and what every answer must come within.
    static let totalTimeout: Duration = .seconds(3)
    static let answerBound: Duration = totalTimeout + .seconds(1)

    @Test(
        "every fault × unwrap, change key now, test and health: the process lives, answers within totalTimeout + 1 s, kind, code and retry as the table says; then recovery without a restart"
    )
    func faultTable() async throws {
        #expect(
            Set(KMSFault.table.map(\.mode))
                == Set(KMSTestServer.malformedAnswers + KMSTestServer.slowAnswers + ["refused", "throttle", "500"]),
            "the table covers every mode of the proxy"
        )
        // The breaker would turn the calls after the first few into fast failures; here each
        // call's own classification is under test (the breaker's test is below).
        let fixture = try await FaultServer(keystoreExtra: Self.shortTimeouts + ", circuitBreaker: { failureThreshold: 1000 }")
        defer { fixture.stop() }
        let (kms, server) = (fixture.kms, fixture.server)
        let admin = ServerFixture.fixedTokens["admin"]
        let pair = try await Self.publicKey(server, token: admin)
        let dataKey = Fixtures.dataKey()
        let unwrap = try Self.unwrapBody(pair, dataKey)

        for fault in KMSFault.table {
            if fault.mode == "refused" { try kms.command("proxy_down") } else { try kms.setMode(fault.mode) }
            // Unwrap alone first, so that the proxy's count of Decrypt calls is its own.
            let before = try kms.proxyCounts()["Decrypt"] ?? 0
            let (unwrapped, unwrapTime) = try await Self.timed {
                try await server.request(.POST, "/v1/orgs/acme/unwrap", token: admin, json: unwrap)
            }
            let attempts = (try kms.proxyCounts()["Decrypt"] ?? 0) - before
            Self.expectFailure(unwrapped, fault, "\(fault) unwrap", took: unwrapTime)
            if fault.mode != "refused" {
                #expect((attempts > 1) == fault.retried, "\(fault) unwrap: \(attempts) KMS calls")
            }

            // Change key now and the configured keystore's test, at once.
            async let generated = Self.timed { try await server.request(.POST, "/v1/orgs/acme/keypairs", token: admin) }
            async let tested = Self.timed { try await server.request(.POST, "/v1/orgs/acme/test", token: admin) }
            let (generation, generationTime) = try await generated
            Self.expectFailure(generation, fault, "\(fault) change key now", took: generationTime)
            let (test, testTime) = try await tested
            #expect(test.status == 200, "\(fault) test: \(String(decoding: test.body, as: UTF8.self))")
            #expect(testTime < Self.answerBound, "\(fault) test took \(testTime)")
            let report = try APIJSON.decoder.decode(TestReportView.self, from: test.body)
            #expect(!report.passed, "\(fault) test")
            let failed = report.steps.first { $0.outcome == "failed" }
            #expect(failed?.backendError?.backendCode == fault.code, "\(fault) test: \(failed?.detail ?? "no failed step")")
            #expect(failed?.backendError?.kind == fault.kind.description, "\(fault) test: \(failed?.detail ?? "no failed step")")

            // The health loop (interval 1 s, so its own deadline is 1 s) notices.
            let health = try await Self.waitForHealth(server, healthy: fault.healthy, code: fault.healthy ? nil : fault.code)
            #expect(health.kms?.healthy == fault.healthy, "\(fault) health: \(health)")
            if !fault.healthy {
                #expect(health.kms?.backendCode == fault.code, "\(fault) health: \(health)")
                #expect(health.status == "degraded", "\(fault): readiness degrades, it does not stay ok: \(health)")
            }
            #expect(server.process.isRunning, "\(fault): the process lives\n\(server.log)")
            #expect(try await server.request(.GET, "/livez").status == 200, "\(fault)")

            // KMS answers normally again: unwrap works with no restart (after a refused
            // connection, once the HTTP client's connection backoff lets it try again).
            if fault.mode == "refused" { Self.proxyUp(kms) } else { try kms.setMode("pass") }
            let (status, took) = try await Self.waitForUnwrap(server, body: unwrap)
            #expect(status == 200, "\(fault): unwrap recovers once KMS is healthy")
            if fault.mode == "refused" { print("fault suite: unwrap recovered \(took) after a refused endpoint listened again") }
        }

        // KMS healthy again: unwrap works, with no restart.
        try kms.setMode("pass")
        let recovered = try await server.request(.POST, "/v1/orgs/acme/unwrap", token: admin, json: unwrap)
        #expect(recovered.status == 200, "\(String(decoding: recovered.body, as: UTF8.self))")
        let answer = try APIJSON.decoder.decode(UnwrapResponse.self, from: recovered.body)
        #expect(answer.dataKey == dataKey.base64EncodedString())
        #expect(try await Self.waitForHealth(server, healthy: true).kms?.healthy == true)
        #expect(server.process.isRunning)
    }

    // MARK: helpers

    /// Brings the proxy back, trying again for a few seconds while its port is not free yet.
    static func proxyUp(_ kms: KMSTestServer) {
        for _ in 0..<50 {
            if (try? kms.command("proxy_up")) != nil { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// The short timeouts of the fault table (its bound is `totalTimeout` + 1 s).
    static let shortTimeouts =
        ", totalTimeout: \(Int(totalTimeout.seconds))s, requestTimeout: 2s, retries: { maxAttempts: 3, baseDelay: 1ms, maxDelay: 5ms }"

    /// Unwraps with `body` until one succeeds (or 10 s pass).
    /// - Returns: the last status and how long it took.
    static func waitForUnwrap(_ server: ServerProcess, body: [String: String]) async throws -> (status: Int, took: Duration) {
        let clock = ContinuousClock()
        let start = clock.now
        var status = 0
        while status != 200, clock.now - start < .seconds(10) {
            status = try await server.request(.POST, "/v1/orgs/acme/unwrap", token: ServerFixture.fixedTokens["admin"], json: body).status
            if status != 200 { try await Task.sleep(for: .milliseconds(50)) }
        }
        return (status, clock.now - start)
    }

    static func publicKey(_ server: ServerProcess, organization: String = "acme", token: String?) async throws -> PublicKeyView {
        var answer = try await server.request(.GET, "/v1/orgs/\(organization)/public-key", token: token)
        if answer.status == 404 {
            let created = try await server.request(.POST, "/v1/orgs/\(organization)/keypairs", token: token)
            try #require(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
            answer = try await server.request(.GET, "/v1/orgs/\(organization)/public-key", token: token)
        }
        try #require(answer.status == 200, "\(String(decoding: answer.body, as: UTF8.self))")
        return try APIJSON.decoder.decode(PublicKeyView.self, from: answer.body)
    }

    static func unwrapBody(_ pair: PublicKeyView, _ dataKey: Data) throws -> [String: String] {
        let der = try #require(Data(base64Encoded: pair.publicKeyDER))
        return [
            "keyPairId": pair.keyPair.id,
            "wrappedKey": try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: der).base64EncodedString(),
        ]
    }

    static func timed<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> (T, Duration) {
        let clock = ContinuousClock()
        let start = clock.now
        let value = try await body()
        return (value, clock.now - start)
    }

    static func expectFailure(_ answer: (status: Int, body: Data), _ fault: KMSFault, _ label: String, took: Duration) {
        #expect(took < answerBound, "\(label) took \(took)")
        let text = String(decoding: answer.body, as: UTF8.self)
        #expect(answer.status == fault.status, "\(label): \(text)")
        let error = try? APIJSON.decoder.decode(ErrorBody.self, from: answer.body).error
        #expect(error?.code == fault.apiCode, "\(label): \(text)")
        #expect(error?.backend?.type == fault.code, "\(label): \(text)")
    }

    struct Readiness: Sendable, CustomStringConvertible {
        let status: String
        let kms: (healthy: Bool, backendCode: String?)?
        var description: String { "\(status), kms \(kms.map { "healthy \($0.healthy), \($0.backendCode ?? "-")" } ?? "missing")" }
    }

    static func readiness(_ server: ServerProcess) async throws -> Readiness {
        let answer = try await server.request(.GET, "/readyz?verbose")
        return try parseReadiness(answer.body)
    }

    /// Readiness once the KMS keystore's health is `healthy` (with `code`, the last check's,
    /// not an earlier one's), or after 5 s.
    static func waitForHealth(_ server: ServerProcess, healthy: Bool, code: String? = nil) async throws -> Readiness {
        let clock = ContinuousClock()
        let start = clock.now
        var health = try await readiness(server)
        while health.kms?.healthy != healthy || (!healthy && health.kms?.backendCode != code), clock.now - start < .seconds(5) {
            try await Task.sleep(for: .milliseconds(100))
            health = try await readiness(server)
        }
        return health
    }

    static func parseReadiness(_ body: Data) throws -> Readiness {
        let object = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        let keystores = object["keystores"] as? [[String: Any]] ?? []
        let kms = keystores.first { $0["name"] as? String == "kms" }
        return Readiness(
            status: object["status"] as? String ?? "?",
            kms: kms.map { ($0["healthy"] as? Bool ?? false, $0["backendCode"] as? String) }
        )
    }
}

/// The retry quota, the circuit breaker and the limit on calls in flight, measured against
/// the fault proxy in front of moto.
@Suite(
    "A KMS that is down or slow: retry budget, circuit breaker, calls in flight (LoadSensitive: run alone)",
    .serialized,
    .enabled(if: KMSTestServer.available(.motoWithAuth), KMSTestServer.skipMessage)
)
struct LoadSensitiveKMSBudgetTests {
    /// Enough connections for 200 requests at once (the shared test client allows 128), and
    /// a client of their own for the probes, so that neither queues behind the other.
    static let wide = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256))
    )
    static let probes = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1)))

    @Test(
        "under throttling and under 5xx, KMS sees at most 1.2 calls per unwrap; unwrap recovers within the breaker's probe interval once KMS is back",
        arguments: ["throttle", "500"]
    )
    func retryBudget(mode: String) async throws {
        // The default timeouts, retries (4 attempts, 100 ms base) and breaker (5 failures, open 2 s).
        let fixture = try await FaultServer(keystoreExtra: "")
        defer { fixture.stop() }
        let (kms, server) = (fixture.kms, fixture.server)
        let admin = ServerFixture.fixedTokens["admin"]
        let pair = try await LoadSensitiveKMSFaultTests.publicKey(server, token: admin)
        let unwrap = try LoadSensitiveKMSFaultTests.unwrapBody(pair, Fixtures.dataKey())
        #expect(try await server.request(.POST, "/v1/orgs/acme/unwrap", token: admin, json: unwrap).status == 200)

        try kms.setMode(mode)
        let before = try kms.proxyCounts()["Decrypt"] ?? 0
        // 16 at once, then 16 one after the other, as the issue measured them.
        let burst = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<16 {
                group.addTask { (try? await server.request(.POST, "/v1/orgs/acme/unwrap", token: admin, json: unwrap).status) ?? 0 }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        var sequential: [Int] = []
        for _ in 0..<16 { sequential.append(try await server.request(.POST, "/v1/orgs/acme/unwrap", token: admin, json: unwrap).status) }
        let calls = (try kms.proxyCounts()["Decrypt"] ?? 0) - before
        print("retry budget (\(mode)): 32 unwraps cost \(calls) KMS Decrypt calls (\(String(format: "%.2f", Double(calls) / 32))×)")
        #expect((burst + sequential).allSatisfy { $0 == 503 }, "\(burst) \(sequential)")
        #expect(Double(calls) <= 1.2 * 32, "\(calls) KMS calls for 32 unwraps")

        let metrics = String(decoding: try await server.request(.GET, "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"keybroker_kms_circuit_opened_total{keystore="kms"}"#), "\(metrics)")
        #expect(metrics.contains(#"keybroker_kms_circuits_open{keystore="kms"} 1"#), "the breaker is open now")
        #expect(metrics.contains(#"keybroker_kms_circuit_rejected_total{keystore="kms"}"#))
        #expect(metrics.contains(#"keybroker_kms_retries_total{keystore="kms"}"#))

        // KMS is back: the next probe (at most openFor = 2 s away) closes the breaker.
        try kms.setMode("pass")
        let (status, recovery) = try await LoadSensitiveKMSFaultTests.waitForUnwrap(server, body: unwrap)
        print("retry budget (\(mode)): unwrap recovered \(recovery) after KMS was back (breaker openFor 2 s)")
        #expect(status == 200)
        #expect(recovery < .milliseconds(2500), "recovery within the breaker's probe interval: \(recovery)")
        let after = String(decoding: try await server.request(.GET, "/metrics").body, as: UTF8.self)
        #expect(after.contains(#"keybroker_kms_circuits_open{keystore="kms"} 0"#), "the breaker closed")
    }

    @Test(
        "200 concurrent unwraps against a KMS that trickles: bounded in flight, 503 keystore_busy beyond, flat memory, /livez within 100 ms, other keystores unaffected"
    )
    func callsInFlightAreBounded() async throws {
        let fixture = try await FaultServer(
            keystoreExtra: LoadSensitiveKMSFaultTests.shortTimeouts,
            organizations: "{ acme: { keystore: kms, rotation: never }, beta: { keystore: local, rotation: never } }"
        )
        defer { fixture.stop() }
        let (kms, server) = (fixture.kms, fixture.server)
        let admin = ServerFixture.fixedTokens["admin"]
        let acme = try LoadSensitiveKMSFaultTests.unwrapBody(
            try await LoadSensitiveKMSFaultTests.publicKey(server, token: admin),
            Fixtures.dataKey()
        )
        let beta = try LoadSensitiveKMSFaultTests.unwrapBody(
            try await LoadSensitiveKMSFaultTests.publicKey(server, organization: "beta", token: admin),
            Fixtures.dataKey()
        )
        #expect(try await server.request(.POST, "/v1/orgs/acme/unwrap", token: admin, json: acme).status == 200)
        let memoryBefore = try #require(server.residentBytes)

        try kms.setMode("trickle", operation: "Decrypt")
        defer { try? kms.setMode("pass") }
        let (wide, probes) = (Self.wide, Self.probes)
        // A load balancer keeps its probe connection; the 200 new connections of the burst
        // would otherwise be accepted ahead of the probe's first one.
        #expect(try await server.request(.GET, "/livez", client: probes).status == 200)
        let clock = ContinuousClock()
        let start = clock.now
        async let unwraps = withTaskGroup(of: (Int, String?, Duration).self) { group in
            for _ in 0..<200 {
                group.addTask {
                    let begin = clock.now
                    let answer = try? await server.request(.POST, "/v1/orgs/acme/unwrap", token: admin, json: acme, client: wide)
                    let code = answer.flatMap { try? APIJSON.decoder.decode(ErrorBody.self, from: $0.body).error.code }
                    return (answer?.status ?? 0, code, clock.now - begin)
                }
            }
            return await group.reduce(into: [(Int, String?, Duration)]()) { $0.append($1) }
        }
        // While they run: the probes, and another keystore's organization.
        var livez: [Duration] = []
        var others: [(Int, Duration)] = []
        var peakMemory = memoryBefore
        while clock.now - start < LoadSensitiveKMSFaultTests.answerBound {
            let (probe, probeTime) = try await LoadSensitiveKMSFaultTests.timed {
                try await server.request(.GET, "/livez", client: probes)
            }
            #expect(probe.status == 200)
            livez.append(probeTime)
            let (other, otherTime) = try await LoadSensitiveKMSFaultTests.timed {
                try await server.request(.POST, "/v1/orgs/beta/unwrap", token: admin, json: beta, client: probes)
            }
            others.append((other.status, otherTime))
            peakMemory = max(peakMemory, server.residentBytes ?? 0)
            try await Task.sleep(for: .milliseconds(50))
        }
        let results = await unwraps
        let busy = results.filter { $0.1 == "keystore_busy" }.count
        let unavailable = results.filter { $0.1 == "keystore_unavailable" }.count
        let slowest = results.map { $0.2 }.max() ?? .zero
        let livezWorst = livez.max() ?? .zero
        let otherWorst = others.map { $0.1 }.max() ?? .zero
        print(
            """
            calls in flight (200 unwraps, trickling KMS, maxCalls 32, maxWait 1 s): \(busy) keystore_busy, \(unavailable) keystore_unavailable, \
            slowest answer \(slowest); /livez worst \(livezWorst) of \(livez.count); another keystore's unwrap worst \(otherWorst) of \(others.count); \
            resident memory \(memoryBefore / 1_048_576) MiB before, \(peakMemory / 1_048_576) MiB peak
            """
        )
        #expect(results.allSatisfy { $0.0 == 503 }, "every unwrap of the slow keystore is refused: \(results.map { $0.0 })")
        #expect(busy >= 200 - 32, "beyond 32 in flight, keystore_busy: \(busy)")
        #expect(busy + unavailable == 200)
        #expect(slowest < LoadSensitiveKMSFaultTests.answerBound, "every unwrap answered within totalTimeout + 1 s: \(slowest)")
        // The probe sent as the 200 requests arrive waits for the event loop to read their heads
        // (150–190 ms in this debug build on two cores, which the test's own client shares);
        // every probe after the arrival must answer within 100 ms while the calls are held.
        #expect(livezWorst < .milliseconds(500), "/livez: \(livez)")
        #expect(livez.dropFirst().allSatisfy { $0 < .milliseconds(100) }, "/livez: \(livez)")
        #expect(others.allSatisfy { $0.0 == 200 }, "another keystore's organization unwraps: \(others.map { $0.0 })")
        #expect(otherWorst < .milliseconds(500), "another keystore's organization is not slowed: \(otherWorst)")
        #expect(peakMemory - memoryBefore < 64 * 1_048_576, "memory stays flat: \(memoryBefore) → \(peakMemory)")
        let metrics = String(decoding: try await server.request(.GET, "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"keybroker_kms_busy_total{keystore="kms"}"#))
    }
}

/// A moto with signatures checked, the fault proxy in front of it, and the built
/// `keybroker serve` whose `kms` keystore (`acme`'s) goes through the proxy: no private-key
/// cache, health checks every second, generation limits and the scheduler out of the way.
final class FaultServer: Sendable {
    let kms: KMSTestServer
    let server: ServerProcess
    private let directory: TemporaryDirectory

    /// - Parameter keystoreExtra: more settings of the `kms` keystore (`, key: value`).
    init(keystoreExtra: String, organizations: String = "{ acme: { keystore: kms, rotation: never } }") async throws {
        kms = try await offPool { try KMSTestServer(.motoWithAuth) }
        let keystore = kms.keystoreYAML(generation: "local", endpoint: try kms.proxyEndpoint(), extra: keystoreExtra)
        let body =
            ServerFixture.inConfigFolder(ServerFixture.configBody(organizations: organizations, extraKeystores: "  kms: \(keystore)"))
            + "privateKeyCache: { maxAge: 0s }\n"
            + "server: { listen: 127.0.0.1:0, healthCheckInterval: 1s, limits: { generationsPerOrganizationPerMinute: 1000 } }\n"
            + "scheduler: { enabled: false }\n"
        directory = try TemporaryDirectory()
        try directory.write("config/keybroker.yaml", ServerFixture.yaml(tokens: ServerFixture.fixedTokens, body: body))
        server = try ServerProcess(directory: directory.url)
    }

    /// Stops the server; until then the fixture (and its directory) must be held.
    func stop() { _ = server.stop() }
}
