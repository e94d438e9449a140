import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerServer
import Testing

@testable import KeyBrokerTestSupport

/// Invariant 7: a pair whose public key was handed out is on disk first, and a database that is
/// missing, empty or replaced is never taken for a new deployment.
@Suite("Durability: a pair handed out is a pair kept")
struct DurabilityTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    private var databaseURL: URL { directory.url.appendingPathComponent("db/keybroker.sqlite") }

    @Test("every commit is synced: the writer runs with synchronous = FULL")
    func synchronousFull() throws {
        let store = try SQLiteKeyPairStore(url: databaseURL, createIfMissing: true)
        #expect(try store.synchronousMode() == 2, "2 is FULL; GRDB's WAL default NORMAL (1) does not sync commits")
    }

    @Test(
        "the commit of a new pair is synced before the CLI reports it (strace)",
        .enabled(if: DurabilityTests.straceAvailable, "strace is not installed: run scripts/install-test-tools")
    )
    func commitSyncedBeforeAnswer() throws {
        try directory.write("config/keybroker.yaml", Fixtures.config().replacingOccurrences(of: "path: data/", with: "path: ../data/"))
        // Create the database first, so the traced run is a plain commit into an existing WAL.
        let first = try ProcessRunner.run(ProcessRunner.keybroker, ["keys", "generate", "--org", "org-a"], in: directory.url)
        #expect(first.status == 0, "\(first.stderr)")
        let trace = directory.path("trace.txt")
        let result = try ProcessRunner.run(
            "/usr/bin/env",
            [
                "strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,write", "-o", trace, ProcessRunner.keybroker, "keys", "generate",
                "--org", "org-a",
            ],
            in: directory.url
        )
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        let answer = lines.firstIndex { $0.contains("write(1") && $0.contains("generated key pair") }
        let sync = lines.firstIndex { ($0.contains("fsync(") || $0.contains("fdatasync(")) && $0.contains("keybroker.sqlite-wal") }
        #expect(answer != nil, "the CLI printed its answer")
        #expect(sync != nil, "the WAL was synced")
        if let answer, let sync { #expect(sync < answer, "the commit was synced before the pair was reported") }
    }

    static var straceAvailable: Bool {
        ProcessInfo.processInfo.environment["CI"] == "true" || ProcessRunner.which("strace") != nil
    }

    /// A database path in each state, and what opening it must say. None of them may be taken
    /// for a new deployment, except a missing file where the configuration says to create one.
    @Test(
        "opening the database: missing, empty, foreign, not a file, not SQLite",
        arguments: [
            ("missing, createIfMissing false", "missing", false, "does not exist. If KeyBroker ran here before"),
            ("empty (0 bytes), createIfMissing true", "empty", true, "is empty (0 bytes), so it is not a KeyBroker database"),
            ("empty (0 bytes), createIfMissing false", "empty", false, "is empty (0 bytes)"),
            ("an SQLite file without KeyBroker's schema", "foreign", true, "is an SQLite database without KeyBroker's schema"),
            ("a directory", "directory", true, "is not a regular file"),
            ("a file that is not SQLite", "garbage", true, "is damaged"),
        ]
    )
    func refusedDatabases(_ label: String, _ state: String, _ createIfMissing: Bool, _ expected: String) throws {
        let url = databaseURL
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        switch state {
        case "empty": #expect(FileManager.default.createFile(atPath: url.path, contents: Data()))
        case "foreign":
            let queue = try DatabaseQueue(path: url.path)
            try queue.write { try $0.execute(sql: "CREATE TABLE recordings (id INTEGER PRIMARY KEY)") }
            try queue.close()
        case "directory": try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        case "garbage": #expect(FileManager.default.createFile(atPath: url.path, contents: Data(repeating: 0x41, count: 8192)))
        default: break
        }
        let before = try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int
        let error = #expect(throws: StoreError.self, "\(label)") { try SQLiteKeyPairStore(url: url, createIfMissing: createIfMissing) }
        #expect(error?.message.contains(expected) == true, "\(label): \(error?.message ?? "no error")")
        #expect(error?.message.contains(url.path) == true, "the message names the file")
        let after = try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int
        #expect(before == after, "\(label): the file was left as it was")
    }

    @Test("a missing database is created, with its schema, only where the configuration says so; 0600 in a 0700 directory")
    func createdWhenAllowed() async throws {
        let store = try SQLiteKeyPairStore(url: databaseURL, createIfMissing: true)
        try await store.check()
        let file = try FileManager.default.attributesOfItem(atPath: databaseURL.path)
        let folder = try FileManager.default.attributesOfItem(atPath: databaseURL.deletingLastPathComponent().path)
        #expect((file[.posixPermissions] as? Int) == 0o600)
        #expect((folder[.posixPermissions] as? Int) == 0o700)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: databaseURL.deletingLastPathComponent().path)
            .filter { $0.hasSuffix(".creating") }
        #expect(leftovers.isEmpty, "the temporary file is gone")
        // The configuration's default is to create; the deployment examples say false.
        let yaml = try directory.write("c.yaml", "storage: { sqlite: { path: db.sqlite } }\nkeystores: { plain: { type: none } }\n")
        guard case .sqlite(let settings) = try Fixtures.loader().load(path: yaml).config.storage else { return }
        #expect(settings.createIfMissing)
    }

    @Test("a database deleted or replaced while open: check() and writes refuse, naming the file")
    func deletedOrReplacedWhileOpen() async throws {
        for replacement in ["deleted", "replaced"] {
            let url = directory.url.appendingPathComponent("\(replacement)/keybroker.sqlite")
            let store = try SQLiteKeyPairStore(url: url, createIfMissing: true)
            let record = try Fixtures.sampleRecord()
            try await store.insertCurrent(record)
            for suffix in ["", "-wal", "-shm"] { unlink(url.path + suffix) }
            if replacement == "replaced" {
                _ = try SQLiteKeyPairStore(url: url, createIfMissing: true)
            }
            let checked = await #expect(throws: StoreError.self) { try await store.check() }
            #expect(checked?.kind == .unavailable)
            #expect(checked?.message.contains("was \(replacement)") == true, "\(checked?.message ?? "")")
            #expect(checked?.message.contains(url.path) == true)
            let written = await #expect(throws: StoreError.self) { try await store.insertCurrent(try Fixtures.sampleRecord()) }
            #expect(written?.message.contains("was \(replacement)") == true)
        }
    }

    @Test("the server with its database deleted: readiness 503 naming the cause, generation refused")
    func serverNoticesDeletedDatabase() async throws {
        let fixture = try await ServerFixture.make()
        let broker = fixture.server.runtime.broker
        try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        await fixture.server.runtime.monitor.checkAll(broker)
        let database = fixture.directory.path("data/keybroker.sqlite")
        for suffix in ["", "-wal", "-shm"] { unlink(database + suffix) }
        await fixture.server.runtime.monitor.checkAll(broker)
        try await fixture.test { client in
            try await client.execute(uri: "/readyz?verbose", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.text.contains(#""errorKind":"unavailable""#))
                #expect(!response.text.contains(database), "probes need no auth: no paths")
            }
            try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("admin")) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.errorCode == "store_unavailable")
                #expect(response.text.contains("was deleted"))
            }
            try await client.execute(uri: "/v1/status", method: .get, headers: fixture.headers("viewer")) { response in
                let status = try response.json(StatusView.self)
                #expect(status.store?.usable == false)
                #expect(status.store?.error?.contains(database) == true, "operators see which file")
            }
        }
    }

    @Test("a damaged key_pair table makes the server unready, and stays so: the check reads what requests read")
    func damagedTableMakesUnready() async throws {
        let fixture = try await ServerFixture.make()
        for org in ["acme", "beta"] {
            try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org(org), reason: .initial, requestedBy: "test")
        }
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        #expect(fixture.server.runtime.monitor.store.usable)
        let database = fixture.directory.path("data/keybroker.sqlite")
        try Self.overwriteTablePages(database)
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        try await fixture.test { client in
            try await client.execute(uri: "/readyz?verbose", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.text.contains(#""errorKind":"damaged""#))
            }
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(!response.text.contains(database), "a tenant's token does not learn the path")
                #expect(response.headers[.retryAfter] == nil, "damage does not heal on this replica: no Retry-After")
                #expect(response.text.contains("damaged") && response.text.contains("another replica"))
            }
        }
        // A server started on the damaged file refuses to start, saying what to do.
        let error = await #expect(throws: BrokerError.self) { try await ServerFixture.make(directory: fixture.directory) }
        #expect(error?.message.contains("is damaged") == true && error?.message.contains("restore it from a backup") == true)
    }

    @Test("a store failure on a request path makes the server unready at once, before any background check")
    func requestPathFailureFeedsReadiness() async throws {
        let failing = Locked(false)
        let failure = StoreError(.damaged, "database file '/x' is damaged (SQLite error 11)")
        let fixture = try await ServerFixture.make(store: { inner in
            ObservedStore(inner: inner, readFailure: { failing.value ? failure : nil })
        })
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        try await fixture.test { client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok, "the check passes") }
            failing.update { $0 = true }
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                #expect($0.status == .serviceUnavailable)
            }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
        }
        // Damage is sticky: a later check that passes does not make the server ready again.
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        #expect(!fixture.server.runtime.monitor.store.usable)
    }

    /// Overwrites the first pages of the `key_pair` table's b-tree with garbage, as a failing
    /// disk or an editor would.
    static func overwriteTablePages(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        let (root, pageSize) = try queue.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'key_pair'") ?? 0,
                try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            )
        }
        try queue.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64((root - 1) * pageSize))
        try handle.write(contentsOf: Data(repeating: 0xA5, count: pageSize))
        try handle.close()
        // Any commit makes every open connection drop its page cache and read the damage.
        try queue.write { try $0.execute(sql: "CREATE TABLE scratch (a); DROP TABLE scratch") }
        try queue.close()
    }

}
