import Foundation
import GRDB
import KeyBroker

/// Maps GRDB's errors to ``StoreError``.
enum SQLiteErrors {
    /// - Parameters:
    ///   - error: what GRDB threw.
    ///   - file: the database file, for the message.
    ///   - action: what the store was doing.
    static func map(_ error: any Error, file: URL, while action: String) -> StoreError {
        if let error = error as? StoreError { return error }
        guard let database = error as? DatabaseError else {
            return StoreError(.unavailable, "the key-pair store failed while \(action): \(error)")
        }
        let detail = "SQLite error \(database.resultCode.rawValue): \(database.message ?? "\(database.resultCode)")"
        switch database.resultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return StoreError(
                .damaged,
                "database file '\(file.path)' is damaged (\(detail)) while \(action); restore it from a backup and restart keybroker"
            )
        default:
            return StoreError(.unavailable, "the key-pair store '\(file.path)' failed while \(action) (\(detail))")
        }
    }
}
