import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KeyBroker
import NIOCore
import Testing
import _CryptoExtras

@testable import KeyBrokerServer
@testable import KeyBrokerTestSupport

/// The current public key served from memory: answers byte for byte what the encoder would
/// send, bounded by entries and bytes, dropped before a generation's own answer, and
/// cacheable by clients (ETag, 304, Cache-Control from the configuration).
@Suite("Public keys from memory")
struct PublicKeyCacheTests {
    static func record(
        organization: String = "acme",
        der: Data,
        spec: KeyPairSpec = .rsa2048,
        requestedBy: String = "test",
        backendKeyReference: String? = nil,
        keystore: String = "local"
    ) -> KeyPairRecord {
        KeyPairRecord(
            id: UUID(),
            organization: Fixtures.org(organization),
            keystoreName: keystore,
            keystoreType: "local-file",
            backendKeyReference: backendKeyReference,
            spec: spec,
            publicKeyDER: der,
            wrappedPrivateKey: Data([1, 2, 3]),
            encryptionContext: .organization(Fixtures.org(organization)),
            createdAt: Date(timeIntervalSince1970: 1_780_000_000.123456),
            reason: .manual,
            requestedBy: requestedBy
        )
    }

    @Test("a cached answer is byte for byte what APIJSON.encoder writes, for odd strings, absent fields and each key size")
    func renderingMatchesTheEncoder() throws {
        let der2048 = try TestKeys.rsa2048().publicKeyDER
        let der3072 = try _RSA.Encryption.PrivateKey(keySize: .bits3072).publicKey.derRepresentation
        let strings = [
            "test", "token:ops", "", "quote\"d", "back\\slash", "slash/and+plus", "tab\tnewline\n", "\u{01}\u{1f}", "ünïcødé ✓",
            "emoji 🔑", String(repeating: "x", count: 300), "</script>",
        ]
        var cases: [KeyPairRecord] = []
        for text in strings {
            cases.append(Self.record(der: der2048, requestedBy: text, backendKeyReference: text))
            cases.append(Self.record(der: der2048, requestedBy: text, backendKeyReference: nil, keystore: "ks-\(text.prefix(5))"))
        }
        cases.append(Self.record(der: der3072, spec: .rsa3072, backendKeyReference: "arn:aws:kms:eu-west-1:111122223333:key/abc"))
        for record in cases {
            let entry = try CachedPublicKey(record)
            let body = entry.body(allocator: ByteBufferAllocator())
            let expected = try APIJSON.encoder.encode(try PublicKeyView(record))
            #expect(Data(body.readableBytesView) == expected, "\(record.requestedBy.debugDescription)")
            #expect(!entry.isWhole, "the compact form serves \(record.requestedBy.debugDescription)")
            #expect(entry.etag == "\"\(record.id.uuidString.lowercased())\"")
            #expect(entry.cost < expected.count, "kept smaller than the answer")
        }
    }

    @Test("bounded: with room for 1,000 entries, 5,000 organizations read leave at most 1,000, and the evictions are counted")
    func bounded() throws {
        let metrics = ServerMetrics()
        let cache = PublicKeyCache(limits: .init(maxEntries: 1000, maxBytes: 64 * 1024 * 1024), metrics: metrics)
        let der = try TestKeys.rsa2048().publicKeyDER
        for index in 0..<5000 {
            let organization = Fixtures.org("org-\(index)")
            let ticket = cache.ticket(for: organization)
            cache.insert(try CachedPublicKey(Self.record(organization: "org-\(index)", der: der)), for: organization, ticket: ticket)
            // The first hundred are read again and again: the clock keeps them.
            if index % 10 == 0 { for hot in 0..<100 { _ = cache.lookup(Fixtures.org("org-\(hot)")) } }
        }
        #expect(cache.count == 1000)
        let rendered = String(decoding: metrics.render(), as: UTF8.self)
        #expect(rendered.contains("keybroker_public_key_cache_evictions_total 4000"), "\(rendered)")
        #expect(rendered.contains("keybroker_public_key_cache_entries 1000"))
        let hot = (0..<100).filter { cache.lookup(Fixtures.org("org-\($0)")) != nil }.count
        #expect(hot == 100, "entries read often survive the sweep (\(hot) of 100)")

        let small = PublicKeyCache(limits: .init(maxEntries: 1000, maxBytes: 10 * 1024), metrics: nil)
        for index in 0..<100 {
            let organization = Fixtures.org("org-\(index)")
            small.insert(
                try CachedPublicKey(Self.record(organization: "org-\(index)", der: der)),
                for: organization,
                ticket: small.ticket(for: organization)
            )
        }
        #expect(small.bytes <= 10 * 1024)
        #expect(small.count > 0 && small.count < 100)
    }

    @Test("a read that raced an invalidation cannot put its answer back; removeAll spoils every ticket")
    func tickets() throws {
        let cache = PublicKeyCache()
        let der = try TestKeys.rsa2048().publicKeyDER
        let acme = Fixtures.org("acme")
        let old = try CachedPublicKey(Self.record(der: der))
        let ticket = cache.ticket(for: acme)
        cache.invalidate(acme)  // a generation committed while the read was in the store
        cache.insert(old, for: acme, ticket: ticket)
        #expect(cache.lookup(acme) == nil)
        let fresh = cache.ticket(for: acme)
        cache.insert(old, for: acme, ticket: fresh)
        #expect(cache.lookup(acme)?.pairID == old.pairID)
        let beforeClear = cache.ticket(for: Fixtures.org("beta"))
        cache.removeAll()
        cache.insert(old, for: Fixtures.org("beta"), ticket: beforeClear)
        #expect(cache.count == 0)
    }

    @Test(
        "If-None-Match as RFC 9110 reads it: blanks around list members, weak tags, *, and nothing else",
        // `"x", *` is not RFC 9110's grammar, but it is what two field lines (`"x"` and `*`)
        // combine into, and `*` matches any current answer.
        arguments: [
            (#""a1""#, true), (#"W/"a1""#, true), (#" "x", W/"a1" "#, true), ("\t\"a1\"\t,", true), ("*", true),
            (#""x", *"#, true), (",,\"a1\"", true), ("", false), (",", false), (#""a""#, false), (#""a1x""#, false),
            ("a1", false), (#"w/"a1""#, false), ("W/", false), (#""a1"x"#, false), (#"" a1""#, false), ("**", false),
        ]
    )
    func ifNoneMatch(field: String, matches: Bool) {
        #expect(PublicKeyResponses.matches(field, etag: #""a1""#) == matches, "\(field)")
    }

    @Test("ETag and 304 (exact, weak, in a list, *); max-age from server.publicKeyMaxAge, 60 s by default, 0 gives no-store")
    func clientCaching() async throws {
        for (setting, expected) in [
            ("", "private, max-age=60"), ("server: { publicKeyMaxAge: 17s }\n", "private, max-age=17"),
            ("server: { publicKeyMaxAge: 0s }\n", "no-store"),
        ] {
            let fixture = try await ServerFixture.make(body: ServerFixture.configBody(extra: setting))
            let pair = try await fixture.server.runtime.broker.generateKeyPair(
                for: Fixtures.org("acme"),
                reason: .initial,
                requestedBy: "test"
            )
            let etag = "\"\(pair.id.uuidString.lowercased())\""
            try await fixture.test { client in
                for _ in 0..<2 {  // a miss, then a hit: the same headers
                    try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                        response in
                        #expect(response.status == .ok)
                        #expect(response.headers[.eTag] == etag)
                        #expect(response.headers[.cacheControl] == expected)
                        #expect(response.headers[.contentType] == "application/json")
                        let view = try APIJSON.decoder.decode(PublicKeyView.self, from: Data(response.body.readableBytesView))
                        #expect(view.keyPair.id == pair.id.uuidString.lowercased())
                    }
                }
                for condition in [etag, "W/\(etag)", "\"other\", \(etag)", "*"] {
                    var headers = fixture.headers("acme-recorder")
                    headers[.ifNoneMatch] = condition
                    try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: headers) {
                        #expect($0.status == .notModified, "\(condition)")
                        #expect($0.body.readableBytes == 0)
                        #expect($0.headers[.contentLength] == nil, "a 304 carries no Content-Length")
                        #expect($0.headers[.eTag] == etag)
                        #expect($0.headers[.cacheControl] == expected)
                    }
                }
                var stale = fixture.headers("acme-recorder")
                stale[.ifNoneMatch] = "\"\(UUID().uuidString.lowercased())\""
                try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: stale) { #expect($0.status == .ok) }
                // Without permission, no validator: 403 as before.
                try await client.execute(uri: "/v1/orgs/beta/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                    #expect($0.status == .forbidden)
                    #expect($0.headers[.eTag] == nil)
                }
            }
        }
    }

    @Test(
        "the answer from memory before the router gives what the router would: refusals, misses and odd paths still go through it, and both count under one route"
    )
    func fastPathAgreesWithTheRouter() async throws {
        let fixture = try await ServerFixture.make()
        _ = try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            var bodies: [Data] = []
            for _ in 0..<3 {  // a miss through the router, then hits from memory
                try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                    #expect($0.status == .ok)
                    bodies.append(Data($0.body.readableBytesView))
                }
            }
            #expect(Set(bodies).count == 1, "the same bytes from the router and from memory")
            // In memory now, yet: no token 401, an unknown token 401, a malformed id 400; a
            // trailing slash goes through the router, which serves the same route.
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get) { #expect($0.status == .unauthorized) }
            var other = fixture.headers(nil)
            other[.authorization] = "Bearer kb_not-a-token"
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: other) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/orgs/ac..me/public-key", method: .get, headers: fixture.headers("admin")) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/v1/orgs/acme/public-key/", method: .get, headers: fixture.headers("admin")) {
                #expect($0.status == .ok)
                #expect(Data($0.body.readableBytesView) == bodies.first)
            }
        }
        try await fixture.test { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                let lines = text.split(separator: "\n").filter {
                    $0.hasPrefix("keybroker_http_requests_total") && $0.contains("public-key")
                }
                #expect(
                    lines.contains {
                        $0.contains(#"route="/v1/orgs/{org}/public-key""#) && $0.contains(#"status="200""#) && $0.hasSuffix(" 4")
                    },
                    "\(lines)"
                )
                #expect(text.contains(#"keybroker_public_key_cache_lookups_total{result="hit"} 3"#), "\(text)")
                #expect(text.contains(#"keybroker_public_key_cache_lookups_total{result="miss"} 1"#))
            }
        }
    }

    @Test("a token allowed to decrypt only is refused the public key from memory too")
    func fastPathPermission() async throws {
        let fixture = try await ServerFixture.make()
        _ = try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("admin")) {
                #expect($0.status == .ok)
            }
            // acme-admin has encryption-key:view for acme (allowed); viewer for every org (allowed);
            // acme-recorder for beta: refused with 403, whatever is in memory.
            try await client.execute(uri: "/v1/orgs/beta/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                #expect($0.status == .forbidden)
            }
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("viewer")) {
                #expect($0.status == .ok)
            }
        }
    }

    @Test("a scheduled rotation: the next read returns the rotated pair, though the old one was in memory")
    func readAfterRotation() async throws {
        let start = Date()
        let clock = TestClock(start)
        let fixture = try await ServerFixture.make(
            body: ServerFixture.configBody(organizations: "{ acme: { rotation: weekly } }"),
            now: { clock.now }
        )
        _ = await fixture.server.scheduler.runOnce()
        try await fixture.test { client in
            func current() async throws -> String {
                try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                    response in
                    try APIJSON.decoder.decode(PublicKeyView.self, from: Data(response.body.readableBytesView)).keyPair.id
                }
            }
            let before = try await current()
            #expect(try await current() == before, "in memory now")
            clock.now = start.addingTimeInterval(7 * 86_400 + 60)
            #expect(await fixture.server.scheduler.runOnce().rotated == [Fixtures.org("acme"): .scheduled])
            let after = try await current()
            #expect(after != before)
            let stored = try await fixture.server.runtime.broker.currentKeyPair(for: Fixtures.org("acme"))
            #expect(after == stored.id.uuidString.lowercased())
        }
    }

    @Test("a pair by id: immutable caching, 304, another organization's pair 404, a malformed id 400, not current any more still served")
    func pairByID() async throws {
        let fixture = try await ServerFixture.make()
        let broker = fixture.server.runtime.broker
        let first = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let other = try await broker.generateKeyPair(for: Fixtures.org("beta"), reason: .initial, requestedBy: "test")
        _ = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .manual, requestedBy: "test")
        let id = first.id.uuidString.lowercased()
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/keypairs/\(id)", method: .get, headers: fixture.headers("acme-recorder")) {
                response in
                #expect(response.status == .ok)
                #expect(response.headers[.cacheControl] == "private, max-age=31536000, immutable")
                #expect(response.headers[.eTag] == "\"\(id)\"")
                let view = try APIJSON.decoder.decode(KeyPairPublicKeyView.self, from: Data(response.body.readableBytesView))
                #expect(view.id == id)
                #expect(view.publicKeyDER == first.publicKeyDER.base64EncodedString())
            }
            var conditional = fixture.headers("acme-recorder")
            conditional[.ifNoneMatch] = "\"\(id)\""
            try await client.execute(uri: "/v1/orgs/acme/keypairs/\(id)", method: .get, headers: conditional) {
                #expect($0.status == .notModified)
            }
            try await client.execute(
                uri: "/v1/orgs/acme/keypairs/\(other.id.uuidString.lowercased())",
                method: .get,
                headers: fixture.headers("admin")
            ) { #expect($0.status == .notFound) }
            for bad in ["nope", "\(id)x", String(id.dropLast())] {
                try await client.execute(uri: "/v1/orgs/acme/keypairs/\(bad)", method: .get, headers: fixture.headers("admin")) {
                    #expect($0.status == .badRequest, "\(bad)")
                }
            }
        }
    }
}

/// 200 generations (RSA key generation each) with reads racing them: CPU-heavy, so it runs in
/// the serial phase with the other LoadSensitive suites instead of starving the parallel one.
@Suite("Public keys from memory: read after generation (LoadSensitive)")
struct PublicKeyCacheLoadSensitiveTests {
    @Test("change key now: the very next read on this replica returns the new pair, 200 times, with reads racing each generation")
    func readAfterGeneration() async throws {
        let fixture = try await ServerFixture.make(
            body: ServerFixture.configBody(extra: "server: { limits: { generationsPerOrganizationPerMinute: 1000 } }\n")
        )
        _ = try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let headers = fixture.headers("admin")
        try await fixture.test { client in
            func current() async throws -> String {
                try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: headers) { response in
                    try APIJSON.decoder.decode(PublicKeyView.self, from: Data(response.body.readableBytesView)).keyPair.id
                }
            }
            for round in 0..<200 {
                let generated = try await withThrowingTaskGroup(of: String?.self) { group in
                    for _ in 0..<4 {
                        group.addTask {
                            _ = try await current()
                            return nil
                        }
                    }
                    group.addTask {
                        try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: headers) { response in
                            #expect(response.status == .created)
                            return try APIJSON.decoder.decode(KeyPairView.self, from: Data(response.body.readableBytesView)).id
                        }
                    }
                    var id: String?
                    for try await result in group { if let result { id = result } }
                    return id
                }
                let next = try await current()
                #expect(next == generated, "round \(round): the read after the 201 saw \(next), not \(generated ?? "?")")
                if next != generated { break }
            }
        }
    }

    @Test(
        "a new pair read back from the change feed puts the organization back in memory: this server's own, and another's on the same store within a poll and a read, before any request"
    )
    func followerReadsAgain() async throws {
        let directory = try TemporaryDirectory()
        let first = try await ServerFixture.make(directory: directory)
        let second = try await ServerFixture.make(directory: directory)
        let acme = Fixtures.org("acme")
        let initial = try await first.server.runtime.broker.generateKeyPair(for: acme, reason: .initial, requestedBy: "test")
        try await first.test { client in
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: first.headers("admin")) {
                #expect($0.status == .ok)
            }
        }
        let cache = first.server.runtime.publicKeys
        func inMemory() -> String? { cache.lookup(acme, countingMisses: false)?.etag }
        #expect(inMemory() == "\"\(initial.id.uuidString.lowercased())\"")
        // The feed still holds the generation above: the follower's first read drops the answer
        // (which spoils the tickets taken before) and reads it again.
        let before = cache.ticket(for: acme)
        let follower = Task { await first.server.follower.run() }
        defer { follower.cancel() }
        // A poll of the feed and a second's room for the read.
        let patience = 2.0
        let readBack = { cache.ticket(for: acme) != before && inMemory() == "\"\(initial.id.uuidString.lowercased())\"" }
        try await waitFor(seconds: patience, readBack)
        #expect(readBack(), "its own generation, read back from the feed, leaves it in memory")

        let next = try await second.server.runtime.broker.generateKeyPair(for: acme, reason: .manual, requestedBy: "test")
        let expected = "\"\(next.id.uuidString.lowercased())\""
        try await waitFor(seconds: patience) { inMemory() == expected }
        #expect(inMemory() == expected, "the other server's pair is in memory here, read without a request")
        follower.cancel()
        await follower.value
    }
}
