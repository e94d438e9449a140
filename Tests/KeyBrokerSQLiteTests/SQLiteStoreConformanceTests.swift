import Foundation
import GRDB
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerTesting
import Testing

@testable import KeyBrokerTestSupport

/// The store contract (`KeyBrokerTesting`), run against the SQLite store.
@Suite("SQLite store conformance")
struct SQLiteStoreConformanceTests {
    @Test("the SQLite store, with a second connection to the same file")
    func sqlite() async throws {
        try await KeyPairStoreConformance {
            let directory = try TemporaryDirectory()
            let url = directory.url.appendingPathComponent("keybroker.sqlite")
            let store = try SQLiteKeyPairStore(url: url, createIfMissing: true)
            let second = try SQLiteKeyPairStore(url: url, createIfMissing: false)
            return .init(store: store, secondConnection: second) { id in
                // A value of the wrong type in one column, as an edit or damage leaves it.
                let queue = try DatabaseQueue(path: url.path)
                try await queue.write { db in
                    try db.execute(
                        sql: "UPDATE key_pair SET created_at_us = 'yesterday' WHERE id = ?",
                        arguments: [id.uuidString.lowercased()]
                    )
                }
                try queue.close()
                _ = directory
            }
        }.run()
    }
}
