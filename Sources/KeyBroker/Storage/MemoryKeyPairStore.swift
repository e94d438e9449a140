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
        /// The tenant's cadence when the pair was made (`nil`: the operator's file decides).
        let cadence: RotationCadence?
    }

    private struct State {
        var rows: [Row] = []
        var nextSequence = 0
        var configurations: [OrganizationID: StoredKeyConfiguration] = [:]
        var revocations: [OrganizationID: Revocation] = [:]
        var changes: [(change: StoreChange, at: ContinuousClock.Instant)] = []
        var nextChange: Int64 = 1
        /// The oldest sequence pruned away (0: none).
        var prunedThrough: Int64 = 0
        var leases: [String: (fence: LeaseFence, expires: ContinuousClock.Instant)] = [:]

        mutating func recordChange(_ kind: StoreChange.Kind, _ organization: OrganizationID?) {
            changes.append((StoreChange(sequence: nextChange, kind: kind, organization: organization), .now))
            nextChange += 1
        }

        func holds(_ fence: LeaseFence) -> Bool {
            guard let lease = leases[fence.name] else { return false }
            return lease.fence == fence && lease.expires > .now
        }

        mutating func insertCurrent(_ record: KeyPairRecord) {
            recordChange(.currentPair, record.organization)
            for index in rows.indices where rows[index].record.organization == record.organization {
                rows[index].isCurrent = false
            }
            let cadence = configurations[record.organization]?.configuration.rotation
            rows.append(Row(record: record, isCurrent: true, sequence: nextSequence, corruption: nil, cadence: cadence))
            nextSequence += 1
        }
    }

    private let state = Mutex(State())

    /// An empty store.
    public init() {}

    public func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) {
        state.withLock { $0.insertCurrent(record) }
    }

    public func insertCurrent(_ record: KeyPairRecord, if condition: InsertCondition) async throws(StoreError) -> InsertOutcome {
        state.withLock { state in
            if let fence = condition.fence, !state.holds(fence) { return .leaseLost }
            if condition.unlessRevoked, state.revocations[record.organization] != nil { return .revoked }
            if let version = condition.configurationVersion, (state.configurations[record.organization]?.version ?? 0) != version {
                return .configurationChanged
            }
            if let replacing = condition.replacing {
                let current = state.rows.first { $0.isCurrent && $0.record.organization == record.organization }
                guard current?.record.id == replacing else { return .currentChanged }
            }
            state.insertCurrent(record)
            return .stored
        }
    }

    public func revocation(of organization: OrganizationID) async throws(StoreError) -> Revocation? {
        state.withLock { $0.revocations[organization] }
    }

    public func setRevocation(_ revocation: Revocation?, for organization: OrganizationID) async throws(StoreError) -> Bool {
        state.withLock { state in
            guard (state.revocations[organization] == nil) != (revocation == nil) else { return false }
            state.revocations[organization] = revocation
            state.recordChange(.revocation, organization)
            return true
        }
    }

    public func revokedOrganizations(after: String?, limit: Int) async throws(StoreError) -> RevocationPage {
        state.withLock { state in
            let all = state.revocations.values.filter { revocation in after.map { revocation.organization.rawValue > $0 } ?? true }
                .sorted { $0.organization < $1.organization }
            let page = Array(all.prefix(max(0, limit)))
            return RevocationPage(revocations: page, next: all.count > page.count ? page.last?.organization.rawValue : nil)
        }
    }

    public func changes(after sequence: Int64, limit: Int) async throws(StoreError) -> StoreChanges {
        state.withLock { state in
            StoreChanges(
                after: sequence,
                changes: state.changes.lazy.map(\.change).filter { $0.sequence > sequence }.prefix(max(0, limit)).map { $0 },
                prunedThrough: state.prunedThrough
            )
        }
    }

    public func latestChange() async throws(StoreError) -> Int64 {
        state.withLock { $0.nextChange - 1 }
    }

    public func recordChange(_ kind: StoreChange.Kind, organization: OrganizationID?) async throws(StoreError) -> Int64 {
        state.withLock { state in
            state.recordChange(kind, organization)
            return state.nextChange - 1
        }
    }

    public func pruneChanges(olderThan age: Duration) async throws(StoreError) {
        let cutoff = ContinuousClock.now - age
        state.withLock { state in
            while let first = state.changes.first, first.at < cutoff {
                state.prunedThrough = first.change.sequence
                state.changes.removeFirst()
            }
        }
    }

    public func changeSignals() -> AsyncStream<Void>? { nil }

    public func acquireLease(_ name: String, holder: String, for duration: Duration) async throws(StoreError) -> LeaseGrant? {
        state.withLock { state in
            let now = ContinuousClock.now
            if let lease = state.leases[name], lease.expires > now {
                guard lease.fence.holder == holder else { return nil }
                state.leases[name] = (lease.fence, now + duration)
                return LeaseGrant(fence: lease.fence, isNew: false)
            }
            let fence = LeaseFence(name: name, holder: holder, epoch: (state.leases[name]?.fence.epoch ?? 0) + 1)
            state.leases[name] = (fence, now + duration)
            return LeaseGrant(fence: fence, isNew: true)
        }
    }

    public func releaseLease(_ name: String, holder: String) async throws(StoreError) {
        state.withLock { state in
            guard let lease = state.leases[name], lease.fence.holder == holder else { return }
            state.leases[name] = (lease.fence, .now)
        }
    }

    public func keyConfiguration(for organization: OrganizationID) async throws(StoreError) -> StoredKeyConfiguration? {
        state.withLock { $0.configurations[organization] }
    }

    public func saveKeyConfiguration(
        _ configuration: TenantKeyConfiguration,
        for organization: OrganizationID,
        expectedVersion: Int?,
        updatedBy: String,
        at time: Date,
        newPair: KeyPairRecord
    ) async throws(StoreError) -> KeyConfigurationSave {
        state.withLock { state in
            let stored = state.configurations[organization]?.version ?? 0
            if let expectedVersion, expectedVersion != stored { return .conflict(storedVersion: stored) }
            if state.revocations[organization] != nil { return .revoked }
            let saved = StoredKeyConfiguration(
                organization: organization,
                configuration: configuration,
                version: stored + 1,
                updatedAt: time,
                updatedBy: updatedBy,
                lastError: nil
            )
            state.configurations[organization] = saved
            state.insertCurrent(newPair)
            state.recordChange(.keyConfiguration, organization)
            return .saved(saved)
        }
    }

    public func recordKeyConfigurationError(_ error: KeyConfigurationError?, for organization: OrganizationID) async throws(StoreError) {
        state.withLock { state in
            guard let stored = state.configurations[organization] else { return }
            state.configurations[organization] = StoredKeyConfiguration(
                organization: organization,
                configuration: stored.configuration,
                version: stored.version,
                updatedAt: stored.updatedAt,
                updatedBy: stored.updatedBy,
                lastError: error
            )
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

    public func currentPairs(_ query: CurrentPairQuery, limit: Int) async throws(StoreError) -> CurrentPairs {
        // The reference store filters and sorts everything: the contract is the order and the
        // cursors, not the cost.
        let current = state.withLock { $0.rows.filter(\.isCurrent) }
        let selected: [Row]
        switch query {
        case .byOrganization(let after):
            selected = current.filter { row in after.map { row.record.organization.rawValue > $0 } ?? true }
                .sorted { $0.record.organization < $1.record.organization }
        case .wrappedBy(let keystore, let after):
            selected = current.filter { row in
                row.record.keystoreName == keystore && (after.map { row.record.organization.rawValue > $0 } ?? true)
            }
            .sorted { $0.record.organization < $1.record.organization }
        case .createdAtOrBefore(let threshold, let cadence, let after):
            let limitMicroseconds = Self.microseconds(threshold)
            selected = current.filter { row in
                guard row.cadence == cadence else { return false }
                let key = (Self.microseconds(row.record.createdAt), row.record.organization.rawValue)
                guard key.0 <= limitMicroseconds else { return false }
                return after.map { key > ($0.createdAtMicroseconds, $0.organization) } ?? true
            }.sorted {
                (Self.microseconds($0.record.createdAt), $0.record.organization) < (
                    Self.microseconds($1.record.createdAt), $1.record.organization
                )
            }
        }
        let page = Array(selected.prefix(max(0, limit)))
        var records: [KeyPairRecord] = []
        var corrupt: [CorruptKeyPair] = []
        for row in page {
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
        var next: CurrentPairQuery?
        if let last = page.last, page.count == limit, selected.count > limit {
            switch query {
            case .byOrganization: next = .byOrganization(after: last.record.organization.rawValue)
            case .wrappedBy(let keystore, _): next = .wrappedBy(keystore: keystore, after: last.record.organization.rawValue)
            case .createdAtOrBefore(let threshold, let cadence, _):
                next = .createdAtOrBefore(
                    threshold,
                    cadence: cadence,
                    after: .init(
                        createdAtMicroseconds: Self.microseconds(last.record.createdAt),
                        organization: last.record.organization.rawValue
                    )
                )
            }
        }
        return CurrentPairs(records: records, corrupt: corrupt, next: next)
    }

    private static func microseconds(_ date: Date) -> Int64 {
        Int64(exactly: (date.timeIntervalSince1970 * 1_000_000).rounded()) ?? 0
    }

    public func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] {
        let rows = state.withLock { $0.rows }
        let groups = Dictionary(grouping: rows) { [$0.record.keystoreName, $0.record.keystoreType] }
        return groups.map { key, rows in
            KeystoreUsage(keystoreName: key[0], keystoreType: key[1], pairs: rows.count, currentPairs: rows.filter(\.isCurrent).count)
        }.sorted { ($0.keystoreName, $0.keystoreType) < ($1.keystoreName, $1.keystoreType) }
    }

    public func organizationsUsing(
        keystore name: String,
        type: String,
        limit: Int
    ) async throws(StoreError) -> [KeystoreUsage.PerOrganization] {
        let rows = state.withLock { $0.rows.filter { $0.record.keystoreName == name && $0.record.keystoreType == type } }
        let counts = Dictionary(grouping: rows, by: \.record.organization.rawValue).mapValues(\.count)
        return counts.sorted { $0.key < $1.key }.prefix(max(0, limit)).map {
            KeystoreUsage.PerOrganization(organization: $0.key, count: $0.value)
        }
    }

    @discardableResult
    public func check() async throws(StoreError) -> [CorruptKeyPair] { [] }

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
