import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerServer
import NIOCore
import Testing

@testable import KeyBrokerTestSupport

/// Invariant 8: nothing from outside the process — a file, a request, a backend's answer, a
/// database row — can stop it. Every test here runs the values in-process: a trap would end the
/// whole test run, so a run that finishes is a run in which nothing crashed.
@Suite("No input crashes the process: numbers and durations")
struct ExtremeValueTests {
    /// Where a setting goes in the test configuration.
    struct Setting {
        /// Added under `keystores:` (a KMS keystore).
        var keystores = ""
        /// Added at the top level.
        var topLevel = ""
    }

    /// A key and how to set it to a value.
    struct Key: Sendable {
        let path: String
        let setting: @Sendable (String) -> Setting
    }

    private static func topLevel(_ path: String, _ yaml: @escaping @Sendable (String) -> String) -> Key {
        Key(path: path, setting: { Setting(topLevel: yaml($0)) })
    }

    /// Every numeric and duration key.
    static let keys: [Key] = {
        var keys: [Key] = []
        keys.append(topLevel("server.healthCheckInterval") { "server: { listen: 127.0.0.1:0, healthCheckInterval: \"\($0)\" }" })
        keys.append(topLevel("server.maxRequestBytes") { "server: { listen: 127.0.0.1:0, maxRequestBytes: \"\($0)\" }" })
        keys.append(
            topLevel("server.limits.generationsPerOrganizationPerMinute") {
                "server: { listen: 127.0.0.1:0, limits: { generationsPerOrganizationPerMinute: \"\($0)\" } }"
            }
        )
        keys.append(topLevel("server.listen") { "server: { listen: \"127.0.0.1:\($0)\" }" })
        for name in ["interval", "concurrency", "perKeystoreRate", "maxRetryDelay"] {
            keys.append(topLevel("scheduler.\(name)") { "scheduler: { \(name): \"\($0)\" }" })
        }
        for name in ["maxAge", "maxUses", "maxEntries"] {
            keys.append(topLevel("privateKeyCache.\(name)") { "privateKeyCache: { \(name): \"\($0)\" }" })
        }
        for key in kmsKeys {
            keys.append(Key(path: key.path, setting: { value in Setting(keystores: kmsKeystore(key.entry(value))) }))
        }
        return keys
    }()

    /// The `aws-kms-symmetric` keys, as they stand inside a keystore entry.
    static let kmsKeys: [(path: String, entry: @Sendable (String) -> String)] = [
        ("keystores.kms.requestTimeout", { "requestTimeout: \"\($0)\"" }),
        ("keystores.kms.totalTimeout", { "totalTimeout: \"\($0)\"" }),
        ("keystores.kms.retries.maxAttempts", { "retries: { maxAttempts: \"\($0)\" }" }),
        ("keystores.kms.retries.baseDelay", { "retries: { baseDelay: \"\($0)\" }" }),
        ("keystores.kms.retries.maxDelay", { "retries: { maxDelay: \"\($0)\" }" }),
    ]

    /// 0, negative, huge, tiny, fractional, non-numeric, and the two values the red team used.
    static let values = [
        "0", "-1", "-0", "1", "9000000000000000000m", "9223372036854775807", "99999999999999999999", "0.0000000001",
        "1e-300", "1e400", "nan", "inf", "1.5", "1.5s", "0ms", "1ms", "5s", "120s", "86400s", "abc", "", " ", "0x10",
    ]

    /// A KMS keystore entry on a port where nothing listens, with `extra` keys.
    static func kmsKeystore(_ extra: String) -> String {
        "  kms: { type: aws-kms-symmetric, keyAlias: \"arn:aws:kms:eu-west-1:111122223333:alias/x\", region: eu-west-1, endpoint: \"http://127.0.0.1:9\", accessKeyId: AKIAEXAMPLE, secretAccessKey: secret, keyPairSpec: RSA_2048, \(extra) }"
    }

    /// A whole configuration with one organization, and `setting` applied.
    static func configuration(_ setting: Setting = Setting()) -> String {
        ServerFixture.configBody(organizations: "{ acme: {} }", extraKeystores: setting.keystores, extra: setting.topLevel + "\n")
    }

    @Test(
        "every numeric and duration key with extreme values: refused with file:line:column or accepted, never a trap — by the loader (config validate) and by reload"
    )
    func extremeValuesInFiles() async throws {
        let directory = try TemporaryDirectory()
        let fixture = try await ServerFixture.make(body: Self.configuration(), directory: directory)
        var accepted: [(String, String)] = []
        for key in Self.keys {
            for value in Self.values {
                try fixture.rewrite(body: Self.configuration(key.setting(value)))
                do {
                    _ = try Fixtures.loader().load(path: fixture.configPath)
                    accepted.append((key.path, value))
                } catch {
                    #expect(error.errors.allSatisfy { $0.location != nil }, "\(key.path)=\(value): \(error)")
                    #expect(
                        error.errors.contains { $0.message.contains(key.path.split(separator: ".").last.map(String.init) ?? "") },
                        "\(key.path)=\(value) is named: \(error)"
                    )
                }
                // Reload reads the same file: refused (old configuration stays) or taken.
                do {
                    _ = try await fixture.server.runtime.reload()
                } catch is ConfigError {
                    // refused, as validate refused it
                }
            }
        }
        // The red team's values are refused, not trapped on.
        #expect(!accepted.contains { $0 == ("keystores.kms.requestTimeout", "9000000000000000000m") })
        #expect(!accepted.contains { $0 == ("scheduler.perKeystoreRate", "0.0000000001") })
        #expect(accepted.contains { $0 == ("scheduler.perKeystoreRate", "1.5") }, "sane values still load")
    }

    @Test("every value config validate accepts runs a server: health checks and a scheduler pass, no trap")
    func acceptedValuesRun() async throws {
        var accepted: [(String, String)] = []
        for key in Self.keys {
            for value in Self.values {
                let directory = try TemporaryDirectory()
                let path = try directory.write("keybroker.yaml", Self.configuration(key.setting(value)))
                if (try? Fixtures.loader().load(path: path)) != nil { accepted.append((key.path, value)) }
            }
        }
        #expect(accepted.count > 20)
        let keys = Self.keys
        // Four at a time: health checks of the KMS keystore retry against a closed port for
        // seconds, while the rest of the suite needs the CPU too.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, (path, value)) in accepted.enumerated() {
                guard let setting = keys.first(where: { $0.path == path })?.setting(value) else { continue }
                if index >= 4 { try await group.next() }
                group.addTask {
                    let fixture = try await ServerFixture.make(body: Self.configuration(setting))
                    await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
                    let pass = await fixture.server.scheduler.runOnce()
                    #expect(pass.rotated[Fixtures.org("acme")] == .initial, "\(path)=\(value)")
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("the KMS keys with extreme values through the candidate API: 400 naming the key, or a report; never a trap")
    func extremeValuesOverTheAPI() async throws {
        // Every accepted candidate runs a test, which counts against the per-organization cap.
        let limits = Setting(topLevel: "server: { listen: 127.0.0.1:0, limits: { generationsPerOrganizationPerMinute: 1000 } }")
        let fixture = try await ServerFixture.make(body: Self.configuration(limits))
        try await fixture.test { client in
            for key in Self.kmsKeys {
                for value in Self.values {
                    var keystore: [String: Any] = [
                        "type": "aws-kms-symmetric", "keyAlias": "arn:aws:kms:eu-west-1:111122223333:alias/x", "region": "eu-west-1",
                        "keyPairSpec": "RSA_2048",
                    ]
                    let name = String(key.path.split(separator: ".").last ?? "")
                    if key.path.contains("retries") { keystore["retries"] = [name: value] } else { keystore[name] = value }
                    // No credentials: a candidate never uses the server's, so one whose values are
                    // all accepted is refused for that alone, without any network call.
                    try await client.execute(
                        uri: "/v1/orgs/acme/test",
                        method: .post,
                        headers: fixture.headers("admin"),
                        body: try ByteBuffer(json: ["keystore": keystore])
                    ) { response in
                        #expect(response.status == .badRequest, "\(key.path)=\(value): \(response.status)")
                        let messages = try response.json(ErrorBody.self).error.diagnostics?.map(\.message) ?? []
                        let aboutValue = messages.filter { !$0.contains("needs its own accessKeyId and secretAccessKey") }
                        #expect(aboutValue.allSatisfy { $0.contains(name) }, "\(key.path)=\(value): \(messages)")
                        #expect(!messages.isEmpty, "\(key.path)=\(value)")
                    }
                }
            }
        }
    }

    @Test("the two values that stopped the process, through the built keybroker: config validate exits 2 with the position")
    func cliRefusesTrappingValues() throws {
        for (key, value) in [("keystores.kms.requestTimeout", "9000000000000000000m"), ("scheduler.perKeystoreRate", "0.0000000001")] {
            let setting = Self.keys.first { $0.path == key }.map { $0.setting(value) } ?? Setting()
            let directory = try TemporaryDirectory()
            try directory.write("config/keybroker.yaml", ServerFixture.inConfigFolder(Self.configuration(setting)))
            let result = try ProcessRunner.run(ProcessRunner.keybroker, ["config", "validate"], in: directory.url)
            #expect(result.status == 2, "\(key)=\(value): \(result.stderr)")
            #expect(result.stderr.contains("config/keybroker.yaml:"), "\(result.stderr)")
        }
    }
}

@Suite("No input crashes the process: database rows")
struct WrongTypedRowTests {
    /// A value of the wrong type (or shape) for each column a request reads. SQLite's column
    /// affinity turns a number written into a TEXT column into text, so those columns get blobs
    /// and texts that are not what they must hold.
    static let edits: [(column: String, value: String)] = [
        ("id", "42"), ("id", "X'00'"), ("id", "'not-a-uuid'"),
        ("organization", "X'6f72672d61'"), ("organization", "'../etc'"), ("organization", "'-7'"),
        ("backend_key_reference", "X'00'"), ("spec", "3072"), ("spec", "'RSA_1024'"), ("spec", "X'00'"),
        ("public_key", "'text'"), ("public_key", "12"), ("wrapped_private_key", "'text'"), ("wrapped_private_key", "1.5"),
        ("encryption_context", "5"), ("encryption_context", "'not json'"), ("encryption_context", "'[]'"),
        ("encryption_context", "X'7b7d'"), ("created_at_us", "'yesterday'"), ("created_at_us", "1.5"),
        ("created_at_us", "9223372036854775807"), ("created_at_us", "-1"), ("created_at_us", "X'01'"),
        ("reason", "5"), ("reason", "'because'"), ("requested_by", "X'00'"),
    ]

    /// Edits of the columns invariant 3 reads (which keystore, of which type, a pair needs):
    /// the server refuses to start, naming the keystore and the pairs, rather than start with a
    /// pair no configured keystore can decrypt.
    static let referenceEdits: [(column: String, value: String, message: String)] = [
        ("keystore_name", "5", "keystore '5' is not configured, but 1 stored key pair(s) need it to decrypt (acme: 1)"),
        ("keystore_name", "X'00'", "keystore '<1-byte blob>' is not configured, but 1 stored key pair(s) need it to decrypt (acme: 1)"),
        ("keystore_type", "5", "but 1 stored key pair(s) were wrapped by it as type '5' (acme: 1)"),
    ]

    @Test("a wrong keystore name or type on a row: the server does not start, and says which keystore and pairs", arguments: referenceEdits)
    func wrongReference(_ column: String, _ value: String, _ message: String) async throws {
        let fixture = try await ServerFixture.make()
        let acme = try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("beta"), reason: .initial, requestedBy: "test")
        try Fixtures.editRow(fixture, column: column, value: value, of: acme.id)
        let error = await #expect(throws: ConfigError.self) { try await ServerFixture.make(directory: fixture.directory) }
        #expect(error?.description.contains(message) == true, "\(error?.description ?? "")")
    }

    @Test(
        "one wrong-typed value in any column: that pair is reported corrupt, the other organization and the server go on",
        arguments: edits
    )
    func wrongTypedValue(_ column: String, _ value: String) async throws {
        let fixture = try await ServerFixture.make(
            body: ServerFixture.configBody(organizations: "{ acme: { rotation: weekly }, beta: {} }")
        )
        let broker = fixture.server.runtime.broker
        let acme = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let beta = try await broker.generateKeyPair(for: Fixtures.org("beta"), reason: .initial, requestedBy: "test")
        try Fixtures.editRow(fixture, column: column, value: value, of: acme.id)
        let label = "\(column) = \(value)"

        let scan = try await broker.store.currentPairs(.byOrganization(after: nil), limit: 100)
        #expect(scan.records.map(\.id).contains(beta.id), "\(label): the other organization's pair is read")
        #expect(scan.corrupt.count == 1, "\(label): the damaged row is reported")
        #expect(
            scan.corrupt.first?.problem.contains("column \(column)") == true,
            "\(label): the report names the column: \(scan.corrupt.first?.problem ?? "")"
        )

        // A row whose organization cannot be read belongs to nobody: its organization then has
        // no current pair and gets one; any other damaged current pair is left for the operator.
        let ownerReadable = column != "organization"
        let pass = await fixture.server.scheduler.runOnce()
        #expect(pass.rotated[Fixtures.org("beta")] == nil && pass.failed.isEmpty, "\(label): the pass goes on")
        #expect(
            (pass.rotated[Fixtures.org("acme")] == nil) == ownerReadable,
            "\(label): a damaged current pair is not replaced behind the operator's back"
        )

        _ = try await broker.status()
        let reopened = try await ServerFixture.make(directory: fixture.directory)
        await reopened.server.runtime.monitor.checkAll(reopened.server.runtime.broker)
        // The server's first pass, at start, reads the operator's organizations (acme is one).
        _ = await reopened.server.scheduler.runOnce()
        try await reopened.test { client in
            try await client.execute(uri: "/v1/status", method: .get, headers: reopened.headers("viewer")) { response in
                #expect(response.status == .ok, "\(label)")
                let status = try response.json(StatusView.self)
                #expect(status.corruptKeyPairs.count == 1, "\(label)")
            }
            try await client.execute(uri: "/v1/orgs/beta/public-key", method: .get, headers: reopened.headers("admin")) {
                #expect($0.status == .ok, "\(label)")
            }
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: reopened.headers("admin")) { response in
                if ownerReadable {
                    #expect(response.status == .internalServerError, "\(label): \(response.status)")
                    #expect(response.errorCode == "corrupt_record", "\(label)")
                } else {
                    #expect(response.status == .ok, "\(label): the new pair")
                }
            }
            try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .get, headers: reopened.headers("admin")) { response in
                #expect([.ok, .internalServerError].contains(response.status), "\(label): \(response.status)")
            }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok, "\(label): one bad row is not an outage") }
        }
    }
}

@Suite("No input crashes the process: files that are not files")
struct SpecialFileTests {
    @Test("a master key path that is a FIFO fails at once with a clear error; it neither blocks nor hangs the caller")
    func fifoMasterKey() async throws {
        let directory = try TemporaryDirectory()
        #expect(mkfifo(directory.path("master.key"), 0o600) == 0)
        #expect(mkfifo(directory.path("old.key"), 0o600) == 0)
        let path = try directory.write(
            "c.yaml",
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores:
              current: { type: local-file, path: master.key }
              rotated: { type: local-file, path: new.key, previousPaths: [old.key] }
            defaults: { keystore: current, keyPairSpec: RSA_2048 }
            """
        )
        let key = directory.url.appendingPathComponent("new.key")
        #expect(
            FileManager.default.createFile(
                atPath: key.path,
                contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }),
                attributes: [.posixPermissions: 0o600]
            )
        )
        let loaded = try Fixtures.loader().load(path: path)
        let context = EncryptionContext.organization(Fixtures.org("acme"))
        let clock = ContinuousClock()
        let start = clock.now
        // One per core and more: before the fix each blocked a thread of the cooperative pool in open().
        try await withThrowingTaskGroup(of: KeystoreError?.self) { group in
            for _ in 0..<(ProcessInfo.processInfo.activeProcessorCount * 2) {
                group.addTask {
                    do throws(KeystoreError) {
                        _ = try await loaded.keystores["current"]?.generateKeyPair(.rsa2048, context: context)
                        return nil
                    } catch { return error }
                }
            }
            for try await error in group {
                #expect(error?.message.contains("is not a regular file") == true, "\(error?.description ?? "generated")")
            }
        }
        let health = await loaded.keystores["rotated"]?.checkHealth()
        #expect(health?.error?.message.contains("'\(directory.path("old.key"))' is not a regular file") == true, "\(health?.detail ?? "")")
        // A FIFO open without O_NONBLOCK waits for a writer forever; the bound only tells such
        // a hang from a slow machine (CI runs this beside the whole parallel suite).
        #expect(clock.now - start < .seconds(60), "nothing waited for a FIFO writer")
    }

    @Test("an audit destination that is a FIFO or a directory is refused at start with a clear error")
    func fifoAuditLog() throws {
        let directory = try TemporaryDirectory()
        #expect(mkfifo(directory.path("audit.fifo"), 0o600) == 0)
        try FileManager.default.createDirectory(atPath: directory.path("audit.dir"), withIntermediateDirectories: true)
        for name in ["audit.fifo", "audit.dir"] {
            let settings = AuditSettings(destination: .file(directory.url.appendingPathComponent(name)), onFailure: .refuse)
            #expect(throws: (any Error).self, "\(name)") { try AuditLog(settings) }
        }
    }
}
