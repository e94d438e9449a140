import AsyncHTTPClient
import Foundation
import KeyBroker
import KeyBrokerServer
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

@testable import KeyBrokerTestSupport

/// `keybroker serve` terminating TLS itself, with certificates the tests make
/// (swift-certificates): the handshake, client certificates as scoped identities, refusals
/// (another CA, an expired certificate, TLS below 1.2), a certificate renewed by SIGHUP while
/// a connection stays open (through `openssl s_client`), and the CLI over https.
@Suite("TLS and client certificates (LoadSensitive: server processes, reloads awaited)")
struct LoadSensitiveTLSTests {
    /// A server with TLS from `pki`: a server certificate, client certificates from the same
    /// CA as identities (`recorder` by subject, scoped to acme; `ops` by public key, every
    /// organization, view only), and the fixture's tokens.
    struct TLSServer {
        let directory: TemporaryDirectory
        let server: ServerProcess
        let tokens: [String: String]
        let recorder: TestPKI.Issued
        let ops: TestPKI.Issued

        init(pki: TestPKI) throws {
            directory = try TemporaryDirectory()
            let serverCertificate = try pki.server()
            recorder = try pki.client(commonName: "recorder")
            ops = try pki.client(commonName: "ops", organization: "Platform")
            try Self.install(serverCertificate, ca: pki, in: directory)
            var tokens: [String: String] = [:]
            for scope in ServerFixture.tokenScopes { tokens[scope.name] = TokenAuthenticator.newToken().token }
            self.tokens = tokens
            let body =
                ServerFixture.inConfigFolder(ServerFixture.configBody())
                    + """
                    server:
                      listen: 127.0.0.1:0
                      tls: { certificate: tls/server.pem, privateKey: tls/server.key, clientCA: tls/clients-ca.pem }

                    """
            let clients = """
                  clients:
                    - { name: recorder-cert, subject: "\(recorder.subject)", permissions: [recording:encrypt, recording:decrypt], orgs: [acme] }
                    - { name: ops-cert, spkiSha256: \(ops.spkiSha256), permissions: [encryption-key:view], orgs: ["*"] }

                """
            try directory.write("config/keybroker.yaml", ServerFixture.yaml(tokens: tokens, body: body) + clients)
            server = try ServerProcess(directory: directory.url)
        }

        /// Writes the server's certificate and key (0600) and the client CA under config/tls.
        static func install(_ certificate: TestPKI.Issued, ca: TestPKI, in directory: TemporaryDirectory) throws {
            try directory.write("config/tls/server.pem.new", certificate.certificatePEM)
            let key = try directory.write("config/tls/server.key.new", certificate.privateKeyPEM)
            #expect(chmod(key, 0o600) == 0)
            try directory.write("config/tls/clients-ca.pem", ca.certificatePEM)
            // Renamed into place, as a certificate manager does: a reload never sees half a file.
            for name in ["server.pem", "server.key"] {
                #expect(rename(directory.url.path + "/config/tls/\(name).new", directory.url.path + "/config/tls/\(name)") == 0)
            }
        }

        /// Sends SIGHUP and waits (up to 10 s) until the server says it took the new TLS files.
        func reload() async throws -> Bool {
            let before = server.log.components(separatedBy: "TLS certificate reloaded").count
            kill(server.process.processIdentifier, SIGHUP)
            for _ in 0..<100 {
                try await Task.sleep(for: .milliseconds(100))
                if server.log.components(separatedBy: "TLS certificate reloaded").count > before { return true }
            }
            return false
        }

        var url: String { "https://127.0.0.1:\(server.port)" }
        var file: (String) -> String { { directory.url.appendingPathComponent("config/tls/\($0)").path } }
    }

    /// An HTTPS client trusting `ca`, presenting `certificate` when given.
    static func client(
        trusting ca: TestPKI,
        certificate: TestPKI.Issued? = nil,
        maximumVersion: TLSVersion? = nil
    ) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.certificatePEM.utf8)))
        if let maximumVersion {
            tls.minimumTLSVersion = .tlsv1
            tls.maximumTLSVersion = maximumVersion
        }
        if let certificate {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificatePEM.utf8)).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem))
        }
        return HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(tlsConfiguration: tls, timeout: .init(connect: .seconds(5), read: .seconds(20)))
        )
    }

    /// `GET path`: the status, or `nil` when the connection or handshake failed (with the error).
    static func get(
        _ client: HTTPClient,
        _ url: String,
        token: String? = nil
    ) async -> (status: Int?, body: String, error: String?) {
        var request = HTTPClientRequest(url: url)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        do {
            let response = try await client.execute(request, timeout: .seconds(20))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: body), nil)
        } catch {
            return (nil, "", String(describing: error))
        }
    }

    /// Waits for the scheduler to give acme and beta their first pairs.
    static func waitForFirstPair(_ client: HTTPClient, _ fixture: TLSServer) async throws {
        for organization in ["acme", "beta"] {
            var status: Int?
            for _ in 0..<100 where status != 200 {
                status = await get(client, fixture.url + "/v1/orgs/\(organization)/public-key", token: fixture.tokens["admin"]).status
                if status != 200 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(status == 200, "\(organization) never got its first pair")
        }
    }

    @Test(
        "a client trusting the CA completes the handshake; probes need no client certificate; tokens work over TLS; plain HTTP is not served"
    )
    func handshake() async throws {
        let pki = try TestPKI()
        let fixture = try TLSServer(pki: pki)
        let client = try Self.client(trusting: pki)
        defer { client.shutdown { _ in } }

        let ready = await Self.get(client, fixture.url + "/readyz")
        #expect(ready.status == 200, "\(ready.error ?? "")")
        #expect(ready.body == #"{"status":"ok"}"#)
        try await Self.waitForFirstPair(client, fixture)
        let key = await Self.get(client, fixture.url + "/v1/orgs/acme/public-key", token: fixture.tokens["acme-recorder"])
        #expect(key.status == 200)
        // No credential at all: a TLS connection without a client certificate is anonymous.
        let anonymous = await Self.get(client, fixture.url + "/v1/orgs/acme/public-key")
        #expect(anonymous.status == 401)

        let plain = try? await fixture.server.request(.GET, "/readyz", timeout: .seconds(5))
        #expect(plain == nil || plain?.status == 400, "plain HTTP on the TLS port must not be answered as HTTP")
        #expect(fixture.server.log.contains("listening on https://127.0.0.1:"))
        #expect(fixture.server.stop() == 0)
    }

    @Test(
        "refused: a client that trusts another CA, a client limited to TLS 1.1, a client certificate from another CA, an expired client certificate"
    )
    func refusals() async throws {
        let pki = try TestPKI()
        let fixture = try TLSServer(pki: pki)
        let stranger = try TestPKI(name: "someone else's CA")

        let wrongCA = try Self.client(trusting: stranger)
        defer { wrongCA.shutdown { _ in } }
        let untrusted = await Self.get(wrongCA, fixture.url + "/readyz")
        #expect(untrusted.status == nil)
        #expect(untrusted.error?.contains("CERTIFICATE_VERIFY_FAILED") == true, "\(untrusted.error ?? "")")

        let old = try Self.client(trusting: pki, maximumVersion: .tlsv11)
        defer { old.shutdown { _ in } }
        let tls11 = await Self.get(old, fixture.url + "/readyz")
        #expect(tls11.status == nil, "a TLS 1.1 handshake must fail")

        let foreign = try Self.client(trusting: pki, certificate: try stranger.client(commonName: "recorder"))
        defer { foreign.shutdown { _ in } }
        let foreignAnswer = await Self.get(foreign, fixture.url + "/readyz")
        #expect(foreignAnswer.status == nil, "a certificate from another CA, even with a configured subject, fails the handshake")

        let expired = try Self.client(trusting: pki, certificate: try pki.client(commonName: "recorder", expired: true))
        defer { expired.shutdown { _ in } }
        let expiredAnswer = await Self.get(expired, fixture.url + "/readyz")
        #expect(expiredAnswer.status == nil, "an expired client certificate fails the handshake")

        // The server is unharmed.
        let good = try Self.client(trusting: pki)
        defer { good.shutdown { _ in } }
        #expect(await Self.get(good, fixture.url + "/readyz").status == 200)
        #expect(fixture.server.stop() == 0)
    }

    @Test(
        "a client certificate is an identity scoped like a token: by subject for one organization, by public key for all; a wrong token is not rescued by a certificate"
    )
    func clientIdentities() async throws {
        let pki = try TestPKI()
        let fixture = try TLSServer(pki: pki)
        let admin = try Self.client(trusting: pki)
        defer { admin.shutdown { _ in } }
        try await Self.waitForFirstPair(admin, fixture)

        let recorder = try Self.client(trusting: pki, certificate: fixture.recorder)
        defer { recorder.shutdown { _ in } }
        #expect(await Self.get(recorder, fixture.url + "/v1/orgs/acme/public-key").status == 200)
        #expect(await Self.get(recorder, fixture.url + "/v1/orgs/beta/public-key").status == 403)
        #expect(await Self.get(recorder, fixture.url + "/v1/status").status == 403)
        #expect(await Self.get(recorder, fixture.url + "/v1/orgs/acme/public-key", token: "kb_wrong").status == 401)

        let ops = try Self.client(trusting: pki, certificate: fixture.ops)
        defer { ops.shutdown { _ in } }
        let status = await Self.get(ops, fixture.url + "/v1/status")
        #expect(status.status == 200)
        #expect(await Self.get(ops, fixture.url + "/v1/orgs/beta/public-key").status == 200)
        // View only: generating a pair needs encryption-key:edit.
        var generate = HTTPClientRequest(url: fixture.url + "/v1/orgs/acme/keypairs")
        generate.method = .POST
        let generated = try await ops.execute(generate, timeout: .seconds(20))
        #expect(generated.status == .forbidden)

        // A certificate from the right CA that no client entry names: anonymous.
        let unnamed = try Self.client(trusting: pki, certificate: try pki.client(commonName: "intern"))
        defer { unnamed.shutdown { _ in } }
        #expect(await Self.get(unnamed, fixture.url + "/v1/orgs/acme/public-key").status == 401)

        // The audit log names the certificate's identity.
        let audit = try String(contentsOf: fixture.directory.url.appendingPathComponent("audit.log"), encoding: .utf8)
        #expect(audit.contains("recorder-cert"))
        #expect(fixture.server.stop() == 0)
    }

    @Test(
        "a reload that replaces the client CA ends the identities of certificates verified under the old one, on connections already open"
    )
    func clientCAReplaced() async throws {
        let pki = try TestPKI()
        let fixture = try TLSServer(pki: pki)
        let admin = try Self.client(trusting: pki)
        defer { admin.shutdown { _ in } }
        try await Self.waitForFirstPair(admin, fixture)
        let recorder = try Self.client(trusting: pki, certificate: fixture.recorder)
        defer { recorder.shutdown { _ in } }
        #expect(await Self.get(recorder, fixture.url + "/v1/orgs/acme/public-key").status == 200)

        // The old CA is compromised: the operator installs a new client CA and reloads.
        let replacement = try TestPKI(name: "replacement client CA")
        try fixture.directory.write("config/tls/clients-ca.pem", replacement.certificatePEM)
        #expect(try await fixture.reload(), "\(fixture.server.log)")

        // The same keep-alive connection (a new one would fail its handshake: no status at all)
        // is anonymous now.
        #expect(await Self.get(recorder, fixture.url + "/v1/orgs/acme/public-key").status == 401)
        // The same subject from the new CA is the identity.
        let renewed = try Self.client(trusting: pki, certificate: try replacement.client(commonName: "recorder"))
        defer { renewed.shutdown { _ in } }
        #expect(await Self.get(renewed, fixture.url + "/v1/orgs/acme/public-key").status == 200)
        #expect(fixture.server.stop() == 0)
    }

    @Test(
        "SIGHUP renews the certificate: a connection open through openssl s_client keeps working, new connections get the new certificate"
    )
    func reloadWhileConnected() async throws {
        let pki = try TestPKI()
        let fixture = try TLSServer(pki: pki)
        let caFile = try fixture.directory.write("old-ca.pem", pki.certificatePEM)
        let session = try OpenSSLClient(port: fixture.server.port, caFile: caFile)
        defer { session.close() }
        let before = try await session.request("/livez")
        #expect(before.hasPrefix("HTTP/1.1 200"), "\(before)")

        // A new CA and certificate, renamed into place; then SIGHUP.
        let renewed = try TestPKI(name: "renewed CA")
        try TLSServer.install(try renewed.server(), ca: pki, in: fixture.directory)
        #expect(try await fixture.reload(), "\(fixture.server.log)")

        // The open connection was not dropped and still answers.
        let after = try await session.request("/livez")
        #expect(after.hasPrefix("HTTP/1.1 200"), "\(after)")

        // New connections present the renewed certificate: only its CA accepts them.
        let renewedClient = try Self.client(trusting: renewed)
        defer { renewedClient.shutdown { _ in } }
        #expect(await Self.get(renewedClient, fixture.url + "/readyz").status == 200)
        let oldClient = try Self.client(trusting: pki)
        defer { oldClient.shutdown { _ in } }
        #expect(await Self.get(oldClient, fixture.url + "/readyz").status == nil)
        #expect(fixture.server.stop() == 0)
    }

    @Test("the CLI over https: --cacert with --cert/--key and no token; without --cacert it says what to pass")
    func cliOverHTTPS() async throws {
        let pki = try TestPKI()
        let fixture = try TLSServer(pki: pki)
        let caFile = try fixture.directory.write("ca.pem", pki.certificatePEM)
        let certFile = try fixture.directory.write("ops.pem", fixture.ops.certificatePEM)
        let keyFile = try fixture.directory.write("ops.key", fixture.ops.privateKeyPEM)
        #expect(chmod(keyFile, 0o600) == 0)
        var environment = ProcessInfo.processInfo.environment
        environment["KEYBROKER_TOKEN"] = nil
        let env = environment
        let url = fixture.url

        let status = try await offPool {
            try ProcessRunner.run(
                ProcessRunner.keybroker,
                ["status", "--server", url, "--cacert", caFile, "--cert", certFile, "--key", keyFile, "--json"],
                environment: env
            )
        }
        #expect(status.status == 0, "\(status.stderr)")
        let view = try APIJSON.decoder.decode(StatusView.self, from: status.stdout)
        #expect(view.warnings.isEmpty)

        let untrusted = try await offPool {
            try ProcessRunner.run(
                ProcessRunner.keybroker,
                ["status", "--server", url, "--cert", certFile, "--key", keyFile],
                environment: env
            )
        }
        #expect(untrusted.status != 0)
        #expect(untrusted.stderr.contains("--cacert"), "\(untrusted.stderr)")

        let halfPair = try await offPool {
            try ProcessRunner.run(ProcessRunner.keybroker, ["status", "--server", url, "--cert", certFile], environment: env)
        }
        #expect(halfPair.stderr.contains("--cert and --key go together"), "\(halfPair.stderr)")
        #expect(fixture.server.stop() == 0)
    }

    @Test(
        "config validate refuses a world-readable TLS key, a key of another certificate, plain HTTP on a network address, and auth.clients without a client CA"
    )
    func configurationRefusals() async throws {
        let pki = try TestPKI()
        let directory = try TemporaryDirectory()
        let first = try pki.server()
        let second = try pki.server()
        try directory.write("tls/server.pem", first.certificatePEM)
        let key = try directory.write("tls/server.key", first.privateKeyPEM)
        let otherKey = try directory.write("tls/other.key", second.privateKeyPEM)
        #expect(chmod(otherKey, 0o600) == 0)
        #expect(chmod(key, 0o644) == 0)
        let base = Fixtures.config()

        func validate(_ server: String, auth: String = "") async throws -> ProcessResult {
            let path = try directory.write("keybroker.yaml", base + "\nserver: \(server)\n" + auth)
            return try await offPool { try ProcessRunner.run(ProcessRunner.keybroker, ["config", "validate", "--config", path]) }
        }
        let readable = try await validate("{ listen: 127.0.0.1:0, tls: { certificate: tls/server.pem, privateKey: tls/server.key } }")
        #expect(readable.status != 0)
        #expect(readable.stderr.contains("chmod 600"), "\(readable.stderr)")
        // Offline commands do not read the server's TLS files (they may run as another user).
        let offline = try await offPool {
            try ProcessRunner.run(
                ProcessRunner.keybroker,
                ["keys", "list", "--org", "acme", "--config", "keybroker.yaml"],
                in: directory.url
            )
        }
        #expect(!offline.stderr.contains("server.tls"), "\(offline.stderr)")
        #expect(offline.status == 0, "\(offline.stderr)")

        let mismatch = try await validate("{ listen: 127.0.0.1:0, tls: { certificate: tls/server.pem, privateKey: tls/other.key } }")
        #expect(mismatch.status != 0)
        #expect(mismatch.stderr.contains("belongs to the certificate"), "\(mismatch.stderr)")

        let network = try await validate("{ listen: 0.0.0.0:8443 }")
        #expect(network.status != 0)
        #expect(network.stderr.contains("server.tls"), "\(network.stderr)")
        #expect(network.stderr.contains("allowPlaintext"), "\(network.stderr)")
        let allowed = try await validate("{ listen: 0.0.0.0:8443, allowPlaintext: true }")
        #expect(allowed.status == 0, "\(allowed.stderr)")

        #expect(chmod(key, 0o600) == 0)
        let clients = """
            auth:
              clients: [{ name: c, subject: "CN=c", permissions: [encryption-key:view], orgs: ["*"] }]

            """
        let noCA = try await validate(
            "{ listen: 127.0.0.1:0, tls: { certificate: tls/server.pem, privateKey: tls/server.key } }",
            auth: clients
        )
        #expect(noCA.status != 0)
        #expect(noCA.stderr.contains("clientCA"), "\(noCA.stderr)")
        let fine = try await validate("{ listen: 127.0.0.1:0, tls: { certificate: tls/server.pem, privateKey: tls/server.key } }")
        #expect(fine.status == 0, "\(fine.stderr)")

        // An expired certificate: a warning for validate (and a reload, which must not wait for
        // a renewal to revoke a token), a refusal for serve.
        let expired = try pki.server(validFor: -1)
        try directory.write("tls/expired.pem", expired.certificatePEM)
        let expiredKey = try directory.write("tls/expired.key", expired.privateKeyPEM)
        #expect(chmod(expiredKey, 0o600) == 0)
        let stale = try await validate("{ listen: 127.0.0.1:0, tls: { certificate: tls/expired.pem, privateKey: tls/expired.key } }")
        #expect(stale.status == 0, "\(stale.stderr)")
        #expect((stale.stderr + String(decoding: stale.stdout, as: UTF8.self)).contains("expired on"), "\(stale.stderr)")
        let url = directory.url
        let serve = try await offPool {
            try ProcessRunner.run(ProcessRunner.keybroker, ["serve", "--config", "keybroker.yaml"], in: url)
        }
        #expect(serve.status != 0)
        #expect(serve.stderr.contains("cannot serve: the certificate"), "\(serve.stderr)")
    }

    @Test(
        "a KMS endpoint behind a private CA: keybroker test passes with caFile, and without it fails saying the certificate was not verified",
        .enabled(if: KMSTestServer.available(.motoWithAuth), KMSTestServer.skipMessage)
    )
    func kmsOverPrivateCA() async throws {
        let kms = try await offPool { try SharedKMS.moto() }
        let pki = try TestPKI(name: "private KMS CA")
        let directory = try TemporaryDirectory()
        let issued = try pki.server()
        let certificate = try directory.write("kms/server.pem", issued.certificatePEM)
        let key = try directory.write("kms/server.key", issued.privateKeyPEM)
        try directory.write("kms/ca.pem", pki.certificatePEM)
        let endpoint = try #require(try kms.command("tls_proxy", ["certificate": certificate, "key": key])["endpoint"] as? String)
        #expect(endpoint.hasPrefix("https://127.0.0.1:"))

        func test(caFile: String?) async throws -> ProcessResult {
            let keystore = kms.keystoreYAML(generation: "local", endpoint: endpoint, extra: caFile.map { ", caFile: \($0)" } ?? "")
            try directory.write(
                "keybroker.yaml",
                Fixtures.config(defaultKeystore: "kms", organizations: "{ acme: {} }", extraKeystores: "  kms: \(keystore)")
            )
            let url = directory.url
            return try await offPool {
                try ProcessRunner.run(ProcessRunner.keybroker, ["test", "--org", "acme", "--config", "keybroker.yaml"], in: url)
            }
        }
        let trusted = try await test(caFile: "kms/ca.pem")
        #expect(trusted.status == 0, "\(trusted.stderr)")
        #expect(String(decoding: trusted.stdout, as: UTF8.self).contains("PASSED: the keystore works for this organization"))

        let untrusted = try await test(caFile: nil)
        #expect(untrusted.status != 0)
        let output = String(decoding: untrusted.stdout, as: UTF8.self) + untrusted.stderr
        #expect(output.contains("TLS certificate of KMS at \(endpoint)"), "\(output)")
        #expect(output.contains("set caFile:"), "\(output)")
        #expect(!output.contains("after 4 attempts"), "a certificate that does not verify is not retried: \(output)")
    }

    @Test("status warns about plain HTTP on a network address (as started, whatever a reload says) and a certificate near its end")
    func statusWarnings() throws {
        var settings = ServerSettings.defaultValue
        #expect(ListenerState(started: settings).warnings(at: Date()).isEmpty)
        settings.host = "10.1.2.3"
        settings.allowPlaintext = true
        let plain = ListenerState(started: settings)
        #expect(plain.warnings(at: Date()).first?.contains("plain HTTP on 10.1.2.3") == true)
        var reloaded = settings
        reloaded.host = "127.0.0.1"
        #expect(plain.restartNeeded(for: reloaded).first?.contains("until a restart") == true)

        let directory = try TemporaryDirectory()
        let issued = try TestPKI().server(validFor: 10)
        let certificate = try directory.write("server.pem", issued.certificatePEM)
        let key = try directory.write("server.key", issued.privateKeyPEM)
        #expect(chmod(key, 0o600) == 0)
        settings = ServerSettings.defaultValue
        settings.tls = try TLSSettings(certificate: URL(fileURLWithPath: certificate), privateKey: URL(fileURLWithPath: key), clientCA: nil)
        let listener = ListenerState(started: settings)
        let warnings = listener.warnings(at: Date())
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("expires on") == true)
        #expect(warnings.first?.contains("in 9 days") == true || warnings.first?.contains("in 10 days") == true)
        #expect(listener.warnings(at: Date().addingTimeInterval(-30 * 86400)).isEmpty, "40 days before its end, no warning")
        #expect(listener.warnings(at: Date().addingTimeInterval(11 * 86400)).first?.contains("expired on") == true)
        var withoutTLS = settings
        withoutTLS.tls = nil
        #expect(listener.restartNeeded(for: withoutTLS).first?.contains("server.tls was removed") == true)
        for host in ["127.0.0.1", "127.9.9.9", "::1", "localhost"] { #expect(ServerSettings.isLoopback(host)) }
        for host in ["0.0.0.0", "10.0.0.1", "::", "example.com", "127.0.0.1.example.com", "::ffff:127.0.0.1", "127.1", "localhost."] {
            #expect(!ServerSettings.isLoopback(host))
        }
    }
}

/// `openssl s_client` holding one TLS connection open; requests are written to it and answers
/// read back, so a test can tell whether that same connection survives a reload.
final class OpenSSLClient: @unchecked Sendable {
    private let process = Process()
    private let input: FileHandle
    private let output = LockedBuffer()

    init(port: Int, caFile: String) throws {
        guard let openssl = ProcessRunner.which("openssl") else { throw TestServerError(description: "openssl is not installed") }
        process.executableURL = URL(fileURLWithPath: openssl)
        process.arguments = [
            "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", caFile, "-verify_return_error", "-quiet", "-tls1_2",
        ]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        input = stdin.fileHandleForWriting
        let reader = stdout.fileHandleForReading
        let output = output
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                output.append(data)
            }
        }
        try process.run()
    }

    /// Sends `GET path` on the open connection and returns the answer's text.
    func request(_ path: String) async throws -> String {
        let start = output.count
        input.write(Data("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        for _ in 0..<100 {
            let text = output.text(from: start)
            if text.contains("\r\n\r\n"), text.contains("ok") || text.contains("}") { return text }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return output.text(from: start)
    }

    func close() {
        try? input.close()
        if process.isRunning { process.terminate() }
    }
}

/// Bytes appended by one thread and read by another.
final class LockedBuffer: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    func append(_ more: Data) { lock.withLock { data.append(more) } }
    var count: Int { lock.withLock { data.count } }
    func text(from offset: Int) -> String { lock.withLock { String(decoding: data.dropFirst(offset), as: UTF8.self) } }
}
