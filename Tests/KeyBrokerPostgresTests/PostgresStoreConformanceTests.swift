import Foundation
import KeyBroker
import KeyBrokerPostgres
import KeyBrokerTesting
import Logging
import Testing

@testable import KeyBrokerTestSupport

/// The store contract (`KeyBrokerTesting`), run against the PostgreSQL store on a real cluster.
@Suite("PostgreSQL store conformance", .enabled(if: PostgresCluster.available, "\(PostgresCluster.skipMessage)"))
struct PostgresStoreConformanceTests {
    @Test("the PostgreSQL store, with a second store (another replica) on the same database")
    func postgres() async throws {
        let cluster = try await offPool { try PostgresCluster.shared() }
        try await KeyPairStoreConformance {
            let database = try await offPool { try cluster.createDatabase() }
            let logger = Logger(label: "test")
            let store = try await PostgresKeyPairStore.open(try cluster.settings(database), logger: logger)
            let second = try await PostgresKeyPairStore.open(try cluster.settings(database), logger: logger)
            return .init(store: store, secondConnection: second) { id in
                // A value no pair can hold, as an edit leaves it.
                try cluster.psql(database, "UPDATE key_pair SET spec = 'rsa-1' WHERE id = '\(id.uuidString.lowercased())'")
            }
        }.run()
    }

    @Test("a second replica opening the database migrates nothing again; a newer schema is refused")
    func migrations() async throws {
        let cluster = try await offPool { try PostgresCluster.shared() }
        let database = try cluster.createDatabase()
        let logger = Logger(label: "test")
        let stores = try await withThrowingTaskGroup(of: PostgresKeyPairStore.self) { group in
            for _ in 0..<3 { group.addTask { try await PostgresKeyPairStore.open(try cluster.settings(database), logger: logger) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(stores.count == 3, "three replicas starting at once")
        #expect(try cluster.psql(database, "SELECT count(*) FROM keybroker_schema") == "1")
        try cluster.psql(database, "INSERT INTO keybroker_schema (version, description) VALUES (99, 'from the future')")
        let error = await #expect(throws: StoreError.self) {
            try await PostgresKeyPairStore.open(try cluster.settings(database), logger: logger)
        }
        #expect(error?.message.contains("newer than this KeyBroker knows") == true, "\(error?.message ?? "")")
        for store in stores { store.shutdown() }
    }

    @Test("a wrong password, a missing database and a closed port fail with the server named and no password shown")
    func connectionErrors() async throws {
        let cluster = try await offPool { try PostgresCluster.shared() }
        let logger = Logger(label: "test")
        let wrong = try PostgresStorageSettings.parse(
            url: "postgres://keybroker:not-the-password@127.0.0.1:\(cluster.port)/postgres?sslmode=disable"
        )
        let missing = try PostgresStorageSettings.parse(url: cluster.url("no_such_database"))
        let closed = try PostgresStorageSettings.parse(
            url: "postgres://keybroker:secret-pw@127.0.0.1:1/keybroker?sslmode=disable&connect_timeout=2"
        )
        for (settings, expected) in [(wrong, "password authentication failed"), (missing, "does not exist"), (closed, "127.0.0.1:1")] {
            do {
                _ = try await PostgresKeyPairStore.open(settings, logger: logger)
                Issue.record("\(settings) opened")
            } catch {
                #expect(error.kind == .unavailable)
                #expect(error.message.contains(expected), "\(error.message)")
                #expect(
                    !error.message.contains("not-the-password") && !error.message.contains(cluster.password)
                        && !error.message.contains("secret-pw")
                )
            }
        }
    }
}

@Suite("PostgreSQL where CI runs")
struct PostgresInstalledTests {
    @Test("CI has PostgreSQL, so that its suites cannot skip there")
    func installedInCI() {
        if ProcessInfo.processInfo.environment["CI"] != nil {
            #expect(PostgresCluster.available, "\(PostgresCluster.skipMessage)")
        }
    }
}
