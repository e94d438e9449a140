import Foundation
import GRDB
import KeyBroker
import KeyBrokerSQLite
import Testing

@testable import KeyBrokerTestSupport

@Suite("Broker")
struct BrokerTests {
    let directory: TemporaryDirectory
    let org = Fixtures.org("org-a")

    init() throws { directory = try TemporaryDirectory() }

    private func broker(_ yaml: String = Fixtures.config(), now: @escaping @Sendable () -> Date = { Date() }) async throws -> Broker {
        try await Fixtures.broker(yaml, in: directory, extra: [FailingKeystorePlugin.self], now: now)
    }

    private func roundTrip(_ broker: Broker, _ record: KeyPairRecord, organization: OrganizationID? = nil) async throws -> Bool {
        let dataKey = Fixtures.dataKey()
        let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: record.publicKeyDER)
        let unwrapped = try await broker.unwrapDataKey(
            for: organization ?? record.organization,
            keyPairID: record.id,
            wrappedDataKey: wrapped
        )
        return unwrapped == dataKey
    }

    @Test("every pair in the history still unwraps after several rotations")
    func historyAcrossRotations() async throws {
        let broker = try await broker()
        var records: [KeyPairRecord] = []
        for reason in [KeyPairReason.initial, .scheduled, .manual, .scheduled] {
            records.append(try await broker.generateKeyPair(for: org, reason: reason, requestedBy: "test"))
        }
        let history = try await broker.history(for: org)
        #expect(history.map(\.record.id) == records.reversed().map(\.id))
        #expect(history.map(\.isCurrent) == [true, false, false, false])
        #expect(history.map(\.record.reason) == [.scheduled, .manual, .scheduled, .initial])
        #expect(try await broker.currentKeyPair(for: org).id == records.last?.id)
        for record in records {
            #expect(try await roundTrip(broker, record))
        }
        let page = try await broker.history(for: org, limit: 2, offset: 1)
        #expect(page.map(\.record.id) == [records[2].id, records[1].id])
    }

    @Test("after an organization switches keystore, old pairs unwrap through the keystore that wrapped them")
    func routesByThePairsKeystore() async throws {
        let before = try await broker()
        let old = try await before.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        #expect(old.keystoreName == "local")

        let after = try await broker(Fixtures.config(organizations: "{ org-a: { keystore: other } }"))
        #expect(try await after.rotationDue(for: org, at: Date()), "a changed keystore makes a new pair due")
        let new = try await after.generateKeyPair(for: org, reason: .configChange, requestedBy: "test")
        #expect(new.keystoreName == "other")
        #expect(new.backendKeyReference != old.backendKeyReference)
        #expect(try await roundTrip(after, old))
        #expect(try await roundTrip(after, new))
    }

    @Test("concurrent generation for one organization leaves exactly one current pair, also across two stores on one file")
    func concurrentGeneration() async throws {
        let first = try await broker()
        let second = try await broker()
        let org = self.org
        try await withThrowingTaskGroup(of: KeyPairRecord.self) { group in
            for index in 0..<12 {
                let broker = index.isMultiple(of: 2) ? first : second
                group.addTask { try await broker.generateKeyPair(for: org, reason: .manual, requestedBy: "task-\(index)") }
            }
            try await group.waitForAll()
        }
        let history = try await first.history(for: org)
        #expect((2...12).contains(history.count), "each broker made at least one pair")
        #expect(history.filter(\.isCurrent).count == 1)
        #expect(try await second.currentKeyPair(for: org).id == history.first(where: \.isCurrent)?.record.id)
    }

    @Test("concurrent generations for one organization on one broker are one generation: every caller gets its pair")
    func coalescedGeneration() async throws {
        let broker = try await broker()
        let org = self.org
        let results = try await withThrowingTaskGroup(of: (KeyPairRecord, Bool).self) { group in
            for index in 0..<50 {
                group.addTask {
                    let result = try await broker.generateKeyPairJoining(for: org, reason: .manual, requestedBy: "task-\(index)")
                    return (result.record, result.joined)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let history = try await broker.history(for: org)
        #expect(Set(results.map(\.0.id)).count == Set(history.map(\.record.id)).count, "every pair made was handed to someone")
        #expect(history.count < 5, "50 concurrent requests made \(history.count) pairs")
        #expect(results.filter { !$0.1 }.count == history.count, "one caller started each generation; the others joined")
    }

    @Test("a pair of another organization, or an unknown pair, is refused")
    func otherOrganizationsPair() async throws {
        let broker = try await broker()
        let record = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        let wrapped = try PublicKeyEncryption.wrapDataKey(Fixtures.dataKey(), publicKeyDER: record.publicKeyDER)
        let error = await #expect(throws: BrokerError.self) {
            try await broker.unwrapDataKey(for: Fixtures.org("org-b"), keyPairID: record.id, wrappedDataKey: wrapped)
        }
        #expect(error?.kind == .notFound)
        #expect(error?.message == "organization 'org-b' has no key pair \(record.id.uuidString.lowercased())")
        await #expect(throws: BrokerError.self) {
            try await broker.unwrapDataKey(for: org, keyPairID: UUID(), wrappedDataKey: wrapped)
        }
    }

    @Test("a data key wrapped with another public key, or garbage, is a clear input error")
    func badWrappedDataKey() async throws {
        let broker = try await broker()
        let record = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        let other = try await broker.generateKeyPair(for: Fixtures.org("org-b"), reason: .initial, requestedBy: "test")
        let wrongKey = try PublicKeyEncryption.wrapDataKey(Fixtures.dataKey(), publicKeyDER: other.publicKeyDER)
        let error = await #expect(throws: BrokerError.self) {
            try await broker.unwrapDataKey(for: org, keyPairID: record.id, wrappedDataKey: wrongKey)
        }
        #expect(error?.kind == .invalidInput)
        let short = await #expect(throws: BrokerError.self) {
            try await broker.unwrapDataKey(for: org, keyPairID: record.id, wrappedDataKey: Data(repeating: 1, count: 10))
        }
        #expect(short?.message == error?.message, "one answer whatever the cause")
    }

    @Test("removing or retyping a keystore that stored pairs need is refused, naming it and the pairs per organization")
    func referencedKeystoreCannotBeRemoved() async throws {
        let broker = try await broker(Fixtures.config(organizations: "{ org-a: { keystore: other }, org-b: { keystore: other } }"))
        try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        try await broker.generateKeyPair(for: org, reason: .manual, requestedBy: "test")
        try await broker.generateKeyPair(for: Fixtures.org("org-b"), reason: .initial, requestedBy: "test")

        let withoutOther = """
            storage: { sqlite: { path: data/keybroker.sqlite } }
            keystores:
              local: { type: local-file, path: data/master.key, createIfMissing: true }
            """
        let removed = await #expect(throws: ConfigError.self) { try await self.broker(withoutOther) }
        #expect(
            removed?.errors.map(\.message) == [
                "keystore 'other' is not configured, but 3 stored key pair(s) need it to decrypt (org-a: 2, org-b: 1); put it back under 'keystores:' (organizations need not use it) so their recordings stay readable"
            ]
        )

        let retyped = """
            storage: { sqlite: { path: data/keybroker.sqlite } }
            keystores:
              local: { type: local-file, path: data/master.key, createIfMissing: true }
              other: { type: none }
            defaults: { keystore: local }
            """
        let error = await #expect(throws: ConfigError.self) { try await self.broker(retyped) }
        #expect(
            error?.errors.first?.message.hasPrefix(
                "keystore 'other' is now of type 'none', but 3 stored key pair(s) were wrapped by it as type 'local-file'"
            ) == true
        )
        #expect(error?.errors.first?.location?.line == 4)
    }

    @Test("test() reports the failing step with the backend's error and saves nothing")
    func testReportsFailingStep() async throws {
        let broker = try await broker(
            Fixtures.config(
                organizations: "{ org-a: { keystore: flaky } }",
                extraKeystores: "  flaky: { type: test-failing, failOn: decrypt }"
            )
        )
        let report = try await broker.test(organization: org)
        #expect(!report.passed)
        #expect(report.keystore == "flaky")
        #expect(report.steps.map(\.name) == Broker.testStepNames)
        // context-binding is skipped too: a keystore that cannot decrypt at all proves nothing by refusing.
        #expect(report.steps.map(\.outcome) == [.passed, .passed, .failed, .skipped, .skipped, .skipped])
        let failed = report.steps[2]
        #expect(failed.keystoreError?.backendCode == "AccessDeniedException")
        #expect(failed.detail?.contains("User is not authorized to perform kms:Decrypt") == true)
        #expect(try await broker.history(for: org).isEmpty)
    }

    @Test("test() passes for a working keystore and for a candidate, and saves nothing")
    func testPassesAndSavesNothing() async throws {
        let broker = try await broker()
        let report = try await broker.test(organization: org)
        #expect(report.passed)
        #expect(report.steps.allSatisfy { $0.outcome == .passed })

        let candidatePath = try directory.write(
            "candidate.yaml",
            "name: next\ntype: local-file\npath: data/next.key\ncreateIfMissing: true\nkeyPairSpec: RSA_2048\n"
        )
        let candidate = try Fixtures.loader().loadCandidate(path: candidatePath)
        let candidateReport = try await broker.test(organization: org, candidate: candidate)
        #expect(candidateReport.passed)
        #expect(candidateReport.keystore == "next")
        #expect(try await broker.history(for: org).isEmpty)
    }

    @Test("test() flags a keystore that ignores the encryption context")
    func testDetectsMissingContextBinding() async throws {
        struct Careless: Keystore {
            let inner = FailingKeystore(name: "careless", failOn: "nothing")
            var name: String { "careless" }
            var type: String { "test-careless" }
            func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
                try await inner.generateKeyPair(spec, context: EncryptionContext(["fixed": "x"]))
            }
            func decryptPrivateKey(
                _ wrapped: WrappedPrivateKey,
                context: EncryptionContext
            ) async throws(KeystoreError) -> PrivateKeyMaterial {
                try await inner.decryptPrivateKey(wrapped, context: EncryptionContext(["fixed": "x"]))
            }
            func checkHealth() async -> KeystoreHealth { .healthy("careless") }
        }
        let broker = try await broker()
        let settings = try Fixtures.loader().loadCandidate(path: try directory.write("c.yaml", "type: none\n")).settings
        let report = try await broker.test(organization: org, candidate: (settings, Careless()))
        #expect(!report.passed)
        #expect(report.steps.last?.outcome == .failed)
        #expect(report.steps.last?.detail?.contains("does not bind keys to organizations") == true)
    }

    @Test("a failed generation leaves the current pair untouched, and the public key needs no keystore")
    func failedGenerationKeepsCurrent() async throws {
        let config = { (failOn: String) in
            Fixtures.config(
                organizations: "{ org-a: { keystore: flaky } }",
                extraKeystores: "  flaky: { type: test-failing, failOn: \(failOn) }"
            )
        }
        let working = try await broker(config("nothing"))
        let current = try await working.generateKeyPair(for: org, reason: .initial, requestedBy: "test")

        let failing = try await broker(config("generate"))
        let error = await #expect(throws: BrokerError.self) {
            try await failing.generateKeyPair(for: org, reason: .scheduled, requestedBy: "test")
        }
        #expect(error?.kind == .keystoreFailed)
        #expect(error?.keystoreError?.backendCode == "AccessDeniedException")
        #expect(try await failing.currentKeyPair(for: org) == current)
        #expect(try await failing.history(for: org).count == 1)

        // Keystore down for decryption: encryption (the public key) still works, unwrap is refused.
        let down = try await broker(config("decrypt"))
        #expect(try await down.currentKeyPair(for: org).publicKeyDER == current.publicKeyDER)
        let unwrap = await #expect(throws: BrokerError.self) { try await roundTrip(down, current) }
        #expect(unwrap?.kind == .keystoreFailed)
        #expect(unwrap?.message.contains("AccessDeniedException: User is not authorized to perform kms:Decrypt") == true)
    }

    @Test("an organization without a pair gets a message naming the command that creates one")
    func noPairYet() async throws {
        let broker = try await broker()
        let error = await #expect(throws: BrokerError.self) { try await broker.currentKeyPair(for: org) }
        #expect(error?.kind == .notFound)
        #expect(error?.message == "organization 'org-a' has no key pair yet; create one with: keybroker keys generate --org org-a")
    }

    @Test("rotation is due one cadence after the current pair was created")
    func rotationDue() async throws {
        let start = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z
        let clock = TestClock(start)
        let broker = try await broker(
            Fixtures.config(organizations: "{ org-a: { rotation: weekly }, org-n: { rotation: never } }"),
            now: { clock.now }
        )
        #expect(try await broker.rotationDue(for: org, at: start), "no pair yet: due at once")
        try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        try await broker.generateKeyPair(for: Fixtures.org("org-n"), reason: .initial, requestedBy: "test")
        #expect(try await !broker.rotationDue(for: org, at: start.addingTimeInterval(7 * 86_400 - 1)))
        #expect(try await broker.rotationDue(for: org, at: start.addingTimeInterval(7 * 86_400)))
        #expect(try await !broker.rotationDue(for: Fixtures.org("org-n"), at: start.addingTimeInterval(3650 * 86_400)))

        clock.now = start.addingTimeInterval(8 * 86_400)
        let status = try await broker.status()
        let orgStatus = try #require(status.due.first { $0.organization == org })
        #expect(orgStatus.rotationDue)
        #expect(orgStatus.nextRotation == start.addingTimeInterval(7 * 86_400))
    }

    @Test(
        "cadences follow the UTC calendar",
        arguments: [
            (RotationCadence.daily, "2026-01-31T10:00:00Z", "2026-02-01T10:00:00Z"),
            (.weekly, "2026-01-31T10:00:00Z", "2026-02-07T10:00:00Z"),
            (.monthly, "2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z"),
            (.yearly, "2028-02-29T10:00:00Z", "2029-02-28T10:00:00Z"),
        ]
    )
    func cadences(cadence: RotationCadence, created: String, expected: String) throws {
        let parse = { (text: String) in try Date(text, strategy: .iso8601) }
        #expect(cadence.nextRotation(after: try parse(created)) == (try parse(expected)))
        #expect(RotationCadence.never.nextRotation(after: try parse(created)) == nil)
    }

    @Test(
        "status shows unhealthy keystores with the backend's error, the usage counts, and the organizations due: keystore changed, none yet"
    )
    func status() async throws {
        let first = try await broker()
        try await first.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        let broker = try await broker(
            Fixtures.config(
                organizations: "{ org-a: { keystore: flaky }, org-new: {} }",
                extraKeystores: "  flaky: { type: test-failing, failOn: health }"
            )
        )
        let status = try await broker.status()
        #expect(status.keystores.map(\.name) == ["flaky", "local", "other", "plain"])
        let flaky = try #require(status.keystores.first)
        #expect(flaky.health.error?.backendCode == "AccessDeniedException")
        #expect(status.keystores.dropFirst().allSatisfy { $0.health.isHealthy })
        #expect(status.due.map(\.organization.rawValue) == ["org-a", "org-new"])
        #expect(status.due[0].keystoreChanged)
        #expect(status.due[0].rotationDue)
        #expect(status.due[1].current == nil)
        #expect(status.usage == [KeystoreUsage(keystoreName: "local", keystoreType: "local-file", pairs: 1, currentPairs: 1)])
        #expect(!status.moreDue)
        let first2 = try await broker.status(limit: 1)
        #expect(first2.due.map(\.organization.rawValue) == ["org-a"] && first2.moreDue, "a bounded page, and whether more follow")
    }
}

@Suite("Broker against an altered database")
struct TamperedStoreTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    private func alter(_ sql: String, _ arguments: StatementArguments) throws {
        let queue = try DatabaseQueue(path: directory.path("data/keybroker.sqlite"))
        try queue.write { db in try db.execute(sql: sql, arguments: arguments) }
    }

    @Test("a row whose stored context names another organization does not unwrap (invariant 5)")
    func copiedContextRefused() async throws {
        let broker = try await Fixtures.broker(Fixtures.config(), in: directory)
        let victim = try await broker.generateKeyPair(for: Fixtures.org("victim"), reason: .initial, requestedBy: "test")
        let attacker = try await broker.generateKeyPair(for: Fixtures.org("attacker"), reason: .initial, requestedBy: "test")
        // Copy the victim's wrapped key and context into the attacker's row.
        try alter(
            "UPDATE key_pair SET wrapped_private_key = ?, encryption_context = ?, public_key = ? WHERE id = ?",
            [
                victim.wrappedPrivateKey, String(decoding: victim.encryptionContext.canonicalBytes, as: UTF8.self),
                victim.publicKeyDER, attacker.id.uuidString.lowercased(),
            ]
        )
        let wrapped = try PublicKeyEncryption.wrapDataKey(Fixtures.dataKey(), publicKeyDER: victim.publicKeyDER)
        let error = await #expect(throws: BrokerError.self) {
            try await broker.unwrapDataKey(for: Fixtures.org("attacker"), keyPairID: attacker.id, wrappedDataKey: wrapped)
        }
        #expect(error?.kind == .corruptRecord)
        #expect(error?.message.contains("binds it to another organization") == true)
    }

    @Test("a swapped public key is detected when the pair's private key is next used")
    func swappedPublicKeyDetected() async throws {
        let broker = try await Fixtures.broker(Fixtures.config(), in: directory)
        let org = Fixtures.org("org-a")
        let record = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        let other = try await broker.generateKeyPair(for: Fixtures.org("org-b"), reason: .initial, requestedBy: "test")
        try alter("UPDATE key_pair SET public_key = ? WHERE id = ?", [other.publicKeyDER, record.id.uuidString.lowercased()])
        let wrapped = try PublicKeyEncryption.wrapDataKey(Fixtures.dataKey(), publicKeyDER: record.publicKeyDER)
        let error = await #expect(throws: BrokerError.self) {
            try await broker.unwrapDataKey(for: org, keyPairID: record.id, wrappedDataKey: wrapped)
        }
        #expect(error?.message.contains("stored public key does not match its private key") == true)
    }
}
