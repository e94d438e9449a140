public import Foundation
import Synchronization

/// The reference ``KeyPairStore``: every pair in memory, for tests, tools and as the
/// definition of what the contract means (as Hummingbird's `MemoryPersistDriver` sits beside
/// `PersistDriver`). Nothing survives the process, so no deployment should use it.
///
/// It keeps the whole contract, including corrupt-record reporting: a record marked with
/// ``simulateCorruption(of:problem:)`` behaves as a row that cannot be read back.
public final class MemoryKeyPairStore: KeyPairStore {
    private struct Row: Sendable {
        var record: KeyPairRecord
        var isCurrent: Bool
        let sequence: Int
        var corruption: String?
    }

    private struct State {
        var rows: [Row] = []
        var nextSequence = 0
    }

    private let state = Mutex(State())

    /// An empty store.
    public init() {}

    public func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) {
        state.withLock { state in
            for index in state.rows.indices where state.rows[index].record.organization == record.organization {
                state.rows[index].isCurrent = false
            }
            state.rows.append(Row(record: record, isCurrent: true, sequence: state.nextSequence, corruption: nil))
            state.nextSequence += 1
        }
    }

    public func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord? {
        let row = state.withLock { $0.rows.first { $0.isCurrent && $0.record.organization == organization } }
        return try row.map { row throws(StoreError) in try Self.readable(row).record }
    }

    public func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair? {
        let row = state.withLock { $0.rows.first { $0.record.id == id && $0.record.organization == organization } }
        return try row.map { row throws(StoreError) in
            let readable = try Self.readable(row)
            return StoredKeyPair(record: readable.record, isCurrent: readable.isCurrent)
        }
    }

    public func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair] {
        let rows = state.withLock { state in
            state.rows.filter { $0.record.organization == organization }
                .sorted { ($0.record.createdAt, $0.sequence) > ($1.record.createdAt, $1.sequence) }
                .dropFirst(max(0, offset)).prefix(max(0, limit))
        }
        var pairs: [StoredKeyPair] = []
        for row in rows {
            let readable = try Self.readable(row)
            pairs.append(StoredKeyPair(record: readable.record, isCurrent: readable.isCurrent))
        }
        return pairs
    }

    public func currentPairs() async throws(StoreError) -> CurrentPairs {
        let rows = state.withLock { $0.rows.filter(\.isCurrent).sorted { $0.record.organization < $1.record.organization } }
        var records: [KeyPairRecord] = []
        var corrupt: [CorruptKeyPair] = []
        for row in rows {
            if let problem = row.corruption {
                corrupt.append(
                    CorruptKeyPair(
                        keyPairID: row.record.id.uuidString.lowercased(),
                        organization: row.record.organization,
                        problem: problem
                    )
                )
            } else {
                records.append(row.record)
            }
        }
        return CurrentPairs(records: records, corrupt: corrupt)
    }

    public func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] {
        let rows = state.withLock { $0.rows }
        let groups = Dictionary(grouping: rows) { [$0.record.keystoreName, $0.record.keystoreType, $0.record.organization.rawValue] }
        return groups.map { key, rows in
            KeystoreUsage(keystoreName: key[0], keystoreType: key[1], organization: key[2], count: rows.count)
        }.sorted { ($0.keystoreName, $0.organization) < ($1.keystoreName, $1.organization) }
    }

    public func check() async throws(StoreError) {}

    /// Makes the pair `id` behave as a stored row that cannot be read back (for conformance
    /// tests of the corrupt-record contract).
    package func simulateCorruption(of id: UUID, problem: String = "simulated corruption") {
        state.withLock { state in
            for index in state.rows.indices where state.rows[index].record.id == id {
                state.rows[index].corruption = problem
            }
        }
    }

    private static func readable(_ row: Row) throws(StoreError) -> Row {
        guard let problem = row.corruption else { return row }
        let id = row.record.id.uuidString.lowercased()
        throw StoreError(.corruptRecord, "key pair \(id) cannot be read: \(problem)", keyPairID: id)
    }
}
