import Foundation
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerServer
import KeyBrokerTesting
import Testing

@testable import KeyBrokerTestSupport

@Suite("Rotation scheduler (injected clock)")
struct SchedulerTests {
    let start = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z

    @Test("new organizations get a pair at once; each rotates on its cadence measured from its pair's creation")
    func cadences() async throws {
        let clock = TestClock(start)
        let fixture = try await ServerFixture.make(
            body: ServerFixture.configBody(
                organizations: "{ acme: { rotation: weekly }, beta: { rotation: monthly }, frozen: { rotation: never } }"
            ),
            now: { clock.now }
        )
        let scheduler = fixture.server.scheduler
        let first = await scheduler.runOnce()
        #expect(first.rotated == [Fixtures.org("acme"): .initial, Fixtures.org("beta"): .initial, Fixtures.org("frozen"): .initial])
        #expect(await scheduler.runOnce().rotated.isEmpty)

        clock.now = start.addingTimeInterval(7 * 86_400 - 1)
        #expect(await scheduler.runOnce().rotated.isEmpty)
        clock.now = start.addingTimeInterval(7 * 86_400)
        #expect(await scheduler.runOnce().rotated == [Fixtures.org("acme"): .scheduled])
        clock.now = start.addingTimeInterval(13 * 86_400)
        #expect(await scheduler.runOnce().rotated.isEmpty, "the weekly org counts from its new pair")
        clock.now = start.addingTimeInterval(31 * 86_400)
        #expect(await scheduler.runOnce().rotated == [Fixtures.org("acme"): .scheduled, Fixtures.org("beta"): .scheduled])
        clock.now = start.addingTimeInterval(3650 * 86_400)
        #expect(await scheduler.runOnce().rotated.keys.sorted() == [Fixtures.org("acme"), Fixtures.org("beta")])

        let history = try await fixture.server.runtime.broker.history(for: Fixtures.org("acme"))
        #expect(history.map(\.record.reason) == [.scheduled, .scheduled, .scheduled, .initial])
        #expect(history.allSatisfy { $0.record.requestedBy == "scheduler" })
    }

    @Test("a failed rotation keeps the current pair, is shown as fallback with the backend's error, and backs off")
    func failureAndBackoff() async throws {
        let clock = TestClock(start)
        let body = { (failOn: String) in
            ServerFixture.configBody(
                organizations: "{ acme: { keystore: flaky, rotation: daily } }",
                extraKeystores: "  flaky: { type: test-failing, failOn: \(failOn) }"
            )
        }
        let fixture = try await ServerFixture.make(body: body("nothing"), now: { clock.now })
        let scheduler = fixture.server.scheduler
        _ = await scheduler.runOnce()
        let current = try await fixture.server.runtime.broker.currentKeyPair(for: Fixtures.org("acme"))

        try fixture.rewrite(body: body("generate"))
        _ = try await fixture.server.runtime.reload()
        clock.now = start.addingTimeInterval(86_400 + 1)
        let failed = await scheduler.runOnce()
        #expect(failed.failed == [Fixtures.org("acme")])
        #expect(try await fixture.server.runtime.broker.currentKeyPair(for: Fixtures.org("acme")) == current)
        let failure = try #require(scheduler.failuresByOrganization[Fixtures.org("acme")])
        #expect(failure.error.contains("AccessDeniedException"))
        #expect(failure.nextAttempt == clock.now.addingTimeInterval(60))

        try await fixture.test { client in
            try await client.execute(uri: "/v1/status", method: .get, headers: fixture.headers("viewer")) { response in
                let status = try response.json(StatusView.self)
                let acme = try #require(status.organizations.first)
                #expect(acme.fallbackInUse)
                #expect(acme.rotationDue)
                #expect(acme.lastRotationError?.contains("User is not authorized") == true)
            }
        }

        clock.now = clock.now.addingTimeInterval(30)
        #expect(await scheduler.runOnce().skippedInBackoff == [Fixtures.org("acme")])
        clock.now = clock.now.addingTimeInterval(31)
        _ = await scheduler.runOnce()
        #expect(scheduler.failuresByOrganization[Fixtures.org("acme")]?.failures == 2)
        #expect(scheduler.failuresByOrganization[Fixtures.org("acme")]?.nextAttempt == clock.now.addingTimeInterval(120), "backoff doubles")

        try fixture.rewrite(body: body("nothing"))
        _ = try await fixture.server.runtime.reload()
        clock.now = clock.now.addingTimeInterval(121)
        #expect(await scheduler.runOnce().rotated == [Fixtures.org("acme"): .scheduled])
        #expect(scheduler.failuresByOrganization.isEmpty)
    }

    @Test("many organizations due at once: at most `concurrency` generations run together, spaced by the per-keystore rate")
    func boundedAndRateLimited() async throws {
        let organizations = (1...8).map { "org-\($0): { keystore: counted-scheduler }" }.joined(separator: ", ")
        let body = ServerFixture.configBody(
            organizations: "{ \(organizations) }",
            extraKeystores: "  counted-scheduler: { type: test-counting, delayMs: 30 }",
            extra: "scheduler: { concurrency: 2, perKeystoreRate: 40 }\n"
        )
        let fixture = try await ServerFixture.make(body: body)
        CountingKeystore.reset("counted-scheduler")
        let clock = ContinuousClock()
        let began = clock.now
        let pass = await fixture.server.scheduler.runOnce()
        let elapsed = clock.now - began
        #expect(pass.rotated.count == 8)
        let counts = CountingKeystore.counts("counted-scheduler")
        #expect(counts.generate == 8)
        #expect(counts.maxRunning <= 2)
        // 8 generations at 40 per second need at least 7 gaps of 25 ms.
        #expect(elapsed >= .milliseconds(170))
    }
}

@Suite("Private-key cache", .serialized)
struct PrivateKeyCacheTests {
    private func broker(_ directory: TemporaryDirectory, cache: String, clock: TestClock) async throws -> (Broker, PrivateKeyCache) {
        let body = Fixtures.config(
            organizations: "{ acme: { keystore: counted }, globex: { keystore: counted } }",
            extraKeystores: "  counted: { type: test-counting, delayMs: 50 }"
        )
        let path = try directory.write("c.yaml", body + "\nprivateKeyCache: \(cache)\n")
        let loaded = try Fixtures.loader(extra: [CountingKeystorePlugin.self]).load(path: path)
        guard case .sqlite(let settings) = loaded.config.storage else { fatalError() }
        let cache = PrivateKeyCache(policy: loaded.config.privateKeyCache, now: { clock.now })
        let broker = try await Broker.open(loaded, store: try SQLiteKeyPairStore(settings), now: { clock.now }, cache: cache)
        return (broker, cache)
    }

    private func unwrap(_ broker: Broker, _ pair: KeyPairRecord) async throws -> Bool {
        let dataKey = Fixtures.dataKey()
        let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: pair.publicKeyDER)
        return try await broker.unwrapDataKey(for: pair.organization, keyPairID: pair.id, wrappedDataKey: wrapped) == dataKey
    }

    @Test("many concurrent misses for one pair make one keystore call (single flight)")
    func singleFlight() async throws {
        let directory = try TemporaryDirectory()
        let clock = TestClock(Date())
        let (broker, cache) = try await broker(directory, cache: "{ maxAge: 5m, maxUses: 1000 }", clock: clock)
        CountingKeystore.reset("counted")
        let pair = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 { group.addTask { try await self.unwrap(broker, pair) } }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 20 && results.allSatisfy { $0 })
        #expect(CountingKeystore.counts("counted").decrypt == 1)
        #expect(await cache.count == 1)
    }

    @Test("maxUses and maxAge bound how long a decrypted key serves")
    func limits() async throws {
        let directory = try TemporaryDirectory()
        let clock = TestClock(Date())
        let (broker, _) = try await broker(directory, cache: "{ maxAge: 60s, maxUses: 3 }", clock: clock)
        CountingKeystore.reset("counted")
        let pair = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        for _ in 0..<6 { #expect(try await unwrap(broker, pair)) }
        #expect(CountingKeystore.counts("counted").decrypt == 2, "3 uses per decryption")
        clock.now = clock.now.addingTimeInterval(61)
        #expect(try await unwrap(broker, pair))
        #expect(CountingKeystore.counts("counted").decrypt == 3, "expired after maxAge")
    }

    @Test("a cached pair answers only its own organization, and only ciphertexts of its size")
    func hitIsScopedAndChecked() async throws {
        let directory = try TemporaryDirectory()
        let (broker, cache) = try await broker(directory, cache: "{ maxAge: 5m, maxUses: 1000 }", clock: TestClock(Date()))
        CountingKeystore.reset("counted")
        let pair = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        #expect(try await unwrap(broker, pair))
        #expect(await cache.count == 1)
        let wrapped = try PublicKeyEncryption.wrapDataKey(Fixtures.dataKey(), publicKeyDER: pair.publicKeyDER)
        do {
            _ = try await broker.unwrapDataKey(for: Fixtures.org("globex"), keyPairID: pair.id, wrappedDataKey: wrapped)
            Issue.record("another organization's cached pair was used")
        } catch {
            #expect(error.kind == .notFound, "another organization's cached pair is unknown to it")
        }
        do {
            _ = try await broker.unwrapDataKey(for: Fixtures.org("acme"), keyPairID: pair.id, wrappedDataKey: wrapped.dropLast())
            Issue.record("a short ciphertext was accepted on a cache hit")
        } catch {
            #expect(error.kind == .invalidInput)
        }
        #expect(CountingKeystore.counts("counted").decrypt == 1)
    }

    @Test("after a reload, a key that a request on the old broker decrypts is never served by the new broker")
    func reloadStartsAnEmptyCache() async throws {
        let body = ServerFixture.configBody(
            organizations: "{ acme: { keystore: counted-reload } }",
            extraKeystores: "  counted-reload: { type: test-counting }",
            extra: "privateKeyCache: { maxAge: 5m, maxUses: 1000 }\n"
        )
        let fixture = try await ServerFixture.make(body: body)
        CountingKeystore.reset("counted-reload")
        let old = fixture.server.runtime.broker
        let pair = try await old.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        _ = try await fixture.server.runtime.reload()
        // A request that took the old snapshot and reaches the keystore only now.
        #expect(try await unwrap(old, pair))
        #expect(CountingKeystore.counts("counted-reload").decrypt == 1)
        let new = fixture.server.runtime.broker
        #expect(new !== old)
        #expect(try await unwrap(new, pair))
        #expect(CountingKeystore.counts("counted-reload").decrypt == 2, "the new broker decrypted through its own keystore")
        #expect(try await unwrap(new, pair))
        #expect(CountingKeystore.counts("counted-reload").decrypt == 2, "and then serves from its own cache")
    }

    @Test("maxEntries bounds the keys held, oldest first, through many loads and drops")
    func entriesBounded() async throws {
        let clock = TestClock(Date())
        let cache = PrivateKeyCache(policy: PrivateKeyCachePolicy(maxAge: .seconds(300), maxUses: 2, maxEntries: 3), now: { clock.now })
        let material = try PrivateKeyMaterial(generating: .rsa2048)
        let organization = Fixtures.org("acme")
        let ids = (0..<5).map { _ in UUID() }
        for round in 0..<3000 {
            let id = ids[round % ids.count]
            _ = try await cache.key(for: id, of: organization) { () throws(BrokerError) in material }
            #expect(await cache.count <= 3)
        }
        #expect(await cache.count == 3)
        #expect(await cache.cachedKey(for: ids[0], of: Fixtures.org("globex")) == nil)
    }

    @Test("maxAge 0s turns the cache off: every unwrap asks the keystore")
    func disabled() async throws {
        let directory = try TemporaryDirectory()
        let (broker, _) = try await broker(directory, cache: "{ maxAge: 0s }", clock: TestClock(Date()))
        CountingKeystore.reset("counted")
        let pair = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        for _ in 0..<3 { #expect(try await unwrap(broker, pair)) }
        #expect(CountingKeystore.counts("counted").decrypt == 3)
    }
}

/// Waits on real time: run alone after the parallel suite (see scripts/test).
@Suite("Rotation scheduler loop (run alone)")
struct SchedulerLoopLoadSensitiveTests {
    @Test("the loop waits its interval between passes, and runSoon wakes it early, again and again")
    func loopWaitsAndWakes() async throws {
        let fixture = try await ServerFixture.make(body: ServerFixture.configBody(extra: "scheduler: { interval: 60s }\n"))
        let scheduler = fixture.server.scheduler
        let loop = Task { await scheduler.run() }
        defer { loop.cancel() }
        try await waitFor { scheduler.passes == 1 }
        try await Task.sleep(for: .milliseconds(600))
        #expect(scheduler.passes == 1, "no pass before the interval (no busy loop)")
        for expected in 2...4 {
            scheduler.runSoon()
            try await waitFor { scheduler.passes == expected }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(scheduler.passes == 4)
        loop.cancel()
        await loop.value
    }

}

@Suite("Rotation at scale: a pass reads what is due")
struct ScaleSchedulerTests {
    let start = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z

    @Test("latestDueCreation is the exact boundary of isDue, across month ends, leap days and every cadence")
    func dueBoundary() throws {
        var generator = SystemRandomNumberGenerator()
        let fixed = [
            "2026-01-31T10:00:00Z", "2026-03-31T00:00:00Z", "2028-02-29T12:00:00Z", "2029-03-01T00:00:00Z", "2026-12-31T23:59:59Z",
        ]
        let nows =
            try fixed.map { try Date($0, strategy: .iso8601) }
            + (0..<200).map { _ in Date(timeIntervalSince1970: Double.random(in: 1_700_000_000...2_000_000_000, using: &generator)) }
        for cadence in RotationCadence.allCases {
            for now in nows {
                guard let boundary = cadence.latestDueCreation(at: now) else {
                    #expect(cadence == .never)
                    continue
                }
                // On the microsecond grid a store keeps: the boundary is due, the next microsecond is not.
                let microseconds = (boundary.timeIntervalSince1970 * 1_000_000).rounded()
                let next = Date(timeIntervalSince1970: (microseconds + 1) / 1_000_000)
                #expect(cadence.isDue(created: boundary, now: now), "\(cadence) at \(now): the boundary is due")
                #expect(!cadence.isDue(created: next, now: now), "\(cadence) at \(now): a microsecond later is not")
            }
        }
    }

    @Test("a pass rotates exactly the due organizations, reading no row when none is due; a new default keystore moves every follower")
    func passReadsWhatIsDue() async throws {
        let clock = TestClock(start)
        let body =
            Fixtures.config(defaultKeystore: "plain", organizations: "{ pinned: { keystore: plain, rotation: yearly } }")
            + "\naudit: { destination: audit.log }\nscheduler: { perKeystoreRate: 1000, concurrency: 8 }\n"
        // How many current-pair rows the store's pages returned since the last look.
        let rows = Locked(0)
        func takeCount() -> Int {
            defer { rows.update { $0 = 0 } }
            return rows.value
        }
        let fixture = try await ServerFixture.make(
            body: body,
            now: { clock.now },
            store: { store in
                ObservedStore(inner: store, onPage: { page in rows.update { $0 += page.records.count + page.corrupt.count } })
            }
        )
        let store = fixture.server.runtime.broker.store
        // More followers than one page of the pass (256); the five oldest are due (monthly).
        let followers = (0..<260).map { Fixtures.org(String(format: "org-%03d", $0)) }
        for (index, organization) in followers.enumerated() {
            let age: TimeInterval = index % 52 == 0 ? 40 * 86_400 : 86_400
            try await store.insertCurrent(
                try StoreSamples.record(for: organization, keystore: "plain", type: "none", createdAt: start.addingTimeInterval(-age))
            )
        }
        let due = followers.enumerated().filter { $0.offset % 52 == 0 }.map(\.element)
        let first = await fixture.server.scheduler.runOnce()
        #expect(
            first.rotated
                == Dictionary(uniqueKeysWithValues: due.map { ($0, .scheduled) }).merging([Fixtures.org("pinned"): .initial]) { $1 }
        )
        #expect(takeCount() == due.count, "the pass read the due rows only")
        let idle = await fixture.server.scheduler.runOnce()
        #expect(idle.rotated.isEmpty)
        #expect(takeCount() == 0, "nothing due: no row read")

        try fixture.rewrite(
            body: body.replacingOccurrences(of: "keystore: plain\n  rotation: monthly", with: "keystore: other\n  rotation: monthly")
        )
        let reload = try await fixture.server.runtime.reload()
        #expect(reload.defaultsMoved?.from == "plain" && reload.defaultsMoved?.to == "other")
        #expect(reload.defaultsMoved?.currentPairs == followers.count + 1, "the followers' and the pinned organization's pairs")
        let moved = await fixture.server.scheduler.runOnce()
        #expect(Set(moved.rotated.keys) == Set(followers), "every follower, across pages; the pinned organization stays")
        #expect(moved.rotated.values.allSatisfy { $0 == .configChange })
        _ = takeCount()
        #expect(await fixture.server.scheduler.runOnce().rotated.isEmpty)
        #expect(takeCount() == 1, "only the pinned organization's pair, which the old default still holds")
    }
}
