public import Foundation

/// `storage:`.
public enum StorageSettings: Sendable, Hashable {
    /// A SQLite database file.
    case sqlite(SQLiteStorageSettings)
}

/// `storage.sqlite`.
public struct SQLiteStorageSettings: Sendable, Hashable {
    /// The database file.
    public let path: URL
    /// Whether a missing database file is created. An existing empty or foreign file is
    /// refused either way, so that a volume that failed to mount is never taken for a new
    /// deployment.
    public let createIfMissing: Bool

    /// Creates the settings.
    public init(path: URL, createIfMissing: Bool) {
        self.path = path
        self.createIfMissing = createIfMissing
    }
}
