public import Foundation
import GRDB
public import KeyBroker
import Synchronization

/// A ``KeyPairStore`` in one SQLite file, through GRDB, in WAL mode (readers never wait
/// for the writer).
///
/// - A partial unique index allows one current pair per organization, so the invariant holds
///   even when the CLI and a server write to the same file at once; inserting a new current
///   pair clears the old flag and inserts in one transaction.
/// - Every commit is synced (`PRAGMA synchronous = FULL`): a pair whose public key was handed
///   out survives a power cut.
/// - The file is checked before each write and in ``check()``: one deleted or replaced while
///   the store has it open is refused (see ``SQLiteDatabaseFile``).
/// - Rows are decoded with strict type checks: a wrong-typed value is a corrupt record, never
///   a crash.
public final class SQLiteKeyPairStore: KeyPairStore {
    private let pool: DatabasePool
    private let url: URL
    /// An open descriptor of the database file, to tell whether the path still names it.
    private let descriptor: Int32
    /// The write-ahead log's identity once the pool made it: committed transactions live there
    /// until a checkpoint, so a deleted log loses them as surely as a deleted database.
    private let walIdentity: SQLiteDatabaseFile.Identity?
    /// Where the next ``check()`` goes on reading the current-pair index.
    private let checkCursor = Mutex("")

    /// The columns every query reads, in this order.
    static let columns = """
        seq, id, organization, keystore_name, keystore_type, backend_key_reference, spec, public_key, \
        wrapped_private_key, encryption_context, created_at_us, reason, requested_by, is_current
        """

    /// Opens the database at `url`.
    /// - Parameters:
    ///   - url: the database file.
    ///   - createIfMissing: whether a missing file may be created (with the schema); an
    ///     existing empty or schema-less file is refused either way.
    ///   - readOnly: open an existing file without creating or migrating anything (for
    ///     `config validate`, which must change nothing).
    /// - Throws: ``StoreError`` naming the file and what to do.
    public init(url: URL, createIfMissing: Bool, readOnly: Bool = false) throws(StoreError) {
        self.url = url
        try SQLiteDatabaseFile.prepare(url, createIfMissing: createIfMissing && !readOnly, migrator: Self.migrator)
        let descriptor = open(url.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw SQLiteDatabaseFile.unavailable(url, "cannot be opened: \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: url.path, configuration: configuration)
        } catch {
            close(descriptor)
            throw SQLiteErrors.map(error, file: url, while: "opening the database")
        }
        self.pool = pool
        walIdentity = readOnly ? nil : try? SQLiteDatabaseFile.identity(at: URL(fileURLWithPath: url.path + "-wal"))
        try finishOpening(readOnly: readOnly)
    }

    /// Checks the schema, migrates, and raises durability, after the pool is open.
    private func finishOpening(readOnly: Bool) throws(StoreError) {
        if readOnly {
            let migrated: Bool
            do {
                migrated = try pool.read { db in try Self.migrator.hasCompletedMigrations(db) }
            } catch {
                throw SQLiteErrors.map(error, file: url, while: "reading the schema version")
            }
            guard migrated else {
                throw SQLiteDatabaseFile.unavailable(
                    url,
                    "has an older schema than this version writes; open it once with a command that writes (e.g. keybroker status) to migrate it"
                )
            }
        } else {
            do {
                try Self.migrator.migrate(pool)
                // GRDB sets NORMAL when it switches the writer to WAL, after prepareDatabase
                // runs, so FULL is set here, on the one writer connection, and read back.
                try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            } catch {
                throw SQLiteErrors.map(error, file: url, while: "preparing the database")
            }
            guard (try? synchronousMode()) == 2 else {
                throw SQLiteDatabaseFile.unavailable(url, "does not accept PRAGMA synchronous = FULL, so commits could not be made durable")
            }
        }
        try checkIdentity()
    }

    /// Opens the database `storage.sqlite` names.
    /// - Parameter readOnly: open an existing file without creating or migrating anything.
    public convenience init(_ settings: SQLiteStorageSettings, readOnly: Bool = false) throws(StoreError) {
        try self.init(url: settings.path, createIfMissing: settings.createIfMissing, readOnly: readOnly)
    }

    /// Opens the database of `loaded`. A missing database is created only where
    /// `storage.sqlite.createIfMissing` allows it **and** no configured keystore shows prior
    /// use (``Keystore/priorUseEvidence()``): a master key file next to a missing database
    /// means the database was lost, not that this is a new deployment.
    /// - Parameter readOnly: open an existing file without creating or migrating anything.
    public static func make(for loaded: LoadedConfig, readOnly: Bool = false) async throws(StoreError) -> SQLiteKeyPairStore? {
        guard case .sqlite(let settings) = loaded.config.storage else { return nil }
        let path = settings.path.path
        if settings.createIfMissing, !readOnly, !(await BlockingWork.io { FileManager.default.fileExists(atPath: path) }) {
            for name in loaded.keystores.keys.sorted() {
                guard let evidence = await loaded.keystores[name]?.priorUseEvidence() else { continue }
                throw SQLiteDatabaseFile.unavailable(
                    settings.path,
                    "does not exist, but keystore '\(name)' was used before (\(evidence)): KeyBroker ran here, and its key pairs were in that file. Restore it from a backup (or mount the volume that holds it). A new, empty database would give every organization a new pair and strand every recording made before, so KeyBroker does not create one. Only to start over for good, move the keystore's key files away too"
                )
            }
        }
        return try await BlockingWork.io { () throws(StoreError) in try SQLiteKeyPairStore(settings, readOnly: readOnly) }
    }

    deinit { close(descriptor) }

    /// The writer's `PRAGMA synchronous` (2 is FULL: every commit synced).
    public func synchronousMode() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: key pairs") { db in
            try db.execute(
                sql: """
                    CREATE TABLE key_pair (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        organization TEXT NOT NULL,
                        keystore_name TEXT NOT NULL,
                        keystore_type TEXT NOT NULL,
                        backend_key_reference TEXT,
                        spec TEXT NOT NULL,
                        public_key BLOB NOT NULL,
                        wrapped_private_key BLOB NOT NULL,
                        encryption_context TEXT NOT NULL,
                        created_at_us INTEGER NOT NULL,
                        reason TEXT NOT NULL,
                        requested_by TEXT NOT NULL,
                        is_current INTEGER NOT NULL DEFAULT 0 CHECK (is_current IN (0, 1))
                    );
                    CREATE UNIQUE INDEX key_pair_one_current_per_org ON key_pair(organization) WHERE is_current = 1;
                    CREATE INDEX key_pair_by_org ON key_pair(organization, created_at_us DESC, seq DESC);
                    """
            )
        }
        migrator.registerMigration("v2: tenants' key configurations, indexes and usage for a million organizations") { db in
            // Each organization's own key configuration (the tenant layer), and what a rotation
            // pass and the status read, as index ranges: current pairs by cadence and age (due
            // for rotation; `rotation_class` is the tenant's cadence when the pair was made, ''
            // when the operator's file decides) and by keystore (moved by a configuration
            // change). And the
            // keystores' usage, kept by triggers as rows are written, changed or deleted (by
            // KeyBroker or anyone else with the file), so that opening the store and every
            // reload read a handful of rows instead of grouping the whole history.
            try db.execute(
                sql: """
                    ALTER TABLE key_pair ADD COLUMN rotation_class TEXT NOT NULL DEFAULT '';
                    CREATE INDEX key_pair_current_by_age ON key_pair(rotation_class, created_at_us, organization) WHERE is_current = 1;
                    CREATE INDEX key_pair_current_by_keystore ON key_pair(keystore_name, organization) WHERE is_current = 1;
                    CREATE TABLE key_configuration (
                        organization TEXT PRIMARY KEY NOT NULL,
                        type TEXT NOT NULL,
                        key_alias TEXT,
                        rotation TEXT NOT NULL,
                        key_pair_spec TEXT,
                        version INTEGER NOT NULL,
                        updated_at_us INTEGER NOT NULL,
                        updated_by TEXT NOT NULL,
                        last_error_code TEXT,
                        last_error_message TEXT,
                        last_error_at_us INTEGER
                    ) WITHOUT ROWID;
                    CREATE TABLE keystore_use (
                        keystore_name NOT NULL,
                        keystore_type NOT NULL,
                        pairs INTEGER NOT NULL,
                        current_pairs INTEGER NOT NULL,
                        PRIMARY KEY (keystore_name, keystore_type)
                    ) WITHOUT ROWID;
                    INSERT INTO keystore_use (keystore_name, keystore_type, pairs, current_pairs)
                        SELECT keystore_name, keystore_type, COUNT(*), TOTAL(is_current = 1) FROM key_pair GROUP BY keystore_name, keystore_type;
                    CREATE TRIGGER key_pair_use_insert AFTER INSERT ON key_pair BEGIN
                        INSERT INTO keystore_use (keystore_name, keystore_type, pairs, current_pairs)
                            VALUES (NEW.keystore_name, NEW.keystore_type, 1, NEW.is_current = 1)
                            ON CONFLICT (keystore_name, keystore_type) DO UPDATE SET
                                pairs = pairs + 1, current_pairs = current_pairs + (NEW.is_current = 1);
                    END;
                    CREATE TRIGGER key_pair_use_update AFTER UPDATE OF keystore_name, keystore_type, is_current ON key_pair BEGIN
                        UPDATE keystore_use SET pairs = pairs - 1, current_pairs = current_pairs - (OLD.is_current = 1)
                            WHERE keystore_name = OLD.keystore_name AND keystore_type = OLD.keystore_type;
                        INSERT INTO keystore_use (keystore_name, keystore_type, pairs, current_pairs)
                            VALUES (NEW.keystore_name, NEW.keystore_type, 1, NEW.is_current = 1)
                            ON CONFLICT (keystore_name, keystore_type) DO UPDATE SET
                                pairs = pairs + 1, current_pairs = current_pairs + (NEW.is_current = 1);
                        DELETE FROM keystore_use WHERE pairs <= 0;
                    END;
                    CREATE TRIGGER key_pair_use_delete AFTER DELETE ON key_pair BEGIN
                        UPDATE keystore_use SET pairs = pairs - 1, current_pairs = current_pairs - (OLD.is_current = 1)
                            WHERE keystore_name = OLD.keystore_name AND keystore_type = OLD.keystore_type;
                        DELETE FROM keystore_use WHERE pairs <= 0;
                    END;
                    """
            )
        }
        migrator.registerMigration("v3: revocations, the change feed and leases") { db in
            // What processes sharing the file coordinate through: revoked organizations, the
            // feed of changes that others act on (written in the transaction of each change),
            // and leases with an epoch for fencing, on the database's clock.
            try db.execute(
                sql: """
                    CREATE TABLE revocation (
                        organization TEXT PRIMARY KEY NOT NULL,
                        revoked_at_us INTEGER NOT NULL,
                        revoked_by TEXT NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE store_change (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        kind TEXT NOT NULL,
                        organization TEXT,
                        at_us INTEGER NOT NULL
                    );
                    CREATE TABLE lease (
                        name TEXT PRIMARY KEY NOT NULL,
                        holder TEXT NOT NULL,
                        epoch INTEGER NOT NULL,
                        expires_at_us INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE store_change_pruned (id INTEGER PRIMARY KEY CHECK (id = 1), through INTEGER NOT NULL);
                    """
            )
        }
        return migrator
    }

    /// The database's clock in microseconds since 1970 (one host: the same clock for every
    /// process that shares the file).
    static let nowMicroseconds = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"

    /// Refuses to go on when the path no longer names the file the store has open, or the
    /// write-ahead log was deleted or replaced. Runs on GRDB's queues (a `stat` on a stalled
    /// mount must not block the cooperative pool).
    private func checkIdentity() throws(StoreError) {
        let open = try SQLiteDatabaseFile.identity(of: descriptor, url: url)
        let now = try SQLiteDatabaseFile.identity(at: url)
        guard open == now else { throw SQLiteDatabaseFile.replacedError(url) }
        if let walIdentity {
            let wal = URL(fileURLWithPath: url.path + "-wal")
            guard (try? SQLiteDatabaseFile.identity(at: wal)) == walIdentity else {
                throw SQLiteDatabaseFile.unavailable(
                    wal,
                    "(the write-ahead log) was deleted or replaced while KeyBroker had it open; pairs committed since the last checkpoint would be lost at the next restart, so the store refuses new ones. Restart keybroker after checking the database"
                )
            }
        }
    }

    /// Reads in a transaction; `body` decodes inside it (rows are not Sendable), and a
    /// ``StoreError`` it throws comes out unchanged.
    private func read<T: Sendable>(_ action: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(StoreError) -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw SQLiteErrors.map(error, file: url, while: action)
        }
    }

    private static func arguments(of record: KeyPairRecord) -> StatementArguments {
        [
            record.id.uuidString.lowercased(), record.organization.rawValue, record.keystoreName,
            record.keystoreType, record.backendKeyReference, record.spec.rawValue, record.publicKeyDER,
            record.wrappedPrivateKey, String(decoding: record.encryptionContext.canonicalBytes, as: UTF8.self),
            SQLiteRow.microseconds(record.createdAt), record.reason.rawValue, record.requestedBy,
        ]
    }

    public func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) {
        let arguments = Self.arguments(of: record)
        do {
            try await pool.writeWithoutTransaction { db in
                // A write into a deleted or replaced file would be lost at the next restart:
                // checked before the transaction, and again after its commit, so that a pair
                // committed into a file replaced meanwhile is never reported as stored.
                try self.checkIdentity()
                try db.inTransaction {
                    try self.insert(record, arguments: arguments, in: db)
                    return .commit
                }
                try self.checkIdentity()
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "storing key pair \(record.id.uuidString.lowercased())")
        }
    }

    private static func recordChange(_ kind: StoreChange.Kind, _ organization: OrganizationID?, in db: Database) throws {
        try db.execute(
            sql: "INSERT INTO store_change (kind, organization, at_us) VALUES (?, ?, \(nowMicroseconds))",
            arguments: [kind.rawValue, organization?.rawValue]
        )
    }

    private func insert(_ record: KeyPairRecord, arguments: StatementArguments, in db: Database) throws {
        try Self.recordChange(.currentPair, record.organization, in: db)
        try db.execute(
            sql: "UPDATE key_pair SET is_current = 0 WHERE organization = ? AND is_current = 1",
            arguments: [record.organization.rawValue]
        )
        try db.execute(
            sql: """
                INSERT INTO key_pair (id, organization, keystore_name, keystore_type, backend_key_reference, spec,
                    public_key, wrapped_private_key, encryption_context, created_at_us, reason, requested_by, is_current,
                    rotation_class)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1,
                    COALESCE((SELECT rotation FROM key_configuration WHERE organization = ?), ''))
                """,
            arguments: arguments + [record.organization.rawValue]
        )
    }

    public func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord? {
        try await read("reading the current key pair of organization '\(organization)'") { db in
            try Row.fetchOne(
                db,
                sql: "SELECT \(Self.columns) FROM key_pair WHERE organization = ? AND is_current = 1",
                arguments: [organization.rawValue]
            ).map { row in try SQLiteRow(row).record() }
        }
    }

    public func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair? {
        try await read("reading key pair \(id.uuidString.lowercased())") { db in
            try Row.fetchOne(
                db,
                sql: "SELECT \(Self.columns) FROM key_pair WHERE id = ? AND organization = ?",
                arguments: [id.uuidString.lowercased(), organization.rawValue]
            ).map { row in try SQLiteRow(row).stored() }
        }
    }

    public func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair] {
        try await read("reading the key-pair history of organization '\(organization)'") { db in
            try Row.fetchAll(
                db,
                sql: "SELECT \(Self.columns) FROM key_pair WHERE organization = ? ORDER BY created_at_us DESC, seq DESC LIMIT ? OFFSET ?",
                arguments: [organization.rawValue, limit, offset]
            ).map { row in try SQLiteRow(row).stored() }
        }
    }

    public func currentPairs(_ query: CurrentPairQuery, limit: Int) async throws(StoreError) -> CurrentPairs {
        let limit = max(0, min(limit, 100_000))
        // One more than the page, to tell whether another follows.
        let (sql, arguments): (String, StatementArguments)
        switch query {
        case .byOrganization(let after):
            sql = """
                SELECT \(Self.columns) FROM key_pair INDEXED BY key_pair_one_current_per_org
                WHERE is_current = 1 AND organization > ? ORDER BY organization LIMIT ?
                """
            arguments = [after ?? "", limit + 1]
        case .wrappedBy(let keystore, let after):
            sql = """
                SELECT \(Self.columns) FROM key_pair INDEXED BY key_pair_current_by_keystore
                WHERE is_current = 1 AND keystore_name = ? AND organization > ? ORDER BY organization LIMIT ?
                """
            arguments = [keystore, after ?? "", limit + 1]
        case .createdAtOrBefore(let threshold, let cadence, let after):
            // Row values compare (created, organization) as one key, which the index orders.
            sql = """
                SELECT \(Self.columns) FROM key_pair INDEXED BY key_pair_current_by_age
                WHERE is_current = 1 AND rotation_class = ? AND created_at_us <= ? AND (created_at_us, organization) > (?, ?)
                ORDER BY created_at_us, organization LIMIT ?
                """
            arguments = [
                cadence?.rawValue ?? "", SQLiteRow.microseconds(threshold), after?.createdAtMicroseconds ?? Int64.min,
                after?.organization ?? "", limit + 1,
            ]
        }
        return try await read("reading a page of current key pairs") { db in
            let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
            let page = rows.prefix(limit)
            var records: [KeyPairRecord] = []
            var corrupt: [CorruptKeyPair] = []
            for row in page {
                let reader = SQLiteRow(row)
                do throws(StoreError) {
                    records.append(try reader.record())
                } catch {
                    corrupt.append(reader.corruptReport(error))
                }
            }
            // The cursor is the last row's stored key, whatever else in it is damaged; a key
            // that is not text cannot continue the range, and ends it rather than loop.
            guard rows.count > limit, let last = page.last,
                let organization = (try? last.decode(DatabaseValue.self, forColumn: "organization")).flatMap({
                    String.fromDatabaseValue($0)
                })
            else {
                return CurrentPairs(records: records, corrupt: corrupt, next: nil)
            }
            let created = (try? last.decode(DatabaseValue.self, forColumn: "created_at_us")).flatMap { Int64.fromDatabaseValue($0) }
            let next = query.continuing(afterOrganization: organization, createdAtMicroseconds: created)
            return CurrentPairs(records: records, corrupt: corrupt, next: next)
        }
    }

    public func insertCurrent(_ record: KeyPairRecord, if condition: InsertCondition) async throws(StoreError) -> InsertOutcome {
        let arguments = Self.arguments(of: record)
        do {
            return try await pool.writeWithoutTransaction { db in
                try self.checkIdentity()
                var outcome = InsertOutcome.stored
                try db.inTransaction(.immediate) {
                    if let fence = condition.fence, !(try Self.holds(fence, in: db)) {
                        outcome = .leaseLost
                        return .rollback
                    }
                    if condition.unlessRevoked, try Self.isRevoked(record.organization, in: db) {
                        outcome = .revoked
                        return .rollback
                    }
                    if let version = condition.configurationVersion, try Self.storedVersion(of: record.organization, in: db) != version {
                        outcome = .configurationChanged
                        return .rollback
                    }
                    if let replacing = condition.replacing {
                        let current = try String.fetchOne(
                            db,
                            sql: "SELECT id FROM key_pair WHERE organization = ? AND is_current = 1",
                            arguments: [record.organization.rawValue]
                        )
                        guard current == replacing?.uuidString.lowercased() else {
                            outcome = .currentChanged
                            return .rollback
                        }
                    }
                    try self.insert(record, arguments: arguments, in: db)
                    return .commit
                }
                try self.checkIdentity()
                return outcome
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "storing key pair \(record.id.uuidString.lowercased())")
        }
    }

    private static func holds(_ fence: LeaseFence, in db: Database) throws -> Bool {
        try Bool.fetchOne(
            db,
            sql: "SELECT 1 FROM lease WHERE name = ? AND holder = ? AND epoch = ? AND expires_at_us > \(nowMicroseconds)",
            arguments: [fence.name, fence.holder, fence.epoch]
        ) != nil
    }

    // MARK: revocation

    private static func isRevoked(_ organization: OrganizationID, in db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM revocation WHERE organization = ?", arguments: [organization.rawValue]) != nil
    }

    public func revocation(of organization: OrganizationID) async throws(StoreError) -> Revocation? {
        try await read("reading whether organization '\(organization)' is revoked") { db in
            try Row.fetchOne(
                db,
                sql: "SELECT organization, revoked_at_us, revoked_by FROM revocation WHERE organization = ?",
                arguments: [organization.rawValue]
            ).flatMap(Self.revocation)
        }
    }

    /// A revocation row; one that cannot be read still revokes (fail closed).
    private static func revocation(_ row: Row) -> Revocation? {
        guard let name = (try? row.decode(DatabaseValue.self, forColumn: "organization")).flatMap({ String.fromDatabaseValue($0) }),
            let organization = OrganizationID(name)
        else { return nil }
        let at = (try? row.decode(DatabaseValue.self, forColumn: "revoked_at_us")).flatMap { Int64.fromDatabaseValue($0) } ?? 0
        return Revocation(
            organization: organization,
            revokedAt: SQLiteRow.date(microseconds: at) ?? Date(timeIntervalSince1970: 0),
            revokedBy: SQLiteRow.printable(row, "revoked_by")
        )
    }

    public func setRevocation(_ revocation: Revocation?, for organization: OrganizationID) async throws(StoreError) -> Bool {
        do {
            return try await pool.writeWithoutTransaction { db in
                try self.checkIdentity()
                var changed = false
                try db.inTransaction(.immediate) {
                    if let revocation {
                        try db.execute(
                            sql: "INSERT OR IGNORE INTO revocation (organization, revoked_at_us, revoked_by) VALUES (?, ?, ?)",
                            arguments: [organization.rawValue, SQLiteRow.microseconds(revocation.revokedAt), revocation.revokedBy]
                        )
                    } else {
                        try db.execute(sql: "DELETE FROM revocation WHERE organization = ?", arguments: [organization.rawValue])
                    }
                    changed = db.changesCount > 0
                    guard changed else { return .rollback }
                    try Self.recordChange(.revocation, organization, in: db)
                    return .commit
                }
                try self.checkIdentity()
                return changed
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "changing the revocation of organization '\(organization)'")
        }
    }

    public func revokedOrganizations(after: String?, limit: Int) async throws(StoreError) -> RevocationPage {
        let limit = max(1, min(limit, 100_000))
        return try await read("reading the revoked organizations") { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT organization, revoked_at_us, revoked_by FROM revocation WHERE organization > ? ORDER BY organization LIMIT ?",
                arguments: [after ?? "", limit]
            )
            let next = rows.count == limit ? rows.last.map { SQLiteRow.printable($0, "organization") } : nil
            return RevocationPage(revocations: rows.compactMap(Self.revocation), next: next)
        }
    }

    // MARK: change feed and leases

    public func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> StoreChanges {
        try await read("reading the change feed") { db in
            let pruned = try Int64.fetchOne(db, sql: "SELECT through FROM store_change_pruned WHERE id = 1") ?? 0
            let changes = try Row.fetchAll(
                db,
                sql: "SELECT seq, kind, organization FROM store_change WHERE seq > ? ORDER BY seq LIMIT ?",
                arguments: [sequence, max(0, limit)]
            ).map { row in
                let sequence = (try? row.decode(DatabaseValue.self, forColumn: "seq")).flatMap { Int64.fromDatabaseValue($0) } ?? 0
                let kind = StoreChange.Kind(rawValue: SQLiteRow.printable(row, "kind"))
                let organization = (try? row.decode(DatabaseValue.self, forColumn: "organization"))
                    .flatMap { String.fromDatabaseValue($0) }.flatMap { OrganizationID($0) }
                // A change that cannot be read is taken as a reload, which drops everything.
                return StoreChange(sequence: sequence, kind: kind ?? .reload, organization: kind == nil ? nil : organization)
            }
            return StoreChanges(after: sequence, changes: changes, prunedThrough: pruned)
        }
    }

    public func latestChange() async throws(StoreError) -> Int64 {
        try await read("reading the change feed") { db in
            try Int64.fetchOne(
                db,
                sql:
                    "SELECT MAX(COALESCE((SELECT MAX(seq) FROM store_change), 0), COALESCE((SELECT through FROM store_change_pruned WHERE id = 1), 0))"
            ) ?? 0
        }
    }

    public func recordChange(_ kind: StoreChange.Kind, organization: OrganizationID?) async throws(StoreError) -> Int64 {
        do {
            return try await pool.write { db in
                try Self.recordChange(kind, organization, in: db)
                return db.lastInsertedRowID
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "recording a change")
        }
    }

    public func pruneChanges(olderThan age: Duration) async throws(StoreError) {
        let ageMicroseconds = age.saturatingMicroseconds
        do {
            try await pool.write { db in
                let cutoff = "\(Self.nowMicroseconds) - ?"
                guard
                    let through = try Int64.fetchOne(
                        db,
                        sql: "SELECT MAX(seq) FROM store_change WHERE at_us < \(cutoff)",
                        arguments: [ageMicroseconds]
                    )
                else { return }
                try db.execute(sql: "DELETE FROM store_change WHERE seq <= ?", arguments: [through])
                try db.execute(
                    sql:
                        "INSERT INTO store_change_pruned (id, through) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET through = excluded.through",
                    arguments: [through]
                )
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "pruning the change feed")
        }
    }

    public func changeSignals() -> AsyncStream<Void>? { nil }

    public func acquireLease(_ name: String, holder: String, for duration: Duration) async throws(StoreError) -> LeaseGrant? {
        let durationMicroseconds = max(1, duration.saturatingMicroseconds)
        do {
            return try await pool.write { db -> LeaseGrant? in
                let now = try Int64.fetchOne(db, sql: "SELECT \(Self.nowMicroseconds)") ?? 0
                let row = try Row.fetchOne(db, sql: "SELECT holder, epoch, expires_at_us FROM lease WHERE name = ?", arguments: [name])
                let heldBy = row.map { SQLiteRow.printable($0, "holder") }
                let epoch =
                    row.flatMap { (try? $0.decode(DatabaseValue.self, forColumn: "epoch")).flatMap { Int64.fromDatabaseValue($0) } } ?? 0
                let expires =
                    row.flatMap { (try? $0.decode(DatabaseValue.self, forColumn: "expires_at_us")).flatMap { Int64.fromDatabaseValue($0) } }
                    ?? 0
                let running = expires > now
                if running, heldBy != holder { return nil }
                let renewing = running && heldBy == holder
                let newEpoch = renewing ? epoch : epoch &+ 1
                try db.execute(
                    sql: """
                        INSERT INTO lease (name, holder, epoch, expires_at_us) VALUES (?, ?, ?, ?)
                        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch, expires_at_us = excluded.expires_at_us
                        """,
                    arguments: [name, holder, newEpoch, now &+ durationMicroseconds]
                )
                return LeaseGrant(fence: LeaseFence(name: name, holder: holder, epoch: newEpoch), isNew: !renewing)
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "taking the \(name) lease")
        }
    }

    public func releaseLease(_ name: String, holder: String) async throws(StoreError) {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "UPDATE lease SET expires_at_us = \(Self.nowMicroseconds) WHERE name = ? AND holder = ?",
                    arguments: [name, holder]
                )
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "releasing the \(name) lease")
        }
    }

    /// The stored configuration's version, 0 when none (or when the column is not a sane integer).
    private static func storedVersion(of organization: OrganizationID, in db: Database) throws -> Int {
        try Int.fetchOne(
            db,
            sql:
                "SELECT version FROM key_configuration WHERE organization = ? AND typeof(version) = 'integer' AND version BETWEEN 1 AND 2147483646",
            arguments: [organization.rawValue]
        ) ?? 0
    }

    public func keyConfiguration(for organization: OrganizationID) async throws(StoreError) -> StoredKeyConfiguration? {
        try await read("reading the key configuration of organization '\(organization)'") { db in
            try Self.keyConfiguration(for: organization, in: db)
        }
    }

    private static func keyConfiguration(for organization: OrganizationID, in db: Database) throws -> StoredKeyConfiguration? {
        try Row.fetchOne(
            db,
            sql: "SELECT \(SQLiteKeyConfigurationRow.columns) FROM key_configuration WHERE organization = ?",
            arguments: [organization.rawValue]
        ).map { row in try SQLiteKeyConfigurationRow(row: row, organization: organization).configuration() }
    }

    public func saveKeyConfiguration(
        _ configuration: TenantKeyConfiguration,
        for organization: OrganizationID,
        expectedVersion: Int?,
        updatedBy: String,
        at time: Date,
        newPair: KeyPairRecord
    ) async throws(StoreError) -> KeyConfigurationSave {
        let pairArguments = Self.arguments(of: newPair)
        do {
            return try await pool.writeWithoutTransaction { db in
                try self.checkIdentity()
                var outcome = KeyConfigurationSave.conflict(storedVersion: 0)
                try db.inTransaction {
                    let stored = try Self.storedVersion(of: organization, in: db)
                    if let expectedVersion, expectedVersion != stored {
                        outcome = .conflict(storedVersion: stored)
                        return .rollback
                    }
                    if try Self.isRevoked(organization, in: db) {
                        outcome = .revoked
                        return .rollback
                    }
                    let saved = StoredKeyConfiguration(
                        organization: organization,
                        configuration: configuration,
                        version: stored + 1,
                        updatedAt: Broker.storagePrecision(time),
                        updatedBy: updatedBy,
                        lastError: nil
                    )
                    try db.execute(
                        sql: """
                            INSERT INTO key_configuration (organization, type, key_alias, rotation, key_pair_spec, version,
                                updated_at_us, updated_by, last_error_code, last_error_message, last_error_at_us)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)
                            ON CONFLICT (organization) DO UPDATE SET type = excluded.type, key_alias = excluded.key_alias,
                                rotation = excluded.rotation, key_pair_spec = excluded.key_pair_spec, version = excluded.version,
                                updated_at_us = excluded.updated_at_us, updated_by = excluded.updated_by,
                                last_error_code = NULL, last_error_message = NULL, last_error_at_us = NULL
                            """,
                        arguments: [
                            organization.rawValue, configuration.type, configuration.keyAlias, configuration.rotation?.rawValue ?? "",
                            configuration.keyPairSpec?.rawValue, saved.version, SQLiteRow.microseconds(saved.updatedAt), updatedBy,
                        ]
                    )
                    try self.insert(newPair, arguments: pairArguments, in: db)
                    try Self.recordChange(.keyConfiguration, organization, in: db)
                    outcome = .saved(saved)
                    return .commit
                }
                try self.checkIdentity()
                return outcome
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "storing the key configuration of organization '\(organization)'")
        }
    }

    public func recordKeyConfigurationError(_ error: KeyConfigurationError?, for organization: OrganizationID) async throws(StoreError) {
        do {
            try await pool.write { db in
                try db.execute(
                    sql:
                        "UPDATE key_configuration SET last_error_code = ?, last_error_message = ?, last_error_at_us = ? WHERE organization = ?",
                    arguments: [
                        error?.code, error.map { String($0.message.prefix(2000)) }, error.map { SQLiteRow.microseconds($0.at) },
                        organization.rawValue,
                    ]
                )
            }
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "recording the last error of organization '\(organization)'")
        }
    }

    public func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] {
        try await read("reading which keystores the stored key pairs need") { db in
            // Printable whatever their stored type, so that one damaged row cannot hide which
            // keystore the others need.
            try Row.fetchAll(
                db,
                sql:
                    "SELECT keystore_name, keystore_type, pairs, current_pairs FROM keystore_use WHERE pairs > 0 ORDER BY keystore_name, keystore_type"
            ).map { row in
                KeystoreUsage(
                    keystoreName: SQLiteRow.printable(row, "keystore_name"),
                    keystoreType: SQLiteRow.printable(row, "keystore_type"),
                    pairs: Self.count(row, "pairs"),
                    currentPairs: Self.count(row, "current_pairs")
                )
            }
        }
    }

    public func organizationsUsing(
        keystore name: String,
        type: String,
        limit: Int
    ) async throws(StoreError) -> [KeystoreUsage.PerOrganization] {
        try await read("reading which organizations keystore '\(name)' wrapped pairs for") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT organization, COUNT(*) AS n FROM key_pair
                    WHERE \(Self.printableSQL("keystore_name")) = ? AND \(Self.printableSQL("keystore_type")) = ?
                    GROUP BY organization ORDER BY organization LIMIT ?
                    """,
                arguments: [name, type, max(0, limit)]
            ).map { row in
                KeystoreUsage.PerOrganization(organization: SQLiteRow.printable(row, "organization"), count: Self.count(row, "n"))
            }
        }
    }

    /// A column as ``SQLiteRow/printable(_:_:)`` shows it (for names of the usual form), so that
    /// a name read from ``keystoreUsage()`` finds its rows whatever type they were stored as.
    private static func printableSQL(_ column: String) -> String {
        """
        CASE typeof(\(column)) WHEN 'blob' THEN '<' || length(\(column)) || '-byte blob>' \
        WHEN 'null' THEN 'NULL' ELSE CAST(\(column) AS TEXT) END
        """
    }

    /// A count column, 0 when it is not an integer (a damaged table must not stop a start).
    private static func count(_ row: Row, _ column: String) -> Int {
        (try? row.decode(DatabaseValue.self, forColumn: column)).flatMap { Int.fromDatabaseValue($0) } ?? 0
    }

    @discardableResult
    public func check() async throws(StoreError) -> [CorruptKeyPair] {
        // Before the read: a reader connection opened on a deleted file would fail with
        // SQLite's less telling "unable to open database file".
        try await BlockingWork.io { () throws(StoreError) in try self.checkIdentity() }
        // Read what requests read: a page of the current-pair index and the rows it points
        // to, a different page each time, so that over successive checks the whole table is
        // read while each check stays bounded (the same cost at any number of organizations).
        // A damaged table answers "malformed" here as it does to a request.
        let after = checkCursor.withLock { $0 }
        let (last, corrupt) = try await read("checking the store") { db -> (String?, [CorruptKeyPair]) in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.columns) FROM key_pair INDEXED BY key_pair_one_current_per_org
                    WHERE is_current = 1 AND organization > ? ORDER BY organization LIMIT \(Self.checkPageSize)
                    """,
                arguments: [after]
            )
            var corrupt: [CorruptKeyPair] = []
            for row in rows {
                let reader = SQLiteRow(row)
                do throws(StoreError) {
                    _ = try reader.record()
                } catch {
                    corrupt.append(reader.corruptReport(error))
                }
            }
            guard rows.count == Self.checkPageSize, let last = rows.last else { return (nil, corrupt) }
            return ((try? last.decode(DatabaseValue.self, forColumn: "organization")).flatMap { String.fromDatabaseValue($0) }, corrupt)
        }
        checkCursor.withLock { $0 = last ?? "" }
        return corrupt
    }

    /// How many current pairs one ``check()`` reads.
    static let checkPageSize = 64
}
