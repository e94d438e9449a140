import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KeyBroker
import KeyBrokerServer
import NIOCore
import NIOHTTP1
import Testing
import Yams

@testable import KeyBrokerTestSupport

/// `keybroker serve` for real, over a socket: the built executable, a real configuration.
@Suite("keybroker serve over a socket")
struct ServerProcessTests {
    @Test("serve on a free loopback port: readyz, change key now, unwrap, reload on SIGHUP, clean exit on SIGTERM")
    func serveEndToEnd() async throws {
        let directory = try TemporaryDirectory()
        var tokens: [String: String] = [:]
        for scope in ServerFixture.tokenScopes { tokens[scope.name] = TokenAuthenticator.newToken().token }
        let body =
            ServerFixture.inConfigFolder(ServerFixture.configBody())
            + "server: { listen: 127.0.0.1:0 }\n"
        try directory.write("config/keybroker.yaml", ServerFixture.yaml(tokens: tokens, body: body))
        let server = try ServerProcess(directory: directory.url)

        let ready = try await server.request(.GET, "/readyz")
        #expect(ready.status == 200)
        #expect(String(decoding: ready.body, as: UTF8.self) == #"{"status":"ok"}"#)

        // The scheduler gives the configured organizations their first pair at start.
        var first = try await server.request(.GET, "/v1/orgs/acme/public-key", token: tokens["acme-recorder"])
        for _ in 0..<100 where first.status == 404 {
            try await Task.sleep(for: .milliseconds(100))
            first = try await server.request(.GET, "/v1/orgs/acme/public-key", token: tokens["acme-recorder"])
        }
        #expect(first.status == 200)
        let initial = try APIJSON.decoder.decode(PublicKeyView.self, from: first.body)
        #expect(initial.keyPair.reason == "initial")

        let rotated = try await server.request(.POST, "/v1/orgs/acme/keypairs", token: tokens["acme-admin"])
        #expect(rotated.status == 201)
        let current = try await server.request(.GET, "/v1/orgs/acme/public-key", token: tokens["acme-recorder"])
        let view = try APIJSON.decoder.decode(PublicKeyView.self, from: current.body)
        #expect(view.keyPair.id != initial.keyPair.id)

        for pair in [initial, view] {
            let dataKey = Fixtures.dataKey()
            let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: Data(base64Encoded: pair.publicKeyDER)!)
            let unwrap = try await server.request(
                .POST,
                "/v1/orgs/acme/unwrap",
                token: tokens["acme-recorder"],
                json: ["keyPairId": pair.keyPair.id, "wrappedKey": wrapped.base64EncodedString()]
            )
            #expect(unwrap.status == 200)
            #expect(try APIJSON.decoder.decode(UnwrapResponse.self, from: unwrap.body).dataKey == dataKey.base64EncodedString())
        }

        // SIGHUP with a broken file keeps the old configuration and says why.
        let path = directory.path("config/keybroker.yaml")
        let good = try String(contentsOfFile: path, encoding: .utf8)
        try (good + "bogus: true\n").write(toFile: path, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        try await waitFor { server.log.contains("reload refused; the previous configuration stays in force") }
        #expect(server.log.contains("unknown key 'bogus'"))
        #expect(try await server.request(.GET, "/readyz").status == 200)
        // A good file is taken.
        try good.replacingOccurrences(of: "acme: { rotation: weekly }", with: "acme: { rotation: daily }")
            .write(toFile: path, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        try await waitFor { server.log.contains("configuration reloaded") }
        let organization = try await server.request(.GET, "/v1/orgs/acme", token: tokens["viewer"])
        #expect(try APIJSON.decoder.decode(OrganizationView.self, from: organization.body).rotation == "daily")

        // The CLI in remote mode talks to the running server.
        let url = "http://127.0.0.1:\(server.port)"
        var environment = ProcessInfo.processInfo.environment
        environment["KEYBROKER_TOKEN"] = tokens["admin"]
        let status = try ProcessRunner.run(
            ProcessRunner.keybroker,
            ["status", "--server", url],
            in: directory.url,
            environment: environment
        )
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdoutText.contains("with a key pair"), "\(status.stdoutText)")
        let orgs = try ProcessRunner.run(ProcessRunner.keybroker, ["orgs", "--server", url], in: directory.url, environment: environment)
        #expect(orgs.status == 0, "\(orgs.stderr)")
        #expect(orgs.stdoutText.contains("acme          operator  local     daily"), "\(orgs.stdoutText)")
        let list = try ProcessRunner.run(
            ProcessRunner.keybroker,
            ["keys", "list", "--org", "acme", "--server", url, "--json"],
            in: directory.url,
            environment: environment
        )
        let pairs = try APIJSON.decoder.decode([KeyPairView].self, from: list.stdout)
        #expect(pairs.map(\.id) == [view.keyPair.id, initial.keyPair.id])
        try directory.write("candidate.yaml", "type: none\nkeyPairSpec: RSA_2048\n")
        let test = try ProcessRunner.run(
            ProcessRunner.keybroker,
            ["test", "--org", "acme", "--server", url, "--candidate", "candidate.yaml"],
            in: directory.url,
            environment: environment
        )
        #expect(test.status == 0, "\(test.stderr)")
        #expect(test.stdoutText.contains("PASSED"))
        environment["KEYBROKER_TOKEN"] = tokens["acme-recorder"]
        let denied = try ProcessRunner.run(
            ProcessRunner.keybroker,
            ["keys", "generate", "--org", "acme", "--server", url],
            in: directory.url,
            environment: environment
        )
        #expect(denied.status == 1)
        #expect(
            denied.stderr.contains("server answered 403 forbidden: token 'acme-recorder' lacks encryption-key:edit for organization 'acme'")
        )
        environment["KEYBROKER_TOKEN"] = nil
        let noToken = try ProcessRunner.run(
            ProcessRunner.keybroker,
            ["status", "--server", url],
            in: directory.url,
            environment: environment
        )
        #expect(noToken.status == 2)
        #expect(noToken.stderr.contains("KEYBROKER_TOKEN"))

        #expect(server.stop() == 0, "SIGTERM ends the server cleanly: \(server.log.suffix(500))")
        #expect(!server.log.contains(tokens["admin"]!))
    }

}

/// A keystore outage for real: the KMS endpoint KeyBroker uses goes away mid-test and comes
/// back, and KeyBroker recovers without a restart.
@Suite("Keystore outage against a real KMS", .enabled(if: KMSTestServer.available(.moto), KMSTestServer.skipMessage))
struct KeystoreOutageTests {
    @Test("unwrap answers 503 with the backend's error while KMS is down, the public key is still served, and recovery is automatic")
    func outage() async throws {
        let kms = try await offPool { try KMSTestServer(.moto) }
        let proxy = try kms.proxyEndpoint()
        let keystore = kms.keystoreYAML(
            generation: "local",
            endpoint: proxy,
            extra: ", totalTimeout: 2s, requestTimeout: 1s, retries: { maxAttempts: 2, baseDelay: 10ms, maxDelay: 50ms }"
        )
        let body =
            ServerFixture.configBody(organizations: "{ acme: { keystore: kms } }", extraKeystores: "  kms: \(keystore)")
            + "privateKeyCache: { maxAge: 0s }\n"
        let fixture = try await ServerFixture.make(body: body)
        // A moto just started answers its first calls slowly (it loads its modules), and the
        // keystore's totalTimeout here is short (2 s, for the outage below): a few tries.
        var made: KeyPairRecord?
        for _ in 0..<10 where made == nil {
            made = try? await fixture.server.runtime.broker.generateKeyPair(
                for: Fixtures.org("acme"),
                reason: .initial,
                requestedBy: "test"
            )
            if made == nil { try await Task.sleep(for: .seconds(1)) }
        }
        let pair = try #require(made, "moto never answered the first generation")
        let dataKey = Fixtures.dataKey()
        let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: pair.publicKeyDER)
        let request = try ByteBuffer(json: ["keyPairId": pair.id.uuidString, "wrappedKey": wrapped.base64EncodedString()])

        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/unwrap", method: .post, headers: fixture.headers("acme-recorder"), body: request) {
                #expect($0.status == .ok)
            }
        }
        try kms.command("proxy_down")
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/unwrap", method: .post, headers: fixture.headers("acme-recorder"), body: request) {
                response in
                #expect(response.status == .serviceUnavailable)
                let error = try response.json(ErrorBody.self).error
                #expect(error.code == "keystore_unavailable")
                #expect(error.backend?.type == "ConnectionFailed")
            }
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                #expect($0.status == .ok, "encryption goes on during the outage")
            }
            try await client.execute(uri: "/readyz", method: .get) {
                #expect($0.status == .ok)
                #expect($0.text == #"{"status":"degraded"}"#)
            }
            try await client.execute(uri: "/v1/status", method: .get, headers: fixture.headers("viewer")) { response in
                let status = try response.json(StatusView.self)
                let kmsStatus = try #require(status.keystores.first { $0.name == "kms" })
                #expect(!kmsStatus.healthy)
                #expect(kmsStatus.error?.backendCode == "ConnectionFailed")
            }
        }
        _ = try kms.command("proxy_up")
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/unwrap", method: .post, headers: fixture.headers("acme-recorder"), body: request) {
                response in
                #expect(response.status == .ok)
                let unwrapped = try response.json(UnwrapResponse.self)
                #expect(unwrapped.dataKey == dataKey.base64EncodedString())
            }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.text == #"{"status":"ok"}"#) }
        }
    }
}

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test("docs/openapi.yaml describes exactly the routes the server serves")
    func routesMatchDocument() async throws {
        let fixture = try await ServerFixture.make()
        let served = Set(fixture.server.router().routes.map { "\($0.method.rawValue.uppercased()) \($0.path)" })
        let text = try String(contentsOf: packageRoot.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var documented = Set<String>()
        for (path, value) in paths {
            for method in (value as? [String: Any] ?? [:]).keys where ["get", "head", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(served == documented)
        #expect(served.count == 21)
    }
}
