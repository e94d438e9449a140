import Foundation
public import KeyBroker
public import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// A ``KeyPairStore`` in PostgreSQL, through PostgresNIO's connection pool: the store that
/// several replicas share.
///
/// - One current pair per organization: a partial unique index, and every transaction that
///   changes an organization's current pair first takes a transaction-scoped advisory lock on
///   the organization, so that concurrent writers on any replica queue instead of failing.
/// - Conditions (``InsertCondition``) are checked in the writing transaction: the
///   configuration version, the pair a rotation replaces, and the lease's epoch, the last
///   with the lease row locked (`FOR SHARE`) so that the lease cannot change hands before
///   the commit (fencing).
/// - The change feed is written last in each writing transaction, under a lock held to the
///   commit, with a `NOTIFY`: readers see changes in sequence order and learn of them at once.
/// - Every commit is durable as PostgreSQL's `synchronous_commit` makes it (on by default).
/// - Every failure is a ``StoreError``; a connection that fails is `unavailable`, and the pool
///   reconnects by itself when the server is back.
public final class PostgresKeyPairStore: KeyPairStore {
    let client: PostgresClient
    let settings: PostgresStorageSettings
    /// For a direct connection when the pool does not answer (to tell why).
    let connectionConfiguration: PostgresConnection.Configuration
    let logger: Logger
    private let runTask: Task<Void, Never>
    private let listenTask: Task<Void, Never>
    private let signals: AsyncStream<Void>
    let prober = Prober()
    /// Where the next ``check()`` goes on reading the current-pair index.
    let checkCursor = Mutex("")

    /// How long one database exchange may take before it counts as a failure.
    static let operationTimeout = Duration.seconds(10)
    /// How long an exchange waits before a direct connection checks whether the server can be
    /// reached at all (the pool keeps retrying a server that is down; the caller should not wait).
    static let probeAfter = Duration.milliseconds(750)

    /// The columns every key-pair query reads, in this order.
    static let columns = """
        id, organization, keystore_name, keystore_type, backend_key_reference, spec, public_key, \
        wrapped_private_key, encryption_context, created_at_us, reason, requested_by, is_current
        """

    private init(
        settings: PostgresStorageSettings,
        client: PostgresClient,
        connectionConfiguration: PostgresConnection.Configuration,
        logger: Logger
    ) {
        self.settings = settings
        self.connectionConfiguration = connectionConfiguration
        self.client = client
        self.logger = logger
        runTask = Task { await client.run() }
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        signals = stream
        listenTask = Task { await Self.listen(client, continuation: continuation, logger: logger) }
    }

    deinit {
        listenTask.cancel()
        runTask.cancel()
    }

    /// Connects, and creates or migrates the schema.
    /// - Throws: ``StoreError`` naming the server (never the password) and what to do.
    public static func open(_ settings: PostgresStorageSettings, logger: Logger) async throws(StoreError) -> PostgresKeyPairStore {
        let (configuration, connection) = try clientConfiguration(settings)
        // The pool logs each failed connection attempt; the store's errors say it once.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: configuration, backgroundLogger: poolLogger)
        let store = PostgresKeyPairStore(settings: settings, client: client, connectionConfiguration: connection, logger: logger)
        do {
            try await store.migrate()
        } catch {
            store.shutdown()
            throw error
        }
        return store
    }

    /// Closes the connections.
    public func shutdown() {
        listenTask.cancel()
        runTask.cancel()
    }

    static func clientConfiguration(
        _ settings: PostgresStorageSettings
    ) throws(StoreError) -> (PostgresClient.Configuration, PostgresConnection.Configuration) {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.minimumTLSVersion = .tlsv12
        switch settings.tls {
        case .disable, .prefer, .require: tlsConfiguration.certificateVerification = .none
        case .verifyCA: tlsConfiguration.certificateVerification = .noHostnameVerification
        case .verifyFull: tlsConfiguration.certificateVerification = .fullVerification
        }
        if let root = settings.rootCertificate {
            guard FileManager.default.isReadableFile(atPath: root.path) else {
                throw StoreError(.unavailable, "storage.postgres: the CA file \(root.path) (sslrootcert) cannot be read")
            }
            tlsConfiguration.trustRoots = .file(root.path)
        }
        let tls: PostgresClient.Configuration.TLS =
            switch settings.tls {
            case .disable: .disable
            case .prefer: .prefer(tlsConfiguration)
            case .require, .verifyCA, .verifyFull: .require(tlsConfiguration)
            }
        var configuration = PostgresClient.Configuration(
            host: settings.host,
            port: settings.port,
            username: settings.user,
            password: settings.password,
            database: settings.database,
            tls: tls
        )
        // One more than the queries get: LISTEN holds one for as long as it lasts.
        configuration.options.maximumConnections = settings.maxConnections + 1
        configuration.options.connectTimeout = settings.connectTimeout
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(10))
        let context: NIOSSLContext?
        do {
            context = settings.tls == .disable ? nil : try NIOSSLContext(configuration: tlsConfiguration)
        } catch {
            throw StoreError(.unavailable, "storage.postgres: the TLS settings cannot be used: \(error)")
        }
        let connectionTLS: PostgresConnection.Configuration.TLS =
            switch (settings.tls, context) {
            case (.prefer, let context?): .prefer(context)
            case (.require, let context?), (.verifyCA, let context?), (.verifyFull, let context?): .require(context)
            default: .disable
            }
        var connection = PostgresConnection.Configuration(
            host: settings.host,
            port: settings.port,
            username: settings.user,
            password: settings.password,
            database: settings.database,
            tls: connectionTLS
        )
        connection.options.connectTimeout = .seconds(Int64(settings.connectTimeout.components.seconds))
        return (configuration, connection)
    }

    /// Connects directly (not through the pool), and throws what stopped it; returns when the
    /// server can be reached.
    func probe() async throws {
        // One probe at a time for the whole store, its outcome reused for a second: a slow
        // database under load must not get one more connection per waiting exchange.
        try await prober.run { [connectionConfiguration] in
            let connection = try await PostgresConnection.connect(configuration: connectionConfiguration, id: 0, logger: Self.quiet)
            try? await connection.close()
        }
    }

    static let quiet = Logger(label: "keybroker.postgres.probe", factory: { _ in SwiftLogNoOpLogHandler() })

    struct Unreachable: Error {
        let cause: any Error
    }

    // MARK: running queries

    /// Runs `body` with a time limit, mapping every failure to a ``StoreError``.
    func run<T: Sendable>(_ action: String, _ body: @escaping @Sendable () async throws -> T) async throws(StoreError) -> T {
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: Self.operationTimeout)
                    throw TimedOut()
                }
                group.addTask { [self] in
                    // A server that cannot be reached fails the exchange now, with its cause.
                    try await Task.sleep(for: Self.probeAfter)
                    do {
                        try await probe()
                    } catch {
                        throw Unreachable(cause: error)
                    }
                    return nil
                }
                while let next = try await group.next() {
                    guard let value = next else { continue }
                    group.cancelAll()
                    return value
                }
                throw TimedOut()
            }
        } catch {
            throw map(error, while: action)
        }
    }

    /// Runs `body` in a transaction.
    func transaction<T: Sendable>(
        _ action: String,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        let logger = self.logger
        return try await run(action) { [client] in
            try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    func rows(_ action: String, _ query: PostgresQuery) async throws(StoreError) -> [PostgresRow] {
        let logger = self.logger
        return try await run(action) { [client] in try await client.query(query, logger: logger).collect() }
    }

    struct TimedOut: Error {}

    func map(_ error: any Error, while action: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? Unreachable { return map(error.cause, while: action) }
        if let error = error as? PostgresTransactionError {
            return map(error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError ?? TimedOut(), while: action)
        }
        let place = "PostgreSQL at \(settings.host):\(settings.port)/\(settings.database)"
        let cause: String
        if error is TimedOut {
            cause = "did not answer within \(Self.operationTimeout)"
        } else if let error = error as? PSQLError {
            if let info = error.serverInfo, let message = info[.message] {
                let state = info[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                cause = "answered: \(message)\(state)"
            } else if let underlying = error.underlying {
                cause = "cannot be reached: \(underlying)"
            } else {
                cause = "failed: \(error.code)"
            }
        } else if error is CancellationError {
            cause = "was not asked: the operation was cancelled"
        } else {
            cause = "failed: \(error)"
        }
        return StoreError(
            .unavailable,
            "\(place) \(DisplayText.escaped(cause)) while \(action); check that the server runs and that storage.postgres.url names it"
        )
    }

    // MARK: schema

    private func migrate() async throws(StoreError) {
        let known = PostgresSchema.migrations.map(\.version).max() ?? 0
        let found = try await transaction("creating or migrating the schema") { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", logger: self.logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS keybroker_schema (
                    version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                logger: self.logger
            )
            let rows = try await connection.query("SELECT COALESCE(MAX(version), 0) FROM keybroker_schema", logger: self.logger)
            var applied = 0
            for try await (version) in rows.decode(Int.self) { applied = version }
            guard applied <= known else { return applied }
            for migration in PostgresSchema.migrations where migration.version > applied {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO keybroker_schema (version, description) VALUES (\(migration.version), \(migration.description))",
                    logger: self.logger
                )
                self.logger.notice("migrated the PostgreSQL schema", metadata: ["version": "\(migration.version)"])
            }
            return applied
        }
        guard found <= known else {
            throw StoreError(
                .unavailable,
                "PostgreSQL database \(settings.database) has schema version \(found), newer than this KeyBroker knows (\(known)); run the newer version of keybroker"
            )
        }
    }

    // MARK: the change feed

    /// LISTEN on a connection of its own (held from the pool for as long as it lasts), and
    /// again after every failure; each (re)connection also signals, so that a reader reads
    /// what it may have missed while disconnected.
    private static func listen(_ client: PostgresClient, continuation: AsyncStream<Void>.Continuation, logger: Logger) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: PostgresSchema.channel) { notifications in
                        continuation.yield()
                        for try await _ in notifications { continuation.yield() }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.debug("LISTEN connection ended; trying again", metadata: ["error": "\(String(reflecting: error).prefix(200))"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
        continuation.finish()
    }

    /// Adds a change as the last statement of a writing transaction.
    static func recordChange(
        _ kind: StoreChange.Kind,
        _ organization: OrganizationID?,
        on connection: PostgresConnection,
        logger: Logger
    )
        async throws -> Int64
    {
        try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.changeFeedLock))", logger: logger)
        let rows = try await connection.query(
            "INSERT INTO store_change (kind, organization) VALUES (\(kind.rawValue), \(organization?.rawValue)) RETURNING seq",
            logger: logger
        )
        var sequence: Int64 = 0
        for try await (value) in rows.decode(Int64.self) { sequence = value }
        try await connection.query("SELECT pg_notify(\(PostgresSchema.channel), '')", logger: logger)
        return sequence
    }

    public func changeSignals() -> AsyncStream<Void>? { signals }

    public func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> StoreChanges {
        let limit = max(0, min(limit, 10_000))
        // The page first, the pruned mark after it: a prune that commits in between then says
        // so, instead of passing for a feed without gaps.
        let page = try await rows(
            "reading the change feed",
            "SELECT seq, kind, organization FROM store_change WHERE seq > \(sequence) ORDER BY seq LIMIT \(limit)"
        )
        let pruned = try await rows("reading the change feed", "SELECT through FROM store_change_pruned WHERE id = 1")
        let through =
            try pruned.first.map { row throws(StoreError) in try PostgresCells(row, describing: "the change feed").integer(0) } ?? 0
        var changes: [StoreChange] = []
        for row in page {
            let cells = PostgresCells(row, describing: "the change feed")
            let seq = try cells.integer(0)
            // A change that cannot be read is taken as a reload, which drops everything.
            let kind = (try? cells.text(1)).flatMap(StoreChange.Kind.init(rawValue:))
            let organization = (try? cells.optionalText(2)).flatMap { $0 }.flatMap(OrganizationID.init)
            changes.append(StoreChange(sequence: seq, kind: kind ?? .reload, organization: kind == nil ? nil : organization))
        }
        return StoreChanges(after: sequence, changes: changes, prunedThrough: through)
    }

    public func latestChange() async throws(StoreError) -> Int64 {
        let found = try await rows(
            "reading the change feed",
            """
            SELECT GREATEST(COALESCE((SELECT MAX(seq) FROM store_change), 0),
                COALESCE((SELECT through FROM store_change_pruned WHERE id = 1), 0))::bigint
            """
        )
        return try found.first.map { row throws(StoreError) in try PostgresCells(row, describing: "the change feed").integer(0) } ?? 0
    }

    public func recordChange(_ kind: StoreChange.Kind, organization: OrganizationID?) async throws(StoreError) -> Int64 {
        let logger = self.logger
        return try await transaction("recording a change") { connection in
            try await Self.recordChange(kind, organization, on: connection, logger: logger)
        }
    }

    public func pruneChanges(olderThan age: Duration) async throws(StoreError) {
        let microseconds = age.saturatingMicroseconds
        let logger = self.logger
        try await transaction("pruning the change feed") { connection in
            let found = try await connection.query(
                "SELECT MAX(seq) FROM store_change WHERE at < clock_timestamp() - \(microseconds) * interval '1 microsecond'",
                logger: logger
            )
            var through: Int64?
            for try await (value) in found.decode(Int64?.self) { through = value }
            guard let through else { return }
            try await connection.query("DELETE FROM store_change WHERE seq <= \(through)", logger: logger)
            try await connection.query(
                """
                INSERT INTO store_change_pruned (id, through) VALUES (1, \(through))
                ON CONFLICT (id) DO UPDATE SET through = GREATEST(store_change_pruned.through, EXCLUDED.through)
                """,
                logger: logger
            )
        }
    }

    // MARK: leases

    public func acquireLease(_ name: String, holder: String, for duration: Duration) async throws(StoreError) -> LeaseGrant? {
        let microseconds = max(1, duration.saturatingMicroseconds)
        let logger = self.logger
        return try await transaction("taking the \(name) lease") { connection -> LeaseGrant? in
            let found = try await connection.query(
                "SELECT holder, epoch, expires_at > clock_timestamp() FROM lease WHERE name = \(name) FOR UPDATE",
                logger: logger
            )
            var current: (holder: String, epoch: Int64, running: Bool)?
            for try await (heldBy, epoch, running) in found.decode((String, Int64, Bool).self) { current = (heldBy, epoch, running) }
            guard let current else {
                let inserted = try await connection.query(
                    """
                    INSERT INTO lease (name, holder, epoch, expires_at)
                    VALUES (\(name), \(holder), 1, clock_timestamp() + \(microseconds) * interval '1 microsecond')
                    ON CONFLICT (name) DO NOTHING RETURNING epoch
                    """,
                    logger: logger
                ).collect()
                return inserted.isEmpty ? nil : LeaseGrant(fence: LeaseFence(name: name, holder: holder, epoch: 1), isNew: true)
            }
            if current.running, current.holder != holder { return nil }
            let renewing = current.running && current.holder == holder
            let epoch = renewing ? current.epoch : current.epoch &+ 1
            try await connection.query(
                """
                UPDATE lease SET holder = \(holder), epoch = \(epoch),
                    expires_at = clock_timestamp() + \(microseconds) * interval '1 microsecond'
                WHERE name = \(name)
                """,
                logger: logger
            )
            return LeaseGrant(fence: LeaseFence(name: name, holder: holder, epoch: epoch), isNew: !renewing)
        }
    }

    public func releaseLease(_ name: String, holder: String) async throws(StoreError) {
        _ = try await rows(
            "releasing the \(name) lease",
            "UPDATE lease SET expires_at = clock_timestamp() WHERE name = \(name) AND holder = \(holder)"
        )
    }

    /// Whether `fence` holds now, with the lease row locked until the commit.
    static func holds(_ fence: LeaseFence, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let rows = try await connection.query(
            """
            SELECT 1 FROM lease WHERE name = \(fence.name) AND holder = \(fence.holder) AND epoch = \(fence.epoch)
                AND expires_at > clock_timestamp() FOR SHARE
            """,
            logger: logger
        ).collect()
        return !rows.isEmpty
    }
}

/// Shares one connection probe among all the exchanges that wait on the pool.
actor Prober {
    private var running: Task<Void, any Error>?
    private var last: (at: ContinuousClock.Instant, error: (any Error)?)?

    func run(_ probe: @escaping @Sendable () async throws -> Void) async throws {
        if let last, ContinuousClock.now - last.at < .seconds(1) {
            if let error = last.error { throw error }
            return
        }
        let task = running ?? Task { try await probe() }
        running = task
        do {
            try await task.value
            last = (.now, nil)
        } catch {
            last = (.now, error)
            running = nil
            throw error
        }
        running = nil
    }
}
