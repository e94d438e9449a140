import Foundation
import KeyBroker
import NIOHTTP1
import Testing

@testable import AWSKMSKeystore
@testable import KeyBrokerTestSupport

/// Invariant 8 for a backend's answers: a KMS-compatible endpoint that answers in any
/// malformed way (the fault proxy, in front of moto with signatures checked) gives a typed
/// error with a code an operator can read — never a trap, never a code with the protocol's
/// `prefix#` or `:suffix` still on it.
@Suite(
    "No input crashes the process: malformed KMS answers",
    .serialized,
    .enabled(if: KMSTestServer.available(.motoWithAuth), KMSTestServer.skipMessage)
)
struct KMSMalformedAnswerTests {
    /// The malformed answers of the fault table.
    static let expectations = KMSFault.table.filter { KMSTestServer.malformedAnswers.contains($0.mode) }

    @Test("every malformed answer × health, generate and decrypt: a typed error, the expected code and retry decision")
    func malformedAnswers() async throws {
        #expect(Set(Self.expectations.map(\.mode)) == Set(KMSTestServer.malformedAnswers), "the table covers every malformed answer")
        let server = try await offPool { try KMSTestServer(.motoWithAuth) }
        let proxy = try server.proxyEndpoint()
        let directory = try TemporaryDirectory()
        let keystore = try SharedKMS.keystore(
            server.keystoreYAML(
                generation: "local",
                endpoint: proxy,
                // Each call's own classification is under test, not the breaker's fast failures.
                extra:
                    ", totalTimeout: 5s, retries: { maxAttempts: 3, baseDelay: 1ms, maxDelay: 5ms }, circuitBreaker: { failureThreshold: 1000 }"
            ),
            in: directory
        )
        let context = EncryptionContext.organization(Fixtures.org("acme"))
        let existing = try await keystore.generateKeyPair(.rsa2048, context: context)

        for expected in Self.expectations {
            try server.setMode(expected.mode)
            defer { try? server.setMode("pass") }
            let calls: [(operation: String, run: @Sendable () async -> KeystoreError?)] = [
                ("DescribeKey", { await keystore.checkHealth().error }),
                (
                    "Encrypt",
                    {
                        do throws(KeystoreError) {
                            _ = try await keystore.generateKeyPair(.rsa2048, context: context)
                            return nil
                        } catch { return error }
                    }
                ),
                (
                    "Decrypt",
                    {
                        do throws(KeystoreError) {
                            _ = try await keystore.decryptPrivateKey(existing.wrapped, context: context)
                            return nil
                        } catch { return error }
                    }
                ),
            ]
            for call in calls {
                let before = try server.proxyCounts()[call.operation] ?? 0
                let error = await call.run()
                let attempts = (try server.proxyCounts()[call.operation] ?? 0) - before
                let label = "\(expected.mode) on \(call.operation)"
                if expected.healthy, call.operation == "DescribeKey" {
                    #expect(error == nil, "\(label): DescribeKey has no base64 field")
                    continue
                }
                guard let error else {
                    Issue.record("\(label): succeeded")
                    continue
                }
                #expect(error.backendCode == expected.code, "\(label): \(error)")
                #expect(error.kind == expected.kind, "\(label): \(error)")
                #expect((attempts > 1) == expected.retried, "\(label): \(attempts) attempts")
                #expect(error.backendCode.map { !$0.contains("#") && !$0.contains(":") } ?? true, "\(label)")
                #expect((error.backendMessage ?? "").count <= 1024, "\(label): the backend's message is bounded")
                #expect(error.message.contains("KMS \(call.operation)") || error.backendCode == nil, "\(label): names the operation")
            }
        }
        // And KMS answering normally again works at once.
        try server.setMode("pass")
        #expect(await keystore.checkHealth().isHealthy)
        #expect(try await keystore.decryptPrivateKey(existing.wrapped, context: context).publicKeyDER == existing.publicKeyDER)
    }

    @Test("keybroker serve whose KMS answers '#' from the start: the health loop survives, readiness degrades, probes answer")
    func serverSurvivesHashType() async throws {
        let server = try await offPool { try KMSTestServer(.motoWithAuth) }
        let proxy = try server.proxyEndpoint()
        try server.setMode("type:#")
        let directory = try TemporaryDirectory()
        let kms = server.keystoreYAML(generation: "local", endpoint: proxy, extra: ", retries: { maxAttempts: 1 }")
        let body =
            ServerFixture.inConfigFolder(
                ServerFixture.configBody(organizations: "{ acme: { keystore: kms } }", extraKeystores: "  kms: \(kms)")
            )
            + "server: { listen: 127.0.0.1:0, healthCheckInterval: 1s }\n"
        try directory.write("config/keybroker.yaml", ServerFixture.yaml(tokens: ServerFixture.fixedTokens, body: body))
        let process = try ServerProcess(directory: directory.url)
        try await waitFor { (try? server.proxyCounts()["DescribeKey"] ?? 0) ?? 0 >= 2 }
        #expect(process.process.isRunning, "\(process.log)")
        #expect(try await process.request(.GET, "/livez").status == 200)
        let ready = try await process.request(.GET, "/readyz?verbose")
        #expect(ready.status == 200)
        #expect(String(decoding: ready.body, as: UTF8.self).contains(#""backendCode":"HTTP400""#))
        #expect(process.stop() == 0)
    }

    @Test("a new pair is verified before it is stored: the key KMS names must be the configured one, and the pair must decrypt again")
    func newPairsAreVerified() async throws {
        // A server of its own: faults injected into the shared one would reach other suites' calls.
        let server = try await offPool { try KMSTestServer(.motoWithAuth) }
        let proxy = try server.proxyEndpoint()
        let directory = try TemporaryDirectory()
        let keystore = try SharedKMS.keystore(server.keystoreYAML(generation: "local", endpoint: proxy), in: directory)
        let context = EncryptionContext.organization(Fixtures.org("acme"))
        let foreign = "arn:aws:kms:\(server.info.region):999999999999:key/11111111-2222-3333-4444-555555555555"
        for (action, expected) in [
            ("Encrypt=rewrite-keyid:\(foreign)", "reported key '\(foreign)', which is not a key of account \(server.info.account)"),
            ("Encrypt=rewrite-keyid:\(server.info.aliasArn)", "which is not a key of account"),
            ("Encrypt=corrupt-ciphertext", "the new pair did not decrypt again through KMS, so it was not stored"),
        ] {
            try server.injectFaults([action])
            let error = await #expect(throws: KeystoreError.self, "\(action)") {
                try await keystore.generateKeyPair(.rsa2048, context: context)
            }
            #expect(error?.message.contains(expected) == true, "\(action): \(error?.message ?? "")")
        }
        try server.injectFaults([])
        _ = try await keystore.generateKeyPair(.rsa2048, context: context)
    }

    @Test("the error type parser: prefix#Code:suffix, #, :x and junk, in the body and the header")
    func errorCodeParser() {
        let cases: [(String, String?)] = [
            ("AccessDeniedException", "AccessDeniedException"),
            ("com.amazonaws.kms#NotFoundException", "NotFoundException"),
            ("com.amazon.coral.service#ThrottlingException:http://internal.amazon.com/coral/", "ThrottlingException"),
            ("ThrottlingException:http://internal", "ThrottlingException"),
            ("#", nil), ("#Foo", "Foo"), (":x", nil), ("", nil), ("   ", nil), ("a#b#C", "C"), ("Bad Code", nil),
            (String(repeating: "A", count: 200), nil), ("Code\u{0}", nil),
        ]
        for (raw, expected) in cases {
            #expect(KMSClient.errorCode(raw) == expected, "'\(raw)'")
            let fromBody = KMSClient.parseError(
                status: 400,
                body: Data(#"{"__type": \#(String(data: try! JSONEncoder().encode(raw), encoding: .utf8)!)}"#.utf8),
                headerType: nil,
                attempts: 1
            )
            #expect(fromBody.code == expected ?? "HTTP400", "body '\(raw)'")
            let fromHeader = KMSClient.parseError(status: 400, body: Data(), headerType: raw, attempts: 1)
            #expect(fromHeader.code == expected ?? "HTTP400", "header '\(raw)'")
        }
    }
}
