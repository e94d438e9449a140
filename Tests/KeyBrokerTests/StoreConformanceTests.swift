import Foundation
import GRDB
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerTesting
import Testing

@testable import KeyBrokerTestSupport

/// Every store KeyBroker ships runs the one conformance suite (`KeyBrokerTesting`).
@Suite("Store conformance")
struct StoreConformanceTests {
    @Test("the in-memory reference store")
    func memory() async throws {
        try await KeyPairStoreConformance {
            let store = MemoryKeyPairStore()
            return .init(store: store, secondConnection: nil, corrupt: { store.simulateCorruption(of: $0) })
        }.run()
    }

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
