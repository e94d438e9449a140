import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KeyBroker
import KeyBrokerServer
import NIOCore
import Testing

@testable import KeyBrokerTestSupport

@Suite("Server: probes")
struct ProbeTests {
    @Test("livez answers at once; readyz is unavailable until the store was checked, then ok")
    func probes() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            try await client.execute(uri: "/livez", method: .get) {
                #expect($0.status == .ok)
                #expect($0.text == #"{"status":"ok"}"#)
            }
            try await client.execute(uri: "/livez", method: .head) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) {
                #expect($0.status == .serviceUnavailable)
                #expect($0.text == #"{"status":"unavailable"}"#)
            }
        }
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        try await fixture.test { client in
            try await client.execute(uri: "/readyz", method: .get) {
                #expect($0.status == .ok)
                #expect($0.text == #"{"status":"ok"}"#)
            }
            try await client.execute(uri: "/readyz", method: .head) { #expect($0.status == .ok) }
        }
    }

    @Test("a keystore outage makes readiness degraded (200), or 503 with readiness.strict; verbose names it without secrets")
    func degraded() async throws {
        for strict in [false, true] {
            let body = ServerFixture.configBody(
                extraKeystores: "  flaky: { type: test-failing, failOn: health }",
                extra: "server: { listen: 127.0.0.1:0, readiness: { strict: \(strict) } }\n"
            )
            let fixture = try await ServerFixture.make(body: body)
            await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
            try await fixture.test { client in
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == (strict ? .serviceUnavailable : .ok))
                    #expect(response.text == (strict ? #"{"status":"unavailable"}"# : #"{"status":"degraded"}"#))
                }
                try await client.execute(uri: "/readyz?verbose", method: .get) { response in
                    #expect(
                        response.text.contains(
                            #""backendCode":"AccessDeniedException","errorKind":"denied","healthy":false,"name":"flaky""#
                        )
                    )
                    #expect(!response.text.contains("master.key"))
                }
            }
        }
    }
}

@Suite("Server: authentication and scopes")
struct AuthTests {
    @Test("no token and a bad token get 401 with WWW-Authenticate; wrong permission and wrong org get 403; '*' passes")
    func matrix() async throws {
        let fixture = try await ServerFixture.make()
        let broker = fixture.server.runtime.broker
        try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        try await broker.generateKeyPair(for: Fixtures.org("other"), reason: .initial, requestedBy: "test")
        let cases: [(token: String?, uri: String, expected: HTTPResponse.Status)] = [
            (nil, "/v1/orgs/acme/public-key", .unauthorized),
            ("not-a-real-token", "/v1/orgs/acme/public-key", .unauthorized),
            ("acme-recorder", "/v1/orgs/acme/public-key", .ok),
            ("acme-recorder", "/v1/orgs/other/public-key", .forbidden),
            ("acme-recorder", "/v1/orgs/acme/keypairs", .forbidden),
            ("acme-admin", "/v1/orgs/acme/keypairs", .ok),
            ("acme-admin", "/v1/orgs/other/keypairs", .forbidden),
            ("viewer", "/v1/orgs/other/keypairs", .ok),
            ("admin", "/v1/orgs/other/public-key", .ok),
            ("admin", "/v1/orgs/ghost/public-key", .notFound),
            ("viewer", "/v1/status", .ok),
            ("acme-recorder", "/v1/status", .forbidden),
        ]
        try await fixture.test { client in
            for item in cases {
                try await client.execute(uri: item.uri, method: .get, headers: fixture.headers(item.token)) { response in
                    #expect(response.status == item.expected, "\(item.token ?? "no token") \(item.uri)")
                    if item.expected == .unauthorized {
                        #expect(response.headers[.wwwAuthenticate] == "Bearer")
                        #expect(response.errorCode == "unauthenticated")
                    }
                    if item.expected == .forbidden { #expect(response.errorCode == "forbidden") }
                }
            }
        }
    }

    @Test("outside its scope, a caller cannot tell an organization with keys from one without")
    func noExistenceOracle() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("other"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            var bodies: [String] = []
            for org in ["other", "ghost"] {
                for path in ["public-key", "keypairs"] {
                    try await client.execute(uri: "/v1/orgs/\(org)/\(path)", method: .get, headers: fixture.headers("acme-recorder")) {
                        response in
                        #expect(response.status == .forbidden)
                        bodies.append(response.text.replacingOccurrences(of: org, with: "ORG"))
                    }
                }
            }
            #expect(bodies[0] == bodies[2])
            #expect(bodies[1] == bodies[3])
        }
    }

    @Test("the token comparison is by SHA-256 in constant time; only the exact token matches")
    func constantTimeComparison() throws {
        let (token, hash) = TokenAuthenticator.newToken()
        let settings = AuthSettings(tokens: [TokenSettings(name: "t", sha256: hash, permissions: [.viewKeys], organizations: nil)])
        let authenticator = TokenAuthenticator(settings)
        #expect(authenticator.authenticate(authorization: "Bearer \(token)")?.name == "t")
        #expect(authenticator.authenticate(authorization: "bearer \(token)")?.name == "t")
        #expect(authenticator.authenticate(authorization: "Bearer \(token)x") == nil)
        #expect(authenticator.authenticate(authorization: "Bearer \(hash)") == nil, "the hash itself is not a token")
        #expect(authenticator.authenticate(authorization: "Basic \(token)") == nil)
        #expect(authenticator.authenticate(authorization: nil as String?) == nil)
        #expect(token.hasPrefix("kb_") && token.count >= 40)
        // Spaces and tabs around the token are allowed (RFC 9110 optional whitespace); nothing else.
        #expect(authenticator.authenticate(authorization: "Bearer  \t\(token) \t")?.name == "t")
        for variant in ["\(token)\n", "\u{00A0}\(token)", "\(token.dropLast()) \(token.suffix(1))", "", " \t ", String(token.dropFirst())] {
            #expect(authenticator.authenticate(authorization: "Bearer \(variant)") == nil, "\(variant.debugDescription) must not match")
        }
        // Even a token list holding the empty string's hash (the loader refuses one) admits
        // no blank token.
        let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  // sha256sum </dev/null
        let blank = TokenAuthenticator(
            AuthSettings(tokens: [TokenSettings(name: "blank", sha256: emptyHash, permissions: [.viewKeys], organizations: nil)])
        )
        for header in ["Bearer ", "Bearer \t", "Bearer  \t "] {
            #expect(blank.authenticate(authorization: header) == nil, "\(header.debugDescription) must not authenticate")
        }
    }
}

@Suite("Server: data and admin API")
struct APITests {
    @Test("public key, change key now, history pages, unwrap round trip, organization view")
    func dataFlow() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("admin")) { response in
                #expect(response.status == .notFound)
                #expect(response.text.contains("keybroker keys generate --org acme"))
            }
            var ids: [String] = []
            for _ in 0..<3 {
                try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("acme-admin")) { response in
                    #expect(response.status == .created)
                    let view = try response.json(KeyPairView.self)
                    #expect(view.reason == "manual")
                    #expect(view.requestedBy == "token:acme-admin")
                    ids.append(view.id)
                }
            }
            try await client.execute(uri: "/v1/orgs/acme/keypairs?limit=2", method: .get, headers: fixture.headers("viewer")) { response in
                let page = try response.json(KeyPairPage.self)
                #expect(page.items.map(\.id) == [ids[2], ids[1]])
                #expect(page.nextOffset == 2)
            }
            try await client.execute(uri: "/v1/orgs/acme/keypairs?limit=2&offset=2", method: .get, headers: fixture.headers("viewer")) {
                response in
                let page = try response.json(KeyPairPage.self)
                #expect(page.items.map(\.id) == [ids[0]])
                #expect(page.nextOffset == nil)
            }
            try await client.execute(uri: "/v1/orgs/acme/keypairs?limit=1000", method: .get, headers: fixture.headers("viewer")) {
                #expect($0.status == .ok)
            }
            for query in ["limit=0", "limit=1001", "offset=-1", "limit=abc"] {
                try await client.execute(uri: "/v1/orgs/acme/keypairs?\(query)", method: .get, headers: fixture.headers("viewer")) {
                    #expect($0.status == .badRequest, "\(query)")
                }
            }
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) { response in
                let view = try response.json(PublicKeyView.self)
                #expect(view.keyPair.id == ids[2])
                #expect(view.publicKeyPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
                #expect(
                    Data(base64Encoded: view.publicKeyDER).map(PublicKeyEncryption.fingerprint(ofDER:)) == view.keyPair.publicKeyFingerprint
                )
            }
            try await client.execute(uri: "/v1/orgs/acme", method: .get, headers: fixture.headers("viewer")) { response in
                let view = try response.json(OrganizationView.self)
                #expect(view.keystore == "local")
                #expect(view.rotation == "weekly")
                #expect(view.currentKeyPair?.id == ids[2])
                #expect(view.nextRotation != nil)
            }
        }
        // Unwrap with every pair, old ones included.
        let history = try await fixture.server.runtime.broker.history(for: Fixtures.org("acme"))
        try await fixture.test { client in
            for pair in history.map(\.record) {
                let dataKey = Fixtures.dataKey()
                try await client.execute(
                    uri: "/v1/orgs/acme/unwrap",
                    method: .post,
                    headers: fixture.headers("acme-recorder"),
                    body: try ServerFixture.unwrapBody(pair, dataKey)
                ) { response in
                    #expect(response.status == .ok)
                    let unwrapped = try response.json(UnwrapResponse.self)
                    #expect(unwrapped.dataKey == dataKey.base64EncodedString())
                }
            }
        }
    }

    @Test("unwrap errors: bad JSON 400, bad id 400, bad base64 400, unknown pair 404, another org's pair 404, body too large 413")
    func unwrapErrors() async throws {
        let fixture = try await ServerFixture.make()
        let broker = fixture.server.runtime.broker
        let acme = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let other = try await broker.generateKeyPair(for: Fixtures.org("other"), reason: .initial, requestedBy: "test")
        let otherBody = try ServerFixture.unwrapBody(other, Fixtures.dataKey())
        let cases: [(ByteBuffer, HTTPResponse.Status, String)] = [
            (ByteBuffer(string: "{not json"), .badRequest, "bad_request"),
            (try ByteBuffer(json: ["keyPairId": acme.id.uuidString]), .badRequest, "bad_request"),
            (try ByteBuffer(json: ["keyPairId": "nope", "wrappedKey": "AAAA"]), .badRequest, "bad_request"),
            (try ByteBuffer(json: ["keyPairId": acme.id.uuidString, "wrappedKey": "%%%"]), .badRequest, "bad_request"),
            (try ByteBuffer(json: ["keyPairId": UUID().uuidString, "wrappedKey": "AAAA"]), .notFound, "not_found"),
            (otherBody, .notFound, "not_found"),
            (ByteBuffer(repeating: UInt8(ascii: "a"), count: 70 * 1024), .contentTooLarge, "body_too_large"),
        ]
        try await fixture.test { client in
            for (body, status, code) in cases {
                try await client.execute(uri: "/v1/orgs/acme/unwrap", method: .post, headers: fixture.headers("admin"), body: body) {
                    response in
                    #expect(response.status == status)
                    if !code.isEmpty { #expect(response.errorCode == code) }
                }
            }
        }
    }

    @Test("a keystore outage answers unwrap 503 keystore_unavailable with the backend's error; other backend failures 502")
    func keystoreFailures() async throws {
        let body = ServerFixture.configBody(
            organizations: "{ acme: { keystore: down }, beta: { keystore: garbled }, gamma: { keystore: denied } }",
            extraKeystores:
                "  down: { type: test-failing, failOn: decrypt-unreachable }\n  garbled: { type: test-failing, failOn: decrypt-bad-ciphertext }\n  denied: { type: test-failing, failOn: decrypt }"
        )
        let fixture = try await ServerFixture.make(body: body)
        let broker = fixture.server.runtime.broker
        let acme = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let beta = try await broker.generateKeyPair(for: Fixtures.org("beta"), reason: .initial, requestedBy: "test")
        let gamma = try await broker.generateKeyPair(for: Fixtures.org("gamma"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ServerFixture.unwrapBody(acme, Fixtures.dataKey())
            ) { response in
                #expect(response.status == .serviceUnavailable)
                let error = try response.json(ErrorBody.self).error
                #expect(error.code == "keystore_unavailable")
                #expect(error.backend?.type == "ConnectionFailed")
                #expect(error.backend?.message == "connection refused")
                #expect(response.headers[.retryAfter] == "5")
            }
            // A refused key (access denied, disabled) is an outage of that keystore, like an
            // unreachable one: the same rule as the health monitor's.
            try await client.execute(
                uri: "/v1/orgs/gamma/unwrap",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ServerFixture.unwrapBody(gamma, Fixtures.dataKey())
            ) { response in
                #expect(response.status == .serviceUnavailable)
                let error = try response.json(ErrorBody.self).error
                #expect(error.code == "keystore_unavailable")
                #expect(error.backend?.type == "AccessDeniedException")
            }
            // A blob the keystore cannot open is no outage: 502.
            try await client.execute(
                uri: "/v1/orgs/beta/unwrap",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ServerFixture.unwrapBody(beta, Fixtures.dataKey())
            ) { response in
                #expect(response.status == .badGateway)
                let error = try response.json(ErrorBody.self).error
                #expect(error.code == "keystore_failed")
                #expect(error.backend?.type == "InvalidCiphertextException")
            }
            // Encryption goes on: the public key comes from the store.
            try await client.execute(uri: "/v1/orgs/acme/public-key", method: .get, headers: fixture.headers("acme-recorder")) {
                #expect($0.status == .ok)
            }
        }
    }

    @Test("test endpoint: the org's keystore, a candidate, a bad candidate, and no createIfMissing over the API")
    func testEndpoint() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/test", method: .post, headers: fixture.headers("acme-admin")) { response in
                #expect(response.status == .ok)
                let report = try response.json(TestReportView.self)
                #expect(report.passed)
                #expect(report.steps.map(\.name) == Broker.testStepNames)
            }
            try await client.execute(
                uri: "/v1/orgs/acme/test",
                method: .post,
                headers: fixture.headers("acme-admin"),
                body: try ByteBuffer(json: ["keystore": ["type": "none"]])
            ) { response in
                #expect(response.status == .forbidden, "a candidate needs a token for every organization")
                #expect(response.text.contains("may test the configured keystore only"))
            }
            for key in ["endpoint", "profile"] {
                try await client.execute(
                    uri: "/v1/orgs/acme/test",
                    method: .post,
                    headers: fixture.headers("admin"),
                    body: try ByteBuffer(json: [
                        "keystore": [
                            "type": "aws-kms-symmetric", "keyAlias": "arn:aws:kms:eu-west-1:111122223333:alias/x", "region": "eu-west-1",
                            key: "http://198.51.100.1",
                        ]
                    ])
                ) { response in
                    #expect(response.status == .badRequest)
                    #expect(response.text.contains("'keystore.\(key)' is not allowed in a keystore sent over the API"))
                }
            }
            try await client.execute(
                uri: "/v1/orgs/acme/test",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ByteBuffer(json: ["keystore": ["type": "none", "keyPairSpec": "RSA_2048"]])
            ) { response in
                #expect(response.status == .ok)
                let report = try response.json(TestReportView.self)
                #expect(report.keystoreType == "none")
            }
            try await client.execute(
                uri: "/v1/orgs/acme/test",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ByteBuffer(json: ["keystore": ["type": "local-file", "path": "x.key", "createIfMissing": true]])
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.text.contains("'keystore.createIfMissing' is not allowed in a keystore sent over the API"))
                #expect(
                    response.text.contains("'keystore.path' is not allowed in a keystore sent over the API: it names a file on the server")
                )
            }
            try await client.execute(
                uri: "/v1/orgs/acme/test",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ByteBuffer(json: ["keystore": ["type": "local-file", "path": "/x/${HOME}/k.key"]])
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.text.contains("environment references"))
                #expect(!response.text.contains(NSHomeDirectory()))
            }
            try await client.execute(
                uri: "/v1/orgs/acme/test",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ByteBuffer(json: ["keystore": ["type": "local-file", "path": "x.key", "createIfMissing": "${NOPE:-true}"]])
            ) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(
                uri: "/v1/orgs/acme/test",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ByteBuffer(json: ["keystore": ["type": "local-fil"]])
            ) { response in
                #expect(response.status == .badRequest)
                let error = try response.json(ErrorBody.self).error
                #expect(error.code == "invalid_config")
                #expect(error.diagnostics?.first?.message.contains("unknown keystore type 'local-fil'") == true)
            }
            // Diagnostics point into the body as sent: here line 2, column 20, and name the field's path.
            let body = "{\"keystore\":\n  {\"type\": \"none\", \"bogus\": 1}}"
            try await client.execute(
                uri: "/v1/orgs/acme/test",
                method: .post,
                headers: fixture.headers("admin"),
                body: ByteBuffer(string: body)
            ) { response in
                #expect(response.status == .badRequest)
                let diagnostic = try response.json(ErrorBody.self).error.diagnostics?.first
                #expect(diagnostic?.message.contains("unknown key 'bogus'") == true, "\(response.text)")
                #expect(diagnostic?.file == "request body" && diagnostic?.line == 2 && diagnostic?.column == 20, "\(response.text)")
            }
            // Bodies of the wrong shape or size: a clear refusal each, nothing tested.
            let padding = String(repeating: " ", count: 16 * 1024)
            let refusals: [(body: String, status: HTTPResponse.Status, says: String)] = [
                ("not json", .badRequest, "must be a JSON object"),
                ("[1, 2]", .badRequest, "must be a JSON object"),
                ("{\"keystore\": \"none\"}", .badRequest, "exactly one field, 'keystore'"),
                ("{\"keystore\": {\"type\": \"none\"}, \"more\": 1}", .badRequest, "exactly one field, 'keystore'"),
                ("{\"keystore\": {\"type\": \"none\"}}" + padding, .contentTooLarge, "larger than 16384 bytes"),
            ]
            for refusal in refusals {
                try await client.execute(
                    uri: "/v1/orgs/acme/test",
                    method: .post,
                    headers: fixture.headers("admin"),
                    body: ByteBuffer(string: refusal.body)
                ) { response in
                    #expect(response.status == refusal.status, "\(refusal.body.prefix(60))")
                    #expect(response.text.contains(refusal.says), "\(response.text)")
                }
            }
            try await client.execute(uri: "/v1/orgs/acme/test", method: .post, headers: fixture.headers("acme-recorder")) {
                #expect($0.status == .forbidden)
            }
        }
        #expect(try await fixture.server.runtime.broker.history(for: Fixtures.org("acme")).isEmpty, "tests save nothing")
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.path("x.key")))
    }

    @Test("status summarizes: keystores, counts, trouble only; a scoped token sees its own organizations and keystores")
    func status() async throws {
        let fixture = try await ServerFixture.make()
        _ = await fixture.server.scheduler.runOnce()
        await fixture.server.runtime.monitor.checkAll(fixture.server.runtime.broker)
        try await fixture.test { client in
            try await client.execute(uri: "/v1/status", method: .get, headers: fixture.headers("viewer")) { response in
                let status = try response.json(StatusView.self)
                #expect(status.keystores.map(\.name) == ["local", "other", "plain"])
                #expect(status.keystores.allSatisfy { $0.healthy })
                #expect(status.summary.organizations == 2)
                #expect(status.summary.keystores.map { "\($0.name):\($0.organizations)/\($0.pairs)" } == ["local:2/2"])
                #expect(status.summary.rotationFailures == 0)
                #expect(status.organizations.isEmpty, "no organization is in trouble")
                #expect(status.nextAfter == nil)
            }
            try await client.execute(uri: "/v1/status", method: .get, headers: fixture.headers("acme-admin")) { response in
                let status = try response.json(StatusView.self)
                #expect(status.organizations.map(\.organization) == ["acme"])
                #expect(status.organizations.allSatisfy { $0.currentKeyPair != nil && !$0.fallbackInUse })
                #expect(status.summary.organizations == 1 && status.summary.keystores.isEmpty, "no other tenant's counts")
                #expect(status.keystores.map(\.name) == ["local"], "only the keystores its organizations use")
            }
            for query in ["limit=0", "limit=1001", "limit=x", "after=../x"] {
                try await client.execute(uri: "/v1/status?\(query)", method: .get, headers: fixture.headers("viewer")) { response in
                    #expect(response.status == .badRequest, "\(query)")
                }
            }
        }
    }

    @Test("GET /v1/orgs pages every organization by id; a scoped token sees its own")
    func organizationList() async throws {
        let body = ServerFixture.configBody(organizations: "{ acme: { rotation: weekly } }")
        let fixture = try await ServerFixture.make(body: body)
        let broker = fixture.server.runtime.broker
        let ids = (0..<7).map { "org-\($0)" } + ["acme"]
        for id in ids { try await broker.generateKeyPair(for: Fixtures.org(id), reason: .initial, requestedBy: "test") }
        try await fixture.test { client in
            var seen: [OrganizationListView.Item] = []
            var after: String?
            var pages = 0
            repeat {
                let uri = "/v1/orgs?limit=3" + (after.map { "&after=\($0)" } ?? "")
                try await client.execute(uri: uri, method: .get, headers: fixture.headers("viewer")) { response in
                    #expect(response.status == .ok)
                    let page = try response.json(OrganizationListView.self)
                    #expect(page.items.count <= 3)
                    seen += page.items
                    after = page.nextAfter
                }
                pages += 1
            } while after != nil && pages < 10
            #expect(seen.map(\.organization) == ids.sorted(), "every organization once, in order")
            #expect(pages == 3)
            #expect(seen.first { $0.organization == "acme" }?.source == "operator")
            #expect(seen.first { $0.organization == "org-0" }?.source == "default")
            #expect(seen.allSatisfy { $0.currentKeyPair != nil })
            try await client.execute(uri: "/v1/orgs", method: .get, headers: fixture.headers("acme-admin")) { response in
                let page = try response.json(OrganizationListView.self)
                #expect(page.items.map(\.organization) == ["acme"], "a scoped token lists its own organizations only")
            }
            try await client.execute(uri: "/v1/orgs", method: .get, headers: fixture.headers(nil)) {
                #expect($0.status == .unauthorized)
            }
        }
    }

    @Test("reload: a broken file is refused with file:line:column and the old config stays; a keystore change moves the org at once")
    func reload() async throws {
        let fixture = try await ServerFixture.make()
        _ = await fixture.server.scheduler.runOnce()
        let old = try await fixture.server.runtime.broker.currentKeyPair(for: Fixtures.org("acme"))

        try fixture.rewrite(body: ServerFixture.configBody() + "\nretention: 30d\n")
        try await fixture.test { client in
            try await client.execute(uri: "/v1/admin/reload", method: .post, headers: fixture.headers("acme-admin")) {
                #expect($0.status == .forbidden, "reload needs a token for every organization")
            }
            try await client.execute(uri: "/v1/admin/reload", method: .post, headers: fixture.headers("admin")) { response in
                #expect(response.status == .badRequest)
                let error = try response.json(ErrorBody.self).error
                #expect(error.code == "invalid_config")
                let diagnostic = try #require(error.diagnostics?.first)
                #expect(diagnostic.file == fixture.configPath)
                #expect(diagnostic.line != nil && diagnostic.column == 1)
                #expect(diagnostic.message.hasPrefix("unknown key 'retention'"))
            }
        }
        #expect(fixture.server.runtime.broker.policy(for: Fixtures.org("acme")).rotation == .weekly, "the old configuration stays")

        try fixture.rewrite(body: ServerFixture.configBody(organizations: "{ acme: { keystore: other, rotation: weekly }, beta: {} }"))
        try await fixture.test { client in
            try await client.execute(uri: "/v1/admin/reload", method: .post, headers: fixture.headers("admin")) { response in
                #expect(response.status == .ok)
                let reload = try response.json(ReloadView.self)
                #expect(reload.changedOrganizations == ["acme"])
            }
        }
        let pass = await fixture.server.scheduler.runOnce()
        #expect(pass.rotated == [Fixtures.org("acme"): .configChange])
        let new = try await fixture.server.runtime.broker.currentKeyPair(for: Fixtures.org("acme"))
        #expect(new.keystoreName == "other")
        // The old pair still unwraps through its own keystore.
        let dataKey = Fixtures.dataKey()
        let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: old.publicKeyDER)
        #expect(
            try await fixture.server.runtime.broker.unwrapDataKey(for: Fixtures.org("acme"), keyPairID: old.id, wrappedDataKey: wrapped)
                == dataKey
        )
    }

    @Test("metrics count requests, keystore calls and cache lookups; the audit log records operations and no secrets")
    func metricsAndAudit() async throws {
        let fixture = try await ServerFixture.make()
        let pair = try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let dataKey = Fixtures.dataKey()
        try await fixture.test { client in
            for _ in 0..<2 {
                try await client.execute(
                    uri: "/v1/orgs/acme/unwrap",
                    method: .post,
                    headers: fixture.headers("acme-recorder"),
                    body: try ServerFixture.unwrapBody(pair, dataKey)
                ) {
                    #expect($0.status == .ok)
                }
            }
            try await client.execute(
                uri: "/v1/orgs/beta/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(pair, dataKey)
            ) {
                #expect($0.status == .forbidden)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = response.text
                #expect(text.contains(#"keybroker_http_requests_total{route="/v1/orgs/{org}/unwrap",method="POST",status="200"} 2"#))
                #expect(text.contains(#"keybroker_http_requests_total{route="/v1/orgs/{org}/unwrap",method="POST",status="403"} 1"#))
                #expect(text.contains(#"keybroker_keystore_calls_total{keystore="local",operation="decrypt",result="ok"} 1"#))
                #expect(text.contains(#"keybroker_private_key_cache_lookups_total{result="hit"} 1"#))
                #expect(text.contains(#"keybroker_keystore_calls_total{keystore="local",operation="generate",result="ok"} 1"#))
            }
        }
        let audit = try String(contentsOfFile: fixture.directory.path("audit.log"), encoding: .utf8)
        let lines = audit.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(
            lines.filter { $0.contains(#""event":"unwrap""#) && $0.contains(#""result":"ok""#) && $0.contains(#""actor":"acme-recorder""#) }
                .count == 2
        )
        #expect(
            lines.contains {
                $0.contains(#""event":"access""#) && $0.contains(#""result":"denied""#) && $0.contains(#""organization":"beta""#)
            }
        )
        #expect(!audit.contains(dataKey.base64EncodedString()))
        #expect(!fixture.tokens.values.contains { audit.contains($0) })
        let mode = try FileManager.default.attributesOfItem(atPath: fixture.directory.path("audit.log"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
