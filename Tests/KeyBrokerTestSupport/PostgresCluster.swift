import Foundation
import KeyBroker
import Synchronization

/// A real PostgreSQL cluster for one test process: `initdb` into a temporary directory, the
/// server on a free loopback port, password authentication (SCRAM) over TCP. As root (CI) the
/// cluster runs as `nobody`, since PostgreSQL refuses to run as root. Stopped by PID (the
/// postmaster's own: `setpriv` execs it), and at the latest when the test process exits.
///
/// Without PostgreSQL installed, ``available`` is false and suites skip with a message; in CI
/// (`CI` set) a test fails instead (`PostgresInstalledTests`), so that a machine without it
/// cannot pass quietly.
final class PostgresCluster: Sendable {
    let directory: URL
    let port: Int
    let user = "keybroker"
    let password: String
    let binaries: URL
    private let server = Mutex<Process?>(nil)

    /// Where `initdb` is, if PostgreSQL is installed.
    static let binaryDirectory: URL? = {
        var candidates =
            (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
            .sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
            .map { URL(fileURLWithPath: "/usr/lib/postgresql/\($0)/bin") } ?? []
        if let initdb = ProcessRunner.which("initdb") {
            candidates.append(URL(fileURLWithPath: initdb).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("postgres").path) }
    }()

    /// Whether PostgreSQL is installed here.
    static var available: Bool { binaryDirectory != nil }

    /// Fails (in CI) or says why the suite is skipped (elsewhere).
    static var skipMessage: String {
        "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH): apt-get install postgresql; the PostgreSQL tests are skipped"
    }

    /// The process's shared cluster, started on first use.
    static func shared() throws -> PostgresCluster { try sharedResult.get() }
    private static let sharedResult = Result { try PostgresCluster() }

    /// Initializes and starts a new cluster.
    init() throws {
        guard let binaries = Self.binaryDirectory else { throw ClusterError(Self.skipMessage) }
        self.binaries = binaries
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kb-pg-\(UUID().uuidString.prefix(8))")
        password = UUID().uuidString
        port = try Self.freePort()
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let passwordFile = directory.appendingPathComponent("pw")
        try Data(password.utf8).write(to: passwordFile)
        if getuid() == 0 {
            // PostgreSQL will not run as root.
            for path in [directory.path, passwordFile.path] { _ = chown(path, 65534, 65534) }
        }
        let initdb = try ProcessRunner.run(
            Self.asUnprivileged(binaries.appendingPathComponent("initdb").path),
            Self.unprivilegedPrefix(binaries.appendingPathComponent("initdb").path) + [
                "-D", data.path, "-U", user, "--pwfile", passwordFile.path, "--auth-host=scram-sha-256", "--auth-local=trust",
                "--locale=C", "-E", "UTF8", "--no-sync",
            ],
            in: directory
        )
        guard initdb.status == 0 else { throw ClusterError("initdb failed: \(initdb.stderr.suffix(800))") }
        try start()
        Self.started.withLock { $0.append(self) }
        Self.installExitHandler
    }

    /// Starts the server (again, after ``stop()``), and waits until it accepts connections.
    func start() throws {
        let log = directory.appendingPathComponent("server.log")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        if getuid() == 0 { _ = chown(log.path, 65534, 65534) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.asUnprivileged(binaries.appendingPathComponent("postgres").path))
        process.arguments =
            Self.unprivilegedPrefix(binaries.appendingPathComponent("postgres").path) + [
                "-D", directory.appendingPathComponent("data").path, "-p", String(port), "-c", "listen_addresses=127.0.0.1",
                "-c", "unix_socket_directories=\(directory.path)", "-c", "max_connections=200", "-c", "fsync=on",
            ]
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        server.withLock { $0 = process }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let ready = try ProcessRunner.run(
                binaries.appendingPathComponent("pg_isready").path,
                ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-t", "1"]
            )
            if ready.status == 0 { return }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let tail = (try? String(contentsOf: log, encoding: .utf8))?.suffix(800) ?? ""
        throw ClusterError("PostgreSQL did not start on port \(port): \(tail)")
    }

    /// Stops the server (fast shutdown, by its PID) and waits for it to exit.
    func stop() {
        guard let process = server.withLock({ $0 }) else { return }
        if process.isRunning { kill(process.processIdentifier, SIGINT) }
        process.waitUntilExit()
        server.withLock { $0 = nil }
    }

    /// A new, empty database.
    func createDatabase(_ name: String = "kb_\(UUID().uuidString.prefix(8).lowercased())") throws -> String {
        let result = try ProcessRunner.run(
            binaries.appendingPathComponent("createdb").path,
            ["-h", "127.0.0.1", "-p", String(port), "-U", user, name],
            environment: ["PGPASSWORD": password, "PATH": "/usr/bin:/bin"]
        )
        guard result.status == 0 else { throw ClusterError("createdb \(name) failed: \(result.stderr)") }
        return name
    }

    /// Runs SQL in `database` through psql (tests that seed or inspect rows directly).
    @discardableResult
    func psql(_ database: String, _ sql: String) throws -> String {
        let result = try ProcessRunner.run(
            binaries.appendingPathComponent("psql").path,
            ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            environment: ["PGPASSWORD": password, "PATH": "/usr/bin:/bin"]
        )
        guard result.status == 0 else { throw ClusterError("psql failed: \(result.stderr)") }
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The URL of `database`, for `storage.postgres.url`.
    func url(_ database: String) -> String {
        "postgres://\(user):\(password)@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// The settings of `database`.
    func settings(_ database: String) throws -> PostgresStorageSettings {
        try PostgresStorageSettings.parse(url: url(database))
    }

    // MARK: helpers

    /// The arguments before the program's own: `setpriv`'s, and the program, as root.
    private static func unprivilegedPrefix(_ program: String) -> [String] {
        getuid() == 0 ? ["--reuid=65534", "--regid=65534", "--clear-groups", "--", program] : []
    }

    /// As root, the program runs through `setpriv`, which execs it as `nobody`.
    private static func asUnprivileged(_ program: String) -> String {
        getuid() == 0 ? "/usr/bin/setpriv" : program
    }

    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ClusterError("socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { throw ClusterError("no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static let started = Mutex<[PostgresCluster]>([])

    /// Stops every cluster this process started when it exits (a crashed test must not leave
    /// postgres running).
    private static let installExitHandler: Void = {
        atexit {
            for cluster in PostgresCluster.started.withLock({ $0 }) { cluster.stop() }
        }
    }()

    struct ClusterError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
