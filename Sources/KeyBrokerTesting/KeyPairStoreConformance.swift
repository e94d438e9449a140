public import Foundation
public import KeyBroker
import Testing

/// The contract of ``KeyBroker/KeyPairStore``, run against a store: every store KeyBroker
/// ships passes it, and a new one joins with one line in its tests.
///
/// ```swift
/// @Test func conformance() async throws {
///     try await KeyPairStoreConformance {
///         let storage = try MyStore.Storage.empty()
///         return .init(store: try MyStore(storage), secondConnection: try MyStore(storage)) { id in
///             try await storage.damageRow(id)
///         }
///     }.run()
/// }
/// ```
/// Failures are recorded as swift-testing issues naming the store and the part of the
/// contract that failed.
public struct KeyPairStoreConformance: Sendable {
    /// One store under test, opened on empty storage.
    public struct Subject: Sendable {
        /// The store.
        public let store: any KeyPairStore
        /// A second connection to the same storage (another process would open), or `nil`
        /// for stores that have one connection only (the memory store).
        public let secondConnection: (any KeyPairStore)?
        /// Makes the stored pair `id` unreadable, as a damaged or edited row would be.
        public let corrupt: @Sendable (UUID) async throws -> Void

        /// Creates a subject.
        public init(
            store: any KeyPairStore,
            secondConnection: (any KeyPairStore)?,
            corrupt: @escaping @Sendable (UUID) async throws -> Void
        ) {
            self.store = store
            self.secondConnection = secondConnection
            self.corrupt = corrupt
        }
    }

    private let open: @Sendable () async throws -> Subject

    /// Creates the suite.
    /// - Parameter open: opens a store on new, empty storage; called once per part.
    public init(open: @escaping @Sendable () async throws -> Subject) {
        self.open = open
    }

    /// Runs every part of the contract. Each part opens its own subject and keeps it alive
    /// to its end (a subject may own temporary storage).
    public func run() async throws {
        try await insertAndRead()
        try await historyOrderAndPaging()
        try await concurrentInserts()
        try await usageCounts()
        try await currentPairPages()
        try await keyConfigurations()
        try await corruptRecords()
        try await insertConditions()
        try await revocations()
        try await changeFeed()
        try await leases()
    }

    /// A conditional insert stores nothing when the pair it replaces is no longer current or
    /// the writer's lease moved on; two writers racing to replace one pair store one pair.
    func insertConditions() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let other = subject.secondConnection ?? store
        let acme = try OrganizationID.checked("acme")
        let first = try StoreSamples.record(for: acme)
        #expect(try await store.insertCurrent(first, if: InsertCondition(replacing: .some(nil))) == .stored, "no pair: replacing none")
        let stale = try StoreSamples.record(for: acme)
        #expect(try await store.insertCurrent(stale, if: InsertCondition(replacing: .some(nil))) == .currentChanged)
        // Two writers (two connections) replace the same due pair at once: one wins.
        let racing = try (0..<6).map { _ in try StoreSamples.record(for: acme) }
        let outcomes = try await withThrowingTaskGroup(of: InsertOutcome.self) { group in
            for (index, record) in racing.enumerated() {
                let writer = index % 2 == 0 ? store : other
                group.addTask { try await writer.insertCurrent(record, if: InsertCondition(replacing: first.id)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .stored }.count == 1, "one rotation of one due pair: \(outcomes)")
        #expect(outcomes.filter { $0 == .currentChanged }.count == 5)
        let winner = try await store.current(for: acme)
        #expect(racing.contains { $0.id == winner?.id })
        #expect(try await store.history(for: acme, limit: 10, offset: 0).filter(\.isCurrent).count == 1)

        // Fencing: a write with a lease it does not hold, or an old epoch, is refused.
        guard let grant = try await store.acquireLease("conformance", holder: "a", for: .seconds(30)) else {
            Issue.record("a free lease is granted")
            return
        }
        let fenced = try StoreSamples.record(for: acme)
        #expect(try await store.insertCurrent(fenced, if: InsertCondition(fence: grant.fence)) == .stored)
        let old = LeaseFence(name: "conformance", holder: "a", epoch: grant.fence.epoch - 1)
        #expect(try await store.insertCurrent(try StoreSamples.record(for: acme), if: InsertCondition(fence: old)) == .leaseLost)
        try await store.releaseLease("conformance", holder: "a")
        #expect(try await other.insertCurrent(try StoreSamples.record(for: acme), if: InsertCondition(fence: grant.fence)) == .leaseLost)
        #expect(try await store.current(for: acme) == fenced, "nothing stored after the lease went")
    }

    /// Revocations are stored, listed in pages, changed once, and each change is in the feed.
    func revocations() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let names = try ["acme", "beta", "gamma"].map { try OrganizationID.checked($0) }
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let before = try await store.latestChange()
        for name in names {
            #expect(try await store.setRevocation(Revocation(organization: name, revokedAt: at, revokedBy: "admin"), for: name))
        }
        #expect(
            try await store.setRevocation(Revocation(organization: names[0], revokedAt: at, revokedBy: "x"), for: names[0]) == false,
            "revoking twice changes nothing"
        )
        #expect(try await store.revocation(of: names[1]) == Revocation(organization: names[1], revokedAt: at, revokedBy: "admin"))
        let first = try await store.revokedOrganizations(after: nil, limit: 2)
        #expect(first.revocations.map(\.organization) == Array(names.prefix(2)) && first.next == "beta")
        let last = try await store.revokedOrganizations(after: first.next, limit: 2)
        #expect(last.revocations.map(\.organization) == [names[2]] && last.next == nil)
        // A revoked organization gets no pair from a writer that asks (the broker always does),
        // and no saved configuration.
        #expect(try await store.insertCurrent(try StoreSamples.record(for: names[0]), if: InsertCondition(unlessRevoked: true)) == .revoked)
        #expect(try await store.current(for: names[0]) == nil)
        let refused = try await store.saveKeyConfiguration(
            .platformDefault,
            for: names[0],
            expectedVersion: nil,
            updatedBy: "x",
            at: at,
            newPair: try StoreSamples.record(for: names[0])
        )
        #expect(refused == .revoked)
        #expect(try await store.current(for: names[0]) == nil)
        #expect(try await store.setRevocation(nil, for: names[1]))
        #expect(try await store.setRevocation(nil, for: names[1]) == false)
        #expect(try await store.revocation(of: names[1]) == nil)
        let feed = try await store.changes(after: before, limit: 100).changes
        #expect(feed.map(\.kind) == Array(repeating: .revocation, count: 4), "one change per change made: \(feed)")
        #expect(feed.map(\.organization) == names + [names[1]])
    }

    /// Every write that others act on is in the feed, in order, each once; pages continue from
    /// a cursor; pruning says what a late reader missed.
    func changeFeed() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let acme = try OrganizationID.checked("acme")
        let start = try await store.latestChange()
        try await store.insertCurrent(try StoreSamples.record(for: acme))
        _ = try await store.saveKeyConfiguration(
            .platformDefault,
            for: acme,
            expectedVersion: nil,
            updatedBy: "admin",
            at: Date(timeIntervalSince1970: 1_800_000_000),
            newPair: try StoreSamples.record(for: acme)
        )
        let reload = try await store.recordChange(.reload, organization: nil)
        let all = try await store.changes(after: start, limit: 100)
        #expect(!all.missedSome)
        let kinds = all.changes.map(\.kind)
        #expect(kinds.first == .currentPair && kinds.last == .reload && kinds.contains(.keyConfiguration), "\(kinds)")
        #expect(all.changes.last?.sequence == reload)
        #expect(zip(all.changes, all.changes.dropFirst()).allSatisfy { $0.sequence < $1.sequence }, "in order")
        #expect(try await store.latestChange() == reload)
        let firstPage = try await store.changes(after: start, limit: 1).changes
        let rest = try await store.changes(after: firstPage.last?.sequence ?? 0, limit: 100).changes
        #expect(firstPage + rest == all.changes, "pages continue from the cursor")
        if let other = subject.secondConnection {
            #expect(try await other.changes(after: start, limit: 100).changes == all.changes, "another connection reads the same feed")
        }
        try await store.pruneChanges(olderThan: .zero)
        let behind = try await store.changes(after: start, limit: 100)
        #expect(behind.missedSome && behind.prunedThrough == reload, "a reader behind the pruned changes is told where to go on")
        #expect(try await store.changes(after: reload, limit: 100).missedSome == false)
        #expect(try await store.latestChange() == reload, "a new reader starts after the pruned changes, not before them")
    }

    /// A lease is held by one holder at a time, renewed at the same epoch, taken at a higher
    /// epoch once released or expired.
    func leases() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let other = subject.secondConnection ?? store
        guard let a = try await store.acquireLease("rotation", holder: "a", for: .seconds(30)) else {
            Issue.record("a free lease is granted")
            return
        }
        #expect(a.isNew)
        #expect(try await other.acquireLease("rotation", holder: "b", for: .seconds(30)) == nil, "held by a")
        let renewed = try await store.acquireLease("rotation", holder: "a", for: .seconds(30))
        #expect(renewed?.fence == a.fence && renewed?.isNew == false, "a renewal keeps the epoch")
        try await other.releaseLease("rotation", holder: "b")
        #expect(try await other.acquireLease("rotation", holder: "b", for: .seconds(30)) == nil, "only the holder releases")
        try await store.releaseLease("rotation", holder: "a")
        let b = try await other.acquireLease("rotation", holder: "b", for: .milliseconds(300))
        #expect(b != nil && (b?.fence.epoch ?? 0) > a.fence.epoch, "taken after release, at a higher epoch")
        try await Task.sleep(for: .milliseconds(600))
        let again = try await store.acquireLease("rotation", holder: "a", for: .seconds(30))
        #expect(again != nil && (again?.fence.epoch ?? 0) > (b?.fence.epoch ?? 0), "taken after expiry, at a higher epoch")
    }

    /// A current pair is stored whole and read back equal; the lookup by id includes the organization.
    func insertAndRead() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let acme = try OrganizationID.checked("acme")
        let record = try StoreSamples.record(for: acme)
        try await store.insertCurrent(record)
        #expect(try await store.current(for: acme) == record, "current(for:) returns the stored pair whole")
        let stored = try await store.keyPair(id: record.id, of: acme)
        #expect(stored?.record == record && stored?.isCurrent == true, "keyPair(id:of:) returns it, current")
        #expect(try await store.keyPair(id: record.id, of: OrganizationID.checked("beta")) == nil, "another organization gets nothing")
        #expect(try await store.keyPair(id: UUID(), of: acme) == nil)
        #expect(try await store.current(for: OrganizationID.checked("beta")) == nil)
        try await store.check()
    }

    /// History is newest first, pages by limit and offset, and a new insert replaces the current flag.
    func historyOrderAndPaging() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let acme = try OrganizationID.checked("acme")
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        var records: [KeyPairRecord] = []
        for index in 0..<5 {
            // Two pairs share a creation time: insertion order decides between them.
            let record = try StoreSamples.record(for: acme, createdAt: base.addingTimeInterval(Double(min(index, 3))))
            try await store.insertCurrent(record)
            records.append(record)
        }
        let history = try await store.history(for: acme, limit: 10, offset: 0)
        #expect(history.map(\.record.id) == records.reversed().map(\.id), "newest first, ties in insertion order")
        #expect(history.map(\.isCurrent) == [true, false, false, false, false], "one current pair: the newest")
        let page = try await store.history(for: acme, limit: 2, offset: 2)
        #expect(page.map(\.record.id) == Array(records.reversed().map(\.id)[2..<4]), "limit and offset page the history")
        #expect(try await store.history(for: acme, limit: 2, offset: 10).isEmpty)
        #expect(try await store.current(for: acme)?.id == records.last?.id)
    }

    /// Concurrent inserts for one organization, through every connection, leave exactly one current pair.
    func concurrentInserts() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let acme = try OrganizationID.checked("acme")
        let connections = [subject.store] + (subject.secondConnection.map { [$0] } ?? [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<24 {
                let store = connections[index % connections.count]
                group.addTask { try await store.insertCurrent(try StoreSamples.record(for: acme)) }
            }
            try await group.waitForAll()
        }
        let history = try await subject.store.history(for: acme, limit: 100, offset: 0)
        #expect(history.count == 24, "every insert was kept")
        #expect(history.filter(\.isCurrent).count == 1, "exactly one current pair")
        let current = try await subject.store.current(for: acme)
        #expect(current?.id == history.first(where: \.isCurrent)?.record.id)
        if let second = subject.secondConnection {
            #expect(try await second.current(for: acme)?.id == current?.id, "both connections agree")
        }
    }

    /// Usage counts pairs and current pairs per keystore and type; the per-organization
    /// breakdown names each organization's pairs.
    func usageCounts() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let acme = try OrganizationID.checked("acme")
        let beta = try OrganizationID.checked("beta")
        for _ in 0..<3 { try await store.insertCurrent(try StoreSamples.record(for: acme, keystore: "local")) }
        try await store.insertCurrent(try StoreSamples.record(for: acme, keystore: "kms", type: "aws-kms-symmetric"))
        try await store.insertCurrent(try StoreSamples.record(for: beta, keystore: "local"))
        let usage = Set(try await store.keystoreUsage())
        #expect(
            usage == [
                KeystoreUsage(keystoreName: "local", keystoreType: "none", pairs: 4, currentPairs: 1),
                KeystoreUsage(keystoreName: "kms", keystoreType: "aws-kms-symmetric", pairs: 1, currentPairs: 1),
            ],
            "pairs and current pairs per keystore and type"
        )
        #expect(
            try await store.organizationsUsing(keystore: "local", type: "none", limit: 10) == [
                .init(organization: "acme", count: 3), .init(organization: "beta", count: 1),
            ]
        )
        #expect(try await store.organizationsUsing(keystore: "local", type: "none", limit: 1) == [.init(organization: "acme", count: 3)])
        #expect(try await store.organizationsUsing(keystore: "local", type: "local-file", limit: 10).isEmpty)
    }

    /// Pages of current pairs: by organization, by age up to a time, by keystore; each in its
    /// order, each page at most `limit`, the cursors covering every row exactly once.
    func currentPairPages() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        var current: [OrganizationID: KeyPairRecord] = [:]
        for index in 0..<23 {
            let organization = try OrganizationID.checked(String(format: "org-%02d", (index * 7) % 23))
            // Ages repeat, so that ties are ordered by organization.
            let record = try StoreSamples.record(
                for: organization,
                keystore: index % 3 == 0 ? "kms" : "local",
                createdAt: base.addingTimeInterval(Double(index % 5) * 60)
            )
            try await store.insertCurrent(try StoreSamples.record(for: organization, createdAt: base.addingTimeInterval(-86_400)))
            try await store.insertCurrent(record)
            current[organization] = record
        }
        func all(_ query: CurrentPairQuery, limit: Int) async throws -> [KeyPairRecord] {
            var records: [KeyPairRecord] = []
            var next: CurrentPairQuery? = query
            var pages = 0
            while let query = next {
                let page = try await store.currentPairs(query, limit: limit)
                #expect(page.records.count <= limit, "a page holds at most limit")
                records += page.records
                next = page.next
                pages += 1
                if pages > 100 { break }
            }
            return records
        }
        let sortedByID = current.values.sorted { $0.organization < $1.organization }
        for limit in [1, 4, 23, 50] {
            #expect(try await all(.byOrganization(after: nil), limit: limit) == sortedByID, "by organization, limit \(limit)")
        }
        #expect(
            try await all(.byOrganization(after: "org-10"), limit: 5) == sortedByID.filter { $0.organization.rawValue > "org-10" },
            "after a cursor"
        )
        let threshold = base.addingTimeInterval(120)
        let byAge = current.values.filter { $0.createdAt <= threshold }.sorted {
            ($0.createdAt, $0.organization) < ($1.createdAt, $1.organization)
        }
        for limit in [1, 3, 100] {
            #expect(try await all(.createdAtOrBefore(threshold, cadence: nil, after: nil), limit: limit) == byAge, "by age, limit \(limit)")
        }
        #expect(
            try await all(.createdAtOrBefore(base.addingTimeInterval(-1), cadence: nil, after: nil), limit: 10).isEmpty,
            "old pairs are not current"
        )
        let kms = sortedByID.filter { $0.keystoreName == "kms" }
        for limit in [1, 2, 100] {
            #expect(try await all(.wrappedBy(keystore: "kms", after: nil), limit: limit) == kms, "by keystore, limit \(limit)")
        }
        let last = try await store.currentPairs(.byOrganization(after: nil), limit: 23)
        #expect(last.records.count == 23 && last.next == nil, "a page that ends the range says so")
    }

    /// A tenant's configuration is saved with its new pair in one step, versioned, refused on a
    /// stale version with nothing stored, keeps its last error until the next save, and moves
    /// the organization's pairs to its cadence in the age pages.
    func keyConfigurations() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let acme = try OrganizationID.checked("acme")
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        let first = try StoreSamples.record(for: acme, createdAt: base)
        try await store.insertCurrent(first)
        #expect(try await store.keyConfiguration(for: acme) == nil, "no configuration until one is saved")
        let weekly = TenantKeyConfiguration(
            type: "aws-kms-symmetric",
            keyAlias: "arn:aws:kms:eu-west-1:111122223333:alias/acme",
            rotation: .weekly,
            keyPairSpec: .rsa3072
        )
        let pair = try StoreSamples.record(for: acme, keystore: "tenant:aws-kms-symmetric", type: "aws-kms-symmetric", createdAt: base)
        guard
            case .saved(let saved) = try await store.saveKeyConfiguration(
                weekly,
                for: acme,
                expectedVersion: 0,
                updatedBy: "acme-admin",
                at: base,
                newPair: pair
            )
        else {
            Issue.record("a first save expecting version 0 is stored")
            return
        }
        #expect(saved.version == 1 && saved.configuration == weekly && saved.updatedBy == "acme-admin" && saved.lastError == nil)
        #expect(try await store.keyConfiguration(for: acme) == saved, "read back whole")
        #expect(try await store.current(for: acme) == pair, "the new pair is current")

        // A pair made under the configuration a save replaced is not stored.
        let late = try StoreSamples.record(for: acme, createdAt: base)
        #expect(try await store.insertCurrent(late, ifConfigurationVersion: 0) == false, "made under version 0, saved meanwhile")
        #expect(try await store.keyPair(id: late.id, of: acme) == nil)
        #expect(try await store.current(for: acme) == pair)
        let onTime = try StoreSamples.record(for: acme, keystore: "tenant:aws-kms-symmetric", type: "aws-kms-symmetric", createdAt: base)
        #expect(try await store.insertCurrent(onTime, ifConfigurationVersion: 1))
        #expect(try await store.current(for: acme) == onTime)
        #expect(
            try await store.insertCurrent(
                try StoreSamples.record(for: try OrganizationID.checked("beta"), createdAt: base.addingTimeInterval(365 * 86_400)),
                ifConfigurationVersion: 0
            ),
            "no configuration is version 0"
        )

        let stale = try StoreSamples.record(for: acme, createdAt: base)
        let conflict = try await store.saveKeyConfiguration(weekly, for: acme, expectedVersion: 0, updatedBy: "x", at: base, newPair: stale)
        #expect(conflict == .conflict(storedVersion: 1), "a stale version stores nothing")
        #expect(try await store.current(for: acme) == onTime)
        #expect(try await store.keyPair(id: stale.id, of: acme) == nil, "not even the pair")

        let error = KeyConfigurationError(code: "DisabledException", message: "the key is disabled", at: base)
        try await store.recordKeyConfigurationError(error, for: acme)
        #expect(try await store.keyConfiguration(for: acme)?.lastError == error)
        try await store.recordKeyConfigurationError(error, for: try OrganizationID.checked("beta"))
        #expect(try await store.keyConfiguration(for: try OrganizationID.checked("beta")) == nil, "no configuration, nothing recorded")

        // The pairs of a tenant with its own cadence are in its cadence's pages, not the file's.
        let due = base.addingTimeInterval(60)
        #expect(try await store.currentPairs(.createdAtOrBefore(due, cadence: .weekly, after: nil), limit: 10).records == [onTime])
        #expect(try await store.currentPairs(.createdAtOrBefore(due, cadence: nil, after: nil), limit: 10).records.isEmpty)
        let rotated = try StoreSamples.record(for: acme, keystore: "tenant:aws-kms-symmetric", type: "aws-kms-symmetric", createdAt: base)
        try await store.insertCurrent(rotated)
        #expect(
            try await store.currentPairs(.createdAtOrBefore(due, cadence: .weekly, after: nil), limit: 10).records == [rotated],
            "a rotation keeps the tenant's cadence"
        )

        let back = TenantKeyConfiguration(type: TenantKeyConfiguration.defaultType, keyAlias: nil, rotation: .monthly, keyPairSpec: nil)
        // (a reset, TenantKeyConfiguration.platformDefault, stores rotation nil: the file's cadence)
        let defaultPair = try StoreSamples.record(for: acme, createdAt: base)
        let reset = try await store.saveKeyConfiguration(
            back,
            for: acme,
            expectedVersion: nil,
            updatedBy: "acme-admin",
            at: base,
            newPair: defaultPair
        )
        guard case .saved(let second) = reset else {
            Issue.record("a save without an expected version is stored")
            return
        }
        #expect(second.version == 2 && second.lastError == nil, "a save clears the last error")
        #expect(try await store.currentPairs(.createdAtOrBefore(due, cadence: .monthly, after: nil), limit: 10).records == [defaultPair])
        #expect(try await store.history(for: acme, limit: 10, offset: 0).count == 5, "every pair is kept")
    }

    /// An unreadable record fails the requests that need it, as a corrupt record, and is
    /// reported by the pages without stopping them.
    func corruptRecords() async throws {
        let subject = try await open()
        defer { withExtendedLifetime(subject) {} }
        let store = subject.store
        let acme = try OrganizationID.checked("acme")
        let beta = try OrganizationID.checked("beta")
        let broken = try StoreSamples.record(for: acme)
        let intact = try StoreSamples.record(for: beta)
        try await store.insertCurrent(broken)
        try await store.insertCurrent(intact)
        try await subject.corrupt(broken.id)
        for query in [CurrentPairQuery.byOrganization(after: nil), .wrappedBy(keystore: "local", after: nil)] {
            let scan = try await store.currentPairs(query, limit: 10)
            #expect(scan.records.map(\.id) == [intact.id], "the intact pair is read")
            #expect(scan.corrupt.map(\.keyPairID) == [broken.id.uuidString.lowercased()], "the broken one is reported")
        }
        for (name, call) in [
            ("current(for:)", { @Sendable () async throws(StoreError) in _ = try await store.current(for: acme) }),
            ("keyPair(id:of:)", { @Sendable () async throws(StoreError) in _ = try await store.keyPair(id: broken.id, of: acme) }),
            ("history(for:)", { @Sendable () async throws(StoreError) in _ = try await store.history(for: acme, limit: 10, offset: 0) }),
        ] {
            do throws(StoreError) {
                try await call()
                Issue.record("\(name) read the corrupt record")
            } catch {
                #expect(error.kind == .corruptRecord, "\(name): \(error)")
                #expect(!error.affectsWholeStore)
            }
        }
        #expect(try await store.current(for: beta) == intact, "other organizations are unaffected")
        let unreadable = try await store.check()
        #expect(unreadable.allSatisfy { $0.keyPairID == broken.id.uuidString.lowercased() }, "check() reports only unreadable pairs")
    }
}
