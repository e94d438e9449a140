import Foundation
import GRDB

/// A ``KeyPairStore`` in one SQLite file, through GRDB, in WAL mode (readers never wait
/// for the writer).
///
/// A partial unique index allows one current pair per organization, so the invariant holds
/// even when the CLI and a server write to the same file at once; inserting a new current
/// pair clears the old flag and inserts in one transaction.
public final class SQLiteKeyPairStore: KeyPairStore {
    private let pool: DatabasePool

    /// Opens (creating where missing) the database at `url`. A new file and its directory
    /// are created readable by the owner only, since the database holds wrapped private keys
    /// (and, with the `none` keystore, unwrapped ones).
    /// - Parameters:
    ///   - url: the database file.
    ///   - readOnly: open an existing file without creating or migrating anything (for
    ///     `config validate`, which must change nothing).
    public init(url: URL, readOnly: Bool = false) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        if !readOnly { try Self.prepareFile(at: url) }
        pool = try DatabasePool(path: url.path, configuration: configuration)
        if readOnly {
            let migrated = try pool.read { db in try Self.migrator.hasCompletedMigrations(db) }
            guard migrated else {
                throw StoreFileError(path: url.path, reason: "its schema is not the one this version writes; open it once with a command that writes (e.g. keybroker status) to migrate it")
            }
        } else {
            try Self.migrator.migrate(pool)
        }
    }

    private static func prepareFile(at url: URL) throws {
        let directory = url.deletingLastPathComponent()
        let files = FileManager.default
        if !files.fileExists(atPath: directory.path) {
            try files.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            close(descriptor)
        } else if errno != EEXIST {
            throw StoreFileError(path: url.path, reason: String(cString: strerror(errno)))
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: key pairs") { db in
            try db.execute(sql: """
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
                """)
        }
        return migrator
    }

    public func insertCurrent(_ record: KeyPairRecord) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE key_pair SET is_current = 0 WHERE organization = ? AND is_current = 1",
                arguments: [record.organization.rawValue])
            try db.execute(
                sql: """
                    INSERT INTO key_pair (id, organization, keystore_name, keystore_type, backend_key_reference, spec,
                        public_key, wrapped_private_key, encryption_context, created_at_us, reason, requested_by, is_current)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                    """,
                arguments: [
                    record.id.uuidString.lowercased(), record.organization.rawValue, record.keystoreName,
                    record.keystoreType, record.backendKeyReference, record.spec.rawValue, record.publicKeyDER,
                    record.wrappedPrivateKey, String(decoding: record.encryptionContext.canonicalBytes, as: UTF8.self),
                    Int64((record.createdAt.timeIntervalSince1970 * 1_000_000).rounded()), record.reason.rawValue,
                    record.requestedBy,
                ])
        }
    }

    public func current(for organization: OrganizationID) async throws -> KeyPairRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM key_pair WHERE organization = ? AND is_current = 1",
                arguments: [organization.rawValue]
            ).map(Self.record(from:))
        }
    }

    public func keyPair(id: UUID) async throws -> StoredKeyPair? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM key_pair WHERE id = ?", arguments: [id.uuidString.lowercased()])
                .map(Self.stored(from:))
        }
    }

    public func history(for organization: OrganizationID, limit: Int, offset: Int) async throws -> [StoredKeyPair] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM key_pair WHERE organization = ? ORDER BY created_at_us DESC, seq DESC LIMIT ? OFFSET ?",
                arguments: [organization.rawValue, limit, offset]
            ).map(Self.stored(from:))
        }
    }

    public func currentPairs() async throws -> [KeyPairRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM key_pair WHERE is_current = 1 ORDER BY organization")
                .map(Self.record(from:))
        }
    }

    public func keystoreUsage() async throws -> [KeystoreUsage] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT keystore_name, keystore_type, organization, COUNT(*) AS n FROM key_pair
                    GROUP BY keystore_name, keystore_type, organization ORDER BY keystore_name, organization
                    """
            ).map { row in
                guard let organization = OrganizationID(row["organization"]) else {
                    throw BrokerError.corruptRecord("organization id '\(row["organization"] as String)' is not valid")
                }
                return KeystoreUsage(
                    keystoreName: row["keystore_name"], keystoreType: row["keystore_type"], organization: organization,
                    count: row["n"])
            }
        }
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    private static func stored(from row: Row) throws -> StoredKeyPair {
        StoredKeyPair(record: try record(from: row), isCurrent: row["is_current"] == 1)
    }

    private static func record(from row: Row) throws -> KeyPairRecord {
        let idText: String = row["id"]
        guard let id = UUID(uuidString: idText) else { throw BrokerError.corruptRecord("id '\(idText)' is not a UUID") }
        guard let organization = OrganizationID(row["organization"]) else {
            throw BrokerError.corruptRecord("key pair \(idText) has an invalid organization id")
        }
        guard let spec = KeyPairSpec(rawValue: row["spec"]) else {
            throw BrokerError.corruptRecord("key pair \(idText) has unknown spec '\(row["spec"] as String)'")
        }
        guard let reason = KeyPairReason(rawValue: row["reason"]) else {
            throw BrokerError.corruptRecord("key pair \(idText) has unknown reason '\(row["reason"] as String)'")
        }
        let contextText: String = row["encryption_context"]
        let micros: Int64 = row["created_at_us"]
        return KeyPairRecord(
            id: id, organization: organization, keystoreName: row["keystore_name"], keystoreType: row["keystore_type"],
            backendKeyReference: row["backend_key_reference"], spec: spec, publicKeyDER: row["public_key"],
            wrappedPrivateKey: row["wrapped_private_key"],
            encryptionContext: try EncryptionContext(canonicalBytes: Data(contextText.utf8)),
            createdAt: Date(timeIntervalSince1970: Double(micros) / 1_000_000), reason: reason,
            requestedBy: row["requested_by"])
    }
}

/// The database file cannot be created.
struct StoreFileError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    var description: String { "cannot use the database file '\(path)': \(reason)" }
}
