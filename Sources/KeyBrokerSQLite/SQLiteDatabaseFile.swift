import Foundation
import GRDB
import KeyBroker

/// The rules for the one file that holds every key pair: a missing file is created only
/// where the configuration says so, an empty or foreign file is never taken for a new
/// deployment, and a file deleted or replaced under a running server is noticed.
///
/// A database that silently starts empty is the worst failure a key broker can have: every
/// organization gets a new `initial` pair, and every recording made before can never be
/// decrypted again. So creation is explicit (`storage.sqlite.createIfMissing`) and atomic:
/// the schema is written under a temporary name, synced, and linked into place, so that a
/// crash leaves either no file or a complete one — never the empty file a later start would
/// have to refuse.
enum SQLiteDatabaseFile {
    /// Device and inode: what identifies a file whatever its name.
    struct Identity: Equatable {
        let device: UInt64
        let inode: UInt64

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }
    }

    /// Makes sure a usable database file exists at `url` before it is opened.
    /// - Parameters:
    ///   - createIfMissing: whether a missing file may be created (with the schema).
    ///   - migrator: the schema a created file gets.
    /// - Throws: ``StoreError`` (`unavailable`) naming the file and what to do.
    static func prepare(_ url: URL, createIfMissing: Bool, migrator: DatabaseMigrator) throws(StoreError) {
        var info = stat()
        if stat(url.path, &info) == 0 {
            try checkExisting(url, info: info)
            try checkSchema(url, migrator: migrator)
            return
        }
        guard errno == ENOENT else {
            throw unavailable(url, "cannot be read: \(String(cString: strerror(errno)))")
        }
        guard createIfMissing else {
            throw unavailable(
                url,
                "does not exist. If KeyBroker ran here before, its key pairs are in that file: check that the volume holding it is mounted, or restore it from a backup. Only for a new deployment, set storage.sqlite.createIfMissing: true to create an empty one"
            )
        }
        try create(url, migrator: migrator)
    }

    /// Refuses an existing file that cannot be a KeyBroker database: not a regular file, or
    /// empty (a volume that failed to mount often leaves an empty file or directory behind).
    static func checkExisting(_ url: URL, info: stat) throws(StoreError) {
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw unavailable(url, "is not a regular file; storage.sqlite.path must name the database file")
        }
        guard info.st_size > 0 else {
            throw unavailable(
                url,
                "is empty (0 bytes), so it is not a KeyBroker database. If the volume that holds the database did not mount, mount it; if the file was damaged, restore it from a backup. KeyBroker never takes an empty file for a new deployment: for a new one, delete the empty file and set storage.sqlite.createIfMissing: true"
            )
        }
    }

    /// Refuses a database without KeyBroker's schema (a foreign SQLite file, or one whose
    /// content was lost), reading it through a plain connection that changes nothing: the
    /// pool opened afterwards switches the file to WAL, which must not happen to a foreign file.
    static func checkSchema(_ url: URL, migrator: DatabaseMigrator) throws(StoreError) {
        let applied: Set<String>
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            let queue = try DatabaseQueue(path: url.path, configuration: configuration)
            applied = try queue.read { db in try migrator.appliedIdentifiers(db) }
            try queue.close()
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "reading the schema version")
        }
        guard !applied.isEmpty else {
            throw unavailable(
                url,
                "is an SQLite database without KeyBroker's schema (no key_pair table): it is not KeyBroker's database, or its content was lost. Point storage.sqlite.path at KeyBroker's database, or restore it from a backup; KeyBroker does not take it for a new deployment"
            )
        }
    }

    /// Creates the database with its schema under a temporary name and links it into place.
    private static func create(_ url: URL, migrator: DatabaseMigrator) throws(StoreError) {
        let directory = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(
                at: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw unavailable(url, "cannot be created: its directory cannot be created (\(error.localizedDescription))")
        }
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).creating")
        defer {
            for suffix in ["", "-journal", "-wal", "-shm"] { unlink(temporary.path + suffix) }
        }
        // The database holds wrapped private keys (and, with the `none` keystore, unwrapped
        // ones): readable by its owner only, from the first byte.
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw unavailable(url, "cannot be created in '\(directory.path)': \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        do {
            let queue = try DatabaseQueue(path: temporary.path)
            try migrator.migrate(queue)
            try queue.close()
        } catch {
            throw SQLiteErrors.map(error, file: url, while: "creating the database")
        }
        // The journal-mode commit above was synced by SQLite; sync once more so the file's
        // size and blocks are on disk before its name is.
        let created = open(temporary.path, O_RDONLY | O_CLOEXEC)
        if created >= 0 {
            fsync(created)
            close(created)
        }
        // link() never replaces: if another file appeared meanwhile (another process created
        // the database, or something else), it stays, and must pass the same checks.
        if link(temporary.path, url.path) != 0 {
            guard errno == EEXIST else { throw unavailable(url, "cannot be created: \(String(cString: strerror(errno)))") }
            var info = stat()
            guard stat(url.path, &info) == 0 else { throw unavailable(url, "cannot be read: \(String(cString: strerror(errno)))") }
            try checkExisting(url, info: info)
            try checkSchema(url, migrator: migrator)
        }
        syncDirectory(directory)
    }

    /// The identity of the file now at `url`, or why there is none.
    static func identity(at url: URL) throws(StoreError) -> Identity {
        var info = stat()
        guard stat(url.path, &info) == 0 else {
            if errno == ENOENT {
                throw unavailable(
                    url,
                    "was deleted while KeyBroker had it open; new key pairs would be lost at the next restart, so the store refuses them. Restore the file from a backup (or put it back), then restart keybroker"
                )
            }
            throw unavailable(url, "cannot be checked: \(String(cString: strerror(errno)))")
        }
        return Identity(info)
    }

    /// The identity of an open file.
    static func identity(of descriptor: Int32, url: URL) throws(StoreError) -> Identity {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw unavailable(url, "cannot be checked: \(String(cString: strerror(errno)))")
        }
        return Identity(info)
    }

    static func replacedError(_ url: URL) -> StoreError {
        unavailable(
            url,
            "was replaced by another file while KeyBroker had it open; new key pairs would go to the old, unlinked file, so the store refuses them. Restart keybroker to open the file now at that path (check first that it is the right one)"
        )
    }

    private static func syncDirectory(_ directory: URL) {
        let descriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    static func unavailable(_ url: URL, _ problem: String) -> StoreError {
        StoreError(.unavailable, "database file '\(url.path)' \(problem)")
    }
}
