import Foundation
import KeyBroker
import KeyBrokerTesting
import Testing

@testable import KeyBrokerTestSupport

/// The reference store under the one conformance suite (`KeyBrokerTesting`) that every
/// store runs (the SQLite store in KeyBrokerSQLiteTests).
@Suite("Store conformance")
struct StoreConformanceTests {
    @Test("the in-memory reference store")
    func memory() async throws {
        try await KeyPairStoreConformance {
            let store = MemoryKeyPairStore()
            return .init(store: store, secondConnection: nil, corrupt: { store.simulateCorruption(of: $0) })
        }.run()
    }
}
