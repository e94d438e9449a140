import Foundation
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerServer
import NIOCore
import Testing

@testable import KeyBrokerTestSupport

/// A tenant's administrator configures its own KMS key through the API: edit, test, save.
@Suite("Tenants as data: key configurations against a real KMS", .serialized)
struct TenantConfigurationTests {
    /// The server's configuration with `tenantKeystores:` pointing at `server`, and an
    /// operator-pinned organization.
    /// The environment the server's configuration is read with: the template's secret is a reference.
    static func environment(_ server: KMSTestServer) -> [String: String] { ["KMS_SECRET": server.info.secretAccessKey] }

    static func body(_ server: KMSTestServer, cache: String = "{ maxAge: 5m }") -> String {
        let info = server.info
        // moto has no GenerateDataKeyPair: the pair is made here and its private key encrypted by KMS.
        let generation = server.kind == .localstack ? "data-key-pair" : "local"
        return ServerFixture.configBody(organizations: "{ pinned: { rotation: weekly } }")
            + """
            tenantKeystores:
              aws-kms-symmetric:
                region: \(info.region)
                endpoint: "\(info.endpoint)"
                accessKeyId: \(info.accessKeyId)
                secretAccessKey: "${KMS_SECRET}"
                generation: \(generation)
                keyPairSpec: RSA_2048
            privateKeyCache: \(cache)
            server: { limits: { generationsPerOrganizationPerMinute: 100 } }

            """
    }

    static func request(_ type: String, alias: String? = nil, rotation: String? = "weekly") throws -> ByteBuffer {
        var body: [String: String] = ["type": type]
        if let alias { body["keyAlias"] = alias }
        if let rotation { body["rotation"] = rotation }
        return try ByteBuffer(json: body)
    }

    static func headers(_ fixture: ServerFixture, _ token: String, ifMatch: Int? = nil) -> HTTPFields {
        var headers = fixture.headers(token)
        if let ifMatch { headers[.ifMatch] = "\"\(ifMatch)\"" }
        return headers
    }

    /// A server on LocalStack whose organization `acme` saved a key configuration of its own,
    /// through a new KMS key (`tenant-<name>-…`): the KMS, the key's ARN and the server.
    static func acmeOnItsOwnKey(named name: String, cache: String) async throws -> (KMSTestServer, String, ServerFixture) {
        let kms = try SharedKMS.localstack()
        let alias = "tenant-\(name)-\(UUID().uuidString.prefix(8).lowercased())"
        let key = try kms.createKey(alias: alias)
        let aliasArn = "arn:aws:kms:\(kms.info.region):\(kms.info.account):alias/\(alias)"
        let fixture = try await ServerFixture.make(body: Self.body(kms, cache: cache), environment: Self.environment(kms))
        try await fixture.test { client in
            try await client.execute(
                uri: "/v1/orgs/acme/key-configuration",
                method: .put,
                headers: fixture.headers("acme-admin"),
                body: try Self.request("aws-kms-symmetric", alias: aliasArn)
            ) { #expect($0.status == .ok, "\($0.text)") }
        }
        return (kms, key, fixture)
    }

    static func unwraps(
        _ fixture: ServerFixture,
        _ client: some TestClientProtocol,
        _ pair: KeyPairRecord
    ) async throws -> HTTPResponse.Status {
        let dataKey = Fixtures.dataKey()
        return try await client.execute(
            uri: "/v1/orgs/\(pair.organization)/unwrap",
            method: .post,
            headers: fixture.headers("admin"),
            body: try ServerFixture.unwrapBody(pair, dataKey)
        ) { response in
            if response.status == .ok {
                let unwrapped = try response.json(UnwrapResponse.self)
                #expect(unwrapped.dataKey == dataKey.base64EncodedString())
            }
            return response.status
        }
    }

    @Test(
        "edit, test, save against moto (signatures checked) and LocalStack: the tenant's key wraps its pairs bound to its organization; a wrong alias is 422 NotFoundException and changes nothing; another region is refused; a re-pointed alias makes the next pair; every pair survives a restart",
        .enabled(if: KMSTestServer.available(.motoWithAuth) && KMSTestServer.available(.localstack), KMSTestServer.skipMessage),
        arguments: [KMSTestServer.Kind.motoWithAuth, .localstack]
    )
    func wholeFlow(_ kind: KMSTestServer.Kind) async throws {
        let kms = try await offPool { try kind == .localstack ? SharedKMS.localstack() : SharedKMS.moto() }
        let alias = "tenant-acme-\(UUID().uuidString.prefix(8).lowercased())"
        let firstKey = try kms.createKey(alias: alias)
        let aliasArn = "arn:aws:kms:\(kms.info.region):\(kms.info.account):alias/\(alias)"
        let fixture = try await ServerFixture.make(body: Self.body(kms), environment: Self.environment(kms))
        let broker = fixture.server.runtime.broker
        let acme = Fixtures.org("acme")
        try await fixture.test { client in
            // Edit: what there is, and what may be chosen.
            try await client.execute(uri: "/v1/orgs/acme/key-configuration", method: .get, headers: fixture.headers("acme-admin")) {
                response in
                #expect(response.status == .ok)
                #expect(response.headers[.eTag] == "\"0\"")
                let view = try response.json(KeyConfigurationView.self)
                #expect(view.source == "default" && view.type == "default" && view.version == 0 && view.lastError == nil)
                #expect(view.offeredTypes == ["default", "aws-kms-symmetric"])
            }
            // Test: passes, saves nothing.
            try await client.execute(
                uri: "/v1/orgs/acme/key-configuration/test",
                method: .post,
                headers: fixture.headers("acme-admin"),
                body: try Self.request("aws-kms-symmetric", alias: aliasArn)
            ) { response in
                #expect(response.status == .ok, "\(response.text)")
                let report = try response.json(TestReportView.self)
                #expect(report.passed && report.steps.map(\.name) == Broker.testStepNames)
            }
            #expect(try await broker.history(for: acme).isEmpty, "a test saves nothing")
            // A wrong alias: KMS's own error, verbatim, and nothing stored.
            let missing = "arn:aws:kms:\(kms.info.region):\(kms.info.account):alias/no-such-key-\(UUID().uuidString.prefix(8))"
            try await client.execute(
                uri: "/v1/orgs/acme/key-configuration",
                method: .put,
                headers: Self.headers(fixture, "acme-admin", ifMatch: 0),
                body: try Self.request("aws-kms-symmetric", alias: missing)
            ) { response in
                #expect(response.status == .unprocessableContent, "\(response.text)")
                #expect(response.errorCode == "test_failed")
                let error = try response.json(ErrorBody.self).error
                #expect(error.backend?.type == "NotFoundException", "\(response.text)")
                #expect(response.text.contains("\"test\""), "the report comes with it")
                #expect(!response.text.contains(kms.info.endpoint), "the platform's endpoint is not the tenant's to see")
            }
            #expect(try await broker.history(for: acme).isEmpty)
            #expect(try await broker.keyConfiguration(for: acme) == nil)
            // The tenant's value is never read as a reference to the server's environment.
            // (KMS_SECRET is in the environment the server's configuration is read with: the
            // template's secretAccessKey reads it.)
            let path = kms.info.secretAccessKey
            for value in [
                "${KMS_SECRET}", "arn:aws:kms:${KMS_SECRET}:1:alias/x", "$${KMS_SECRET}", "${NOT_SET}", "arn with space", "arn\u{7}bell",
            ] {
                try await client.execute(
                    uri: "/v1/orgs/acme/key-configuration/test",
                    method: .post,
                    headers: fixture.headers("acme-admin"),
                    body: try Self.request("aws-kms-symmetric", alias: value)
                ) { response in
                    #expect(response.status == .badRequest, "\(value): \(response.text)")
                    #expect(!response.text.contains(path), "\(value): the server's environment leaked: \(response.text)")
                    #expect(!response.text.contains("environment variable"), "\(value): not even whether a variable is set")
                }
            }
            // A key in another region: refused, naming the home region.
            let elsewhere = try kms.createKey(region: "us-west-2")
            try await client.execute(
                uri: "/v1/orgs/acme/key-configuration",
                method: .put,
                headers: fixture.headers("acme-admin"),
                body: try Self.request("aws-kms-symmetric", alias: elsewhere)
            ) { response in
                #expect(response.status == .badRequest, "\(response.text)")
                #expect(response.text.contains("the home region is \(kms.info.region)"), "\(response.text)")
            }
            // Save: tested, stored, and a new pair through the tenant's key is current.
            try await client.execute(
                uri: "/v1/orgs/acme/key-configuration",
                method: .put,
                headers: Self.headers(fixture, "acme-admin", ifMatch: 0),
                body: try Self.request("aws-kms-symmetric", alias: aliasArn)
            ) { response in
                #expect(response.status == .ok, "\(response.text)")
                let saved = try response.json(KeyConfigurationSavedView.self)
                #expect(saved.configuration.version == 1 && saved.configuration.source == "tenant")
                #expect(saved.configuration.keyAlias == aliasArn && saved.configuration.rotation == "weekly")
                #expect(saved.test.passed)
                #expect(saved.keyPair.current && saved.keyPair.reason == "config-change")
            }
        }
        let first = try await broker.currentKeyPair(for: acme)
        #expect(first.keystoreName == "tenant:aws-kms-symmetric" && first.backendKeyReference == firstKey)
        // The private key is a KMS ciphertext under the tenant's key, bound to its organization.
        let bound = try kms.command(
            "decrypt",
            ["ciphertext": first.wrappedPrivateKey.base64EncodedString(), "context": ["organization-id": "acme"]]
        )
        #expect(bound["keyId"] as? String == firstKey)
        let foreign = try kms.command(
            "decrypt",
            ["ciphertext": first.wrappedPrivateKey.base64EncodedString(), "context": ["organization-id": "beta"]]
        )
        #expect(foreign["refused"] != nil, "another organization's context is refused: \(foreign)")

        try await fixture.test { client in
            #expect(try await Self.unwraps(fixture, client, first) == .ok)
            // A stale If-Match: 409, nothing changed.
            try await client.execute(
                uri: "/v1/orgs/acme/key-configuration",
                method: .put,
                headers: Self.headers(fixture, "acme-admin", ifMatch: 0),
                body: try Self.request("aws-kms-symmetric", alias: aliasArn, rotation: "daily")
            ) { response in
                #expect(response.status == .conflict && response.errorCode == "version_conflict", "\(response.text)")
            }
            // Another organization's configuration: 403 whether it exists or not; the operator's: 409.
            for org in ["beta", "nobody-\(UUID().uuidString.prefix(6))"] {
                for method in [HTTPRequest.Method.get, .put] {
                    try await client.execute(
                        uri: "/v1/orgs/\(org)/key-configuration",
                        method: method,
                        headers: fixture.headers("acme-admin"),
                        body: try Self.request("default")
                    ) { #expect($0.status == .forbidden, "\(method) \(org)") }
                }
            }
            try await client.execute(
                uri: "/v1/orgs/pinned/key-configuration",
                method: .put,
                headers: fixture.headers("admin"),
                body: try Self.request("aws-kms-symmetric", alias: aliasArn)
            ) { response in
                #expect(response.status == .conflict && response.errorCode == "operator_pinned", "\(response.text)")
                #expect(response.text.contains("keybroker.yaml"))
            }
        }
        // The alias re-pointed to a new key, then "change key now": the new pair uses the new key.
        let secondKey = try kms.createKey()
        try kms.command("update_alias", ["alias": alias, "key": secondKey])
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers("acme-admin")) {
                #expect($0.status == .created, "\($0.text)")
            }
        }
        let second = try await broker.currentKeyPair(for: acme)
        #expect(second.backendKeyReference == secondKey && second.keystoreName == first.keystoreName)

        // A restart: the configuration and every pair survive, and old pairs decrypt through their own key.
        let restarted = try await ServerFixture.make(
            body: Self.body(kms, cache: "{ maxAge: 0s }"),
            directory: fixture.directory,
            environment: Self.environment(kms)
        )
        try await restarted.test { client in
            try await client.execute(uri: "/v1/orgs/acme/key-configuration", method: .get, headers: restarted.headers("acme-admin")) {
                response in
                let view = try response.json(KeyConfigurationView.self)
                #expect(view.version == 1 && view.source == "tenant" && view.keyAlias == aliasArn && view.updatedBy == "token:acme-admin")
            }
            #expect(try await Self.unwraps(restarted, client, first) == .ok, "the first key still decrypts the first pair")
            #expect(try await Self.unwraps(restarted, client, second) == .ok)
        }
        // A file without the template these pairs need is refused, naming them.
        let error = await #expect(throws: ConfigError.self) {
            try await ServerFixture.make(
                body: ServerFixture.configBody(organizations: "{ pinned: { rotation: weekly } }"),
                directory: fixture.directory
            )
        }
        #expect(
            error?.description.contains(
                "tenantKeystores.aws-kms-symmetric is not configured, but 2 stored key pair(s) of tenants need it to decrypt (acme: 2)"
            )
                == true,
            "\(error?.description ?? "")"
        )
    }

    @Test(
        "switching type back and forth three times leaves every pair decryptable; two saves with one If-Match: one wins, one gets 409",
        .enabled(if: KMSTestServer.available(.motoWithAuth), KMSTestServer.skipMessage)
    )
    func switchingAndConcurrentSaves() async throws {
        let kms = try await offPool { try SharedKMS.moto() }
        let alias = "tenant-acme-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try kms.createKey(alias: alias)
        let aliasArn = "arn:aws:kms:\(kms.info.region):\(kms.info.account):alias/\(alias)"
        let fixture = try await ServerFixture.make(body: Self.body(kms, cache: "{ maxAge: 0s }"), environment: Self.environment(kms))
        let broker = fixture.server.runtime.broker
        let acme = Fixtures.org("acme")
        try await fixture.test { client in
            for round in 0..<3 {
                try await client.execute(
                    uri: "/v1/orgs/acme/key-configuration",
                    method: .put,
                    headers: fixture.headers("acme-admin"),
                    body: try Self.request("aws-kms-symmetric", alias: aliasArn)
                ) { #expect($0.status == .ok, "round \(round): \($0.text)") }
                try await client.execute(uri: "/v1/orgs/acme/key-configuration", method: .delete, headers: fixture.headers("acme-admin")) {
                    response in
                    #expect(response.status == .ok, "round \(round): \(response.text)")
                    let saved = try response.json(KeyConfigurationSavedView.self)
                    #expect(saved.configuration.source == "default" && saved.keyPair.keystore == "local")
                }
            }
            let pairs = try await broker.history(for: acme).map(\.record)
            #expect(pairs.count == 6)
            #expect(pairs.filter { $0.keystoreName == "tenant:aws-kms-symmetric" }.count == 3)
            for pair in pairs { #expect(try await Self.unwraps(fixture, client, pair) == .ok, "\(pair.keystoreName)") }

            let version = try #require(try await broker.keyConfiguration(for: acme)).version
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for rotation in ["daily", "monthly"] {
                    group.addTask {
                        try await client.execute(
                            uri: "/v1/orgs/acme/key-configuration",
                            method: .put,
                            headers: Self.headers(fixture, "acme-admin", ifMatch: version),
                            body: try Self.request("aws-kms-symmetric", alias: aliasArn, rotation: rotation)
                        ) { $0.status }
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.sorted { $0.code < $1.code } == [.ok, .conflict], "\(statuses)")
            #expect(try await broker.keyConfiguration(for: acme)?.version == version + 1)
        }
    }

    @Test(
        "a tenant's own key rotates on its own cadence and, without one, on the default cadence; the pass finds both by index",
        .enabled(if: KMSTestServer.available(.motoWithAuth), KMSTestServer.skipMessage)
    )
    func tenantCadences() async throws {
        let kms = try await offPool { try SharedKMS.moto() }
        let alias = "tenant-cadence-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try kms.createKey(alias: alias)
        let aliasArn = "arn:aws:kms:\(kms.info.region):\(kms.info.account):alias/\(alias)"
        let clock = TestClock(Date())
        let fixture = try await ServerFixture.make(body: Self.body(kms), now: { clock.now }, environment: Self.environment(kms))
        let broker = fixture.server.runtime.broker
        try await fixture.test { client in
            for (org, rotation) in [("acme", nil), ("beta", "daily")] as [(String, String?)] {
                try await client.execute(
                    uri: "/v1/orgs/\(org)/key-configuration",
                    method: .put,
                    headers: fixture.headers("admin"),
                    body: try Self.request("aws-kms-symmetric", alias: aliasArn, rotation: rotation)
                ) { #expect($0.status == .ok, "\(org): \($0.text)") }
            }
        }
        _ = await fixture.server.scheduler.runOnce()  // the pinned organization's first pair
        clock.now = clock.now.addingTimeInterval(86_400 + 60)
        #expect(await fixture.server.scheduler.runOnce().rotated == [Fixtures.org("beta"): .scheduled], "daily, its own cadence")
        clock.now = clock.now.addingTimeInterval(31 * 86_400)
        let monthly = await fixture.server.scheduler.runOnce()
        #expect(monthly.rotated[Fixtures.org("acme")] == .scheduled, "no cadence of its own: the default (monthly)")
        let acme = try await broker.currentKeyPair(for: Fixtures.org("acme"))
        #expect(acme.keystoreName == "tenant:aws-kms-symmetric" && acme.reason == .scheduled, "through its own key")
    }

    @Test(
        "a tenant's key disabled (LocalStack): its unwraps are 503 DisabledException and its configuration shows the error; other tenants and readiness are unaffected",
        .enabled(if: KMSTestServer.available(.localstack), KMSTestServer.skipMessage)
    )
    func disabledKeyOnLocalStack() async throws {
        let (kms, key, fixture) = try await Self.acmeOnItsOwnKey(named: "acme", cache: "{ maxAge: 0s }")
        let broker = fixture.server.runtime.broker
        try await fixture.test { client in
            let acmePair = try await broker.currentKeyPair(for: Fixtures.org("acme"))
            let betaPair = try await broker.generateKeyPair(for: Fixtures.org("beta"), reason: .initial, requestedBy: "test")
            try kms.command("disable_key", ["key": key])
            defer { _ = try? kms.command("enable_key", ["key": key]) }
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(acmePair, Fixtures.dataKey())
            ) { response in
                #expect(response.status == .serviceUnavailable, "\(response.text)")
                let error = try response.json(ErrorBody.self).error
                #expect(error.backend?.type == "DisabledException", "\(response.text)")
            }
            let first = try await broker.keyConfiguration(for: Fixtures.org("acme"))?.lastError
            #expect(first?.code == "DisabledException")
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(acmePair, Fixtures.dataKey())
            ) { #expect($0.status == .serviceUnavailable) }
            #expect(
                try await broker.keyConfiguration(for: Fixtures.org("acme"))?.lastError == first,
                "the same error again within a minute is not written again"
            )
            try await client.execute(uri: "/v1/orgs/acme/key-configuration", method: .get, headers: fixture.headers("acme-admin")) {
                response in
                let view = try response.json(KeyConfigurationView.self)
                #expect(view.lastError?.code == "DisabledException", "\(response.text)")
            }
            try await client.execute(uri: "/v1/status", method: .get, headers: fixture.headers("acme-admin")) { response in
                let status = try response.json(StatusView.self)
                #expect(
                    status.organizations.first?.keyConfigurationError?.code == "DisabledException",
                    "the status shows it on the organization"
                )
            }
            #expect(try await Self.unwraps(fixture, client, betaPair) == .ok, "another tenant is unaffected")
            await fixture.server.runtime.monitor.checkAll(broker)
            try await client.execute(uri: "/readyz", method: .get) {
                #expect($0.status == .ok, "a customer's key does not unready the broker")
            }
        }
    }

    @Test("without tenantKeystores, a tenant can only stay on the default, and is told why")
    func nothingOffered() async throws {
        let fixture = try await ServerFixture.make(body: ServerFixture.configBody(organizations: "{}"))
        try await fixture.test { client in
            try await client.execute(uri: "/v1/orgs/acme/key-configuration", method: .get, headers: fixture.headers("acme-admin")) {
                response in
                let view = try response.json(KeyConfigurationView.self)
                #expect(view.offeredTypes == ["default"])
            }
            try await client.execute(
                uri: "/v1/orgs/acme/key-configuration",
                method: .put,
                headers: fixture.headers("acme-admin"),
                body: try Self.request("aws-kms-symmetric", alias: "arn:aws:kms:eu-west-1:111122223333:alias/x")
            ) { response in
                #expect(response.status == .badRequest)
                #expect(response.text.contains("offers no keystore types to tenants"), "\(response.text)")
            }
            let bad: [(String, String)] = [
                (#"{"type": "default", "rotation": "fortnightly"}"#, "rotation must be one of"),
                (#"{"type": "default", "keyPairSpec": "RSA_1024"}"#, "keyPairSpec must be one of"),
                (#"{"type": "default", "keyAlias": "arn:x"}"#, "keyAlias is for a keystore of the organization's own"),
                (#"{"rotation": "weekly"}"#, "type"),
            ]
            for (body, says) in bad {
                try await client.execute(
                    uri: "/v1/orgs/acme/key-configuration",
                    method: .put,
                    headers: fixture.headers("acme-admin"),
                    body: ByteBuffer(string: body)
                ) { response in
                    #expect(response.status == .badRequest, "\(body)")
                    #expect(response.text.contains(says), "\(body): \(response.text)")
                }
            }
            for value in ["x", "\"-1\"", "\"99999999999\""] {
                var headers = fixture.headers("acme-admin")
                headers[.ifMatch] = value
                try await client.execute(
                    uri: "/v1/orgs/acme/key-configuration",
                    method: .put,
                    headers: headers,
                    body: try Self.request("default")
                ) { #expect($0.status == .badRequest, "If-Match \(value)") }
            }
            // The default with a cadence of its own is a tenant configuration too.
            try await client.execute(
                uri: "/v1/orgs/acme/key-configuration",
                method: .put,
                headers: Self.headers(fixture, "acme-admin", ifMatch: 0),
                body: try Self.request("default", rotation: "daily")
            ) { response in
                #expect(response.status == .ok, "\(response.text)")
                let saved = try response.json(KeyConfigurationSavedView.self)
                #expect(
                    saved.configuration.source == "tenant" && saved.configuration.rotation == "daily" && saved.keyPair.keystore == "local"
                )
            }
        }
    }

    @Test(
        "a tenant's key disabled (LocalStack): the denied unwrap of one pair drops the organization's other cached keys at once (fail closed)",
        .enabled(if: KMSTestServer.available(.localstack), KMSTestServer.skipMessage)
    )
    func disabledKeyEvictsCachedKeys() async throws {
        let (kms, key, fixture) = try await Self.acmeOnItsOwnKey(named: "evict", cache: "{ maxAge: 5m }")
        let broker = fixture.server.runtime.broker
        try await fixture.test { client in
            let cached = try await broker.currentKeyPair(for: Fixtures.org("acme"))
            #expect(try await Self.unwraps(fixture, client, cached) == .ok, "decrypted once, then cached")
            #expect(try await Self.unwraps(fixture, client, cached) == .ok)
            let newer = try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .manual, requestedBy: "test")
            try kms.command("disable_key", ["key": key])
            defer { _ = try? kms.command("enable_key", ["key": key]) }
            #expect(try await Self.unwraps(fixture, client, newer) == .serviceUnavailable, "KMS refuses: the key is disabled")
            #expect(
                try await Self.unwraps(fixture, client, cached) == .serviceUnavailable,
                "the cached key of the other pair was dropped: KeyBroker's memory does not outlive the customer's revocation"
            )
            try kms.command("enable_key", ["key": key])
            #expect(try await Self.unwraps(fixture, client, cached) == .ok, "enabled again: decrypts again")
        }
    }
}
