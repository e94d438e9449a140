import Foundation
import KeyBrokerServer
import NIOHTTP1
import Testing

@testable import KeyBrokerTestSupport

/// The API contract under property-based fuzzing: schemathesis (`.build-venv/schemathesis`,
/// installed by `scripts/install-test-tools`) generates requests from `docs/openapi.yaml`,
/// valid and invalid, and sends them to the built `keybroker serve`; every answer must be
/// one the document names for that operation, and every valid request must be served.
/// It sends over a thousand requests, so it runs with the load-sensitive suites, alone.
@Suite("API fuzz: schemathesis against docs/openapi.yaml (LoadSensitive)", .enabled(if: APIFuzz.available, APIFuzz.skipMessage))
struct APIFuzzLoadSensitiveTests {
    @Test("every answer conforms to docs/openapi.yaml, every valid request is served, every invalid one refused")
    func schemathesisFindsNothing() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("config/keybroker.yaml", ServerFixture.yaml(tokens: ServerFixture.fixedTokens, body: APIFuzz.configBody))
        let server = try ServerProcess(directory: directory.url)
        defer { _ = server.stop() }
        // Ready once the store was checked.
        var ready = try await server.request(.GET, "/readyz").status
        for _ in 0..<300 where ready != 200 {
            try await Task.sleep(for: .milliseconds(100))
            ready = try await server.request(.GET, "/readyz").status
        }
        try #require(ready == 200, "the server became ready: \(server.log.suffix(2000))")

        let run = try await offPool { try APIFuzz.run(port: server.port, token: ServerFixture.fixedTokens["admin"] ?? "", in: directory) }
        #expect(!run.timedOut, "schemathesis did not finish within \(APIFuzz.timeout) s; its output so far:\n\(run.report)")
        #expect(run.status == 0, "schemathesis found failures (each with a curl line that reproduces it):\n\(run.report)")
        #expect(run.output.contains("Seed: \(APIFuzz.seed)"), "the run used the fixed seed:\n\(run.report)")
        #expect(server.stop() == 0, "the server survived the fuzz: \(server.log.suffix(2000))")
    }
}

/// How the fuzz runs: the server's configuration, the schemathesis command, its bounds.
enum APIFuzz {
    static let schemathesis = packageRoot.appendingPathComponent(".build-venv/schemathesis/bin/schemathesis").path
    static let support = packageRoot.appendingPathComponent("Tests/Support/apifuzz")

    /// Whether schemathesis is installed. In CI (`CI=true`) always true, so that a missing
    /// install fails the run instead of skipping silently.
    static var available: Bool {
        ProcessInfo.processInfo.environment["CI"] == "true" || FileManager.default.isExecutableFile(atPath: schemathesis)
    }

    static let skipMessage: Comment = "schemathesis not installed: run scripts/install-test-tools (.build-venv/schemathesis)"

    /// Fixed, so that a failure in CI reproduces with the same command; the phases still
    /// explore (examples, boundary and type-violation coverage, then random fuzzing).
    static let seed = 20_260_413
    /// Cases per operation and phase: about 1,250 requests in all, 35-45 s on 2 cores
    /// against a debug build.
    static let maxExamples = 40
    /// The hard limit on the whole run, in seconds.
    static let timeout: TimeInterval = 300

    /// The server fuzzed: local-file keystores and SQLite as in production, a `none` keystore,
    /// two organizations the operator pins (acme, beta) and every other id free for tenants,
    /// a tenant template whose KMS endpoint is a closed port on 127.0.0.1 (so saves of a
    /// tenant's own key are tested and fail, 422, without leaving the machine), and a
    /// generation cap high enough that the fuzz's own requests do not meet it (429 is
    /// documented for those operations all the same).
    static var configBody: String {
        ServerFixture.inConfigFolder(ServerFixture.configBody())
            + """
            tenantKeystores:
              aws-kms-symmetric:
                region: eu-west-1
                endpoint: http://127.0.0.1:9
                accessKeyId: AKIAIOSFODNN7EXAMPLE
                secretAccessKey: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
                totalTimeout: 1s
                requestTimeout: 500ms
                retries: { maxAttempts: 1 }
            server:
              listen: 127.0.0.1:0
              limits: { generationsPerOrganizationPerMinute: 1000 }

            """
    }

    struct Run {
        let status: Int32
        let timedOut: Bool
        let output: String

        /// The part of the output worth reading: the failures and the summary.
        var report: String {
            guard let start = output.range(of: "FAILURES =") ?? output.range(of: "ERRORS =") else { return String(output.suffix(6000)) }
            return String(output[start.lowerBound...].prefix(30_000))
        }
    }

    /// Runs schemathesis against the server on `port` (127.0.0.1 only) with every check.
    static func run(port: Int, token: String, in directory: TemporaryDirectory) throws -> Run {
        let url = "http://127.0.0.1:\(port)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: schemathesis)
        process.arguments = [
            "--config-file", support.appendingPathComponent("schemathesis.toml").path, "--no-color",
            "run", packageRoot.appendingPathComponent("docs/openapi.yaml").path,
            "--url", url,
            "--header", "Authorization: Bearer \(token)",
            // Every check schemathesis has. The stateful ones (use_after_free,
            // ensure_resource_availability) find no links in the document and pass trivially;
            // none is excluded.
            "--checks", "all",
            "--max-examples", String(maxExamples),
            "--seed", String(seed),
            "--workers", "2",
            "--request-timeout", "30",
            // The report names the requests as sent; the token is this test's own.
            "--output-sanitize", "false",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = support.path
        environment["SCHEMATHESIS_HOOKS"] = "keybroker_fuzz_hooks"
        // No __pycache__ beside the hooks in the source tree.
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["KEYBROKER_FUZZ_URL"] = url
        environment["KEYBROKER_FUZZ_TOKEN"] = token
        process.environment = environment
        // Anything schemathesis or Hypothesis writes goes to the temporary directory.
        process.currentDirectoryURL = directory.url
        let outputPath = directory.path("schemathesis.out")
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        let timedOut = process.isRunning
        if timedOut {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let text = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: outputPath))) ?? Data(), as: UTF8.self)
        return Run(status: process.terminationStatus, timedOut: timedOut, output: text)
    }
}
