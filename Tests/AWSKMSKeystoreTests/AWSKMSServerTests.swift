import Foundation
import KeyBroker
import Testing

@testable import AWSKMSKeystore
@testable import KeyBrokerTestSupport

/// The plugin against moto's server with SigV4 signature checking on: a real server
/// computes and compares every signature.
@Suite(
    "aws-kms-symmetric against moto (signatures checked)",
    .serialized,
    .enabled(if: KMSTestServer.available(.motoWithAuth), KMSTestServer.skipMessage)
)
struct AWSKMSMotoTests {
    let directory: TemporaryDirectory
    let server: KMSTestServer
    let org = Fixtures.org("org-a")

    init() async throws {
        directory = try TemporaryDirectory()
        server = try await offPool { try SharedKMS.moto() }
    }

    private func keystore(
        _ generation: String = "local",
        endpoint: String? = nil,
        keyAlias: String? = nil,
        extra: String = ""
    ) throws -> any Keystore {
        try SharedKMS.keystore(
            server.keystoreYAML(generation: generation, endpoint: endpoint, keyAlias: keyAlias, extra: extra),
            in: directory
        )
    }

    @Test("correctly signed requests are accepted: health describes the key, local generation round-trips")
    func signedRequestsAccepted() async throws {
        let keystore = try keystore()
        let health = await keystore.checkHealth()
        #expect(health.isHealthy, "\(health.detail)")
        #expect(health.detail.hasPrefix(server.info.keyArn))
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        #expect(generated.wrapped.backendKeyReference == server.info.keyArn, "the key ARN KMS reported is stored, not the alias")
        let key = try await keystore.decryptPrivateKey(generated.wrapped, context: context)
        #expect(key.publicKeyDER == generated.publicKeyDER)
    }

    @Test("a wrong secret gets the server's SignatureDoesNotMatch, surfaced as denied and not retried")
    func wrongSecret() async throws {
        let proxy = try server.proxyEndpoint()
        let before = try server.proxyCounts()["DescribeKey"] ?? 0
        let yaml = server.keystoreYAML(generation: "local", endpoint: proxy).replacingOccurrences(
            of: server.info.secretAccessKey,
            with: "wrong-secret-0000"
        )
        let keystore = try SharedKMS.keystore(yaml, in: directory)
        let health = await keystore.checkHealth()
        #expect(health.error?.kind == .denied)
        #expect(health.error?.backendCode == "SignatureDoesNotMatch")
        #expect(health.error?.backendMessage?.isEmpty == false)
        #expect(health.error?.hint?.contains("check the AWS credentials") == true)
        #expect(!health.detail.contains("wrong-secret"), "the secret never appears in messages")
        #expect(try server.proxyCounts()["DescribeKey"] == before + 1, "a 4xx other than throttling is not retried")
    }

    @Test("an unknown access key gets InvalidClientTokenId")
    func unknownAccessKey() async throws {
        let yaml = server.keystoreYAML(generation: "local").replacingOccurrences(of: server.info.accessKeyId, with: "AKIAUNKNOWNKEY000000")
        let health = await (try SharedKMS.keystore(yaml, in: directory)).checkHealth()
        #expect(health.error?.backendCode == "InvalidClientTokenId")
        #expect(health.error?.kind == .denied)
    }

    @Test("an unknown alias is surfaced with NotFoundException in health and in the broker's test")
    func unknownAlias() async throws {
        let missing = "arn:aws:kms:\(server.info.region):\(server.info.account):alias/does-not-exist"
        let keystore = try keystore(keyAlias: missing)
        let health = await keystore.checkHealth()
        #expect(health.error?.backendCode == "NotFoundException")
        #expect(health.error?.hint?.hasPrefix("check \(missing): the alias or key does not exist") == true)

        let broker = try await Fixtures.broker(Fixtures.config(), in: directory)
        let settings = try Fixtures.loader().loadCandidate(path: try directory.write("c.yaml", "type: none\nname: kms\n")).settings
        let report = try await broker.test(organization: org, candidate: (settings, keystore))
        #expect(!report.passed)
        #expect(report.steps.first?.keystoreError?.backendCode == "NotFoundException")
    }

    @Test("the broker generates through KMS, stores the key ARN, and unwraps after rotations")
    func brokerEndToEnd() async throws {
        let config = Fixtures.config(
            organizations: "{ org-a: { keystore: kms } }",
            extraKeystores: "  kms: \(server.keystoreYAML(generation: "local"))"
        )
        let broker = try await Fixtures.broker(config, in: directory)
        var records: [KeyPairRecord] = []
        for _ in 0..<2 { records.append(try await broker.generateKeyPair(for: org, reason: .manual, requestedBy: "test")) }
        for record in records {
            #expect(record.keystoreType == "aws-kms-symmetric")
            #expect(record.backendKeyReference == server.info.keyArn)
            #expect(record.encryptionContext == EncryptionContext.organization(org))
            let dataKey = Fixtures.dataKey()
            let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: record.publicKeyDER)
            #expect(try await broker.unwrapDataKey(for: org, keyPairID: record.id, wrappedDataKey: wrapped) == dataKey)
        }
        let report = try await broker.test(organization: org)
        #expect(report.passed, "\(report.steps.map { "\($0.name): \($0.outcome) \($0.detail ?? "")" })")
    }

    @Test("throttling, 5xx and dropped connections are retried until success")
    func retriesTransientFailures() async throws {
        let keystore = try keystore(endpoint: try server.proxyEndpoint(), extra: ", retries: { baseDelay: 1ms, maxDelay: 5ms }")
        try server.injectFaults(["throttle", "500", "close"])
        let health = await keystore.checkHealth()
        #expect(health.isHealthy, "\(health.detail)")
    }

    @Test("persistent throttling ends as a throttled error with KMS's code, after maxAttempts")
    func throttlingGivesUp() async throws {
        let keystore = try keystore(
            endpoint: try server.proxyEndpoint(),
            extra: ", retries: { maxAttempts: 3, baseDelay: 1ms, maxDelay: 5ms }"
        )
        try server.injectFaults(["throttle", "throttle", "throttle", "throttle"])
        let health = await keystore.checkHealth()
        #expect(health.error?.kind == .throttled)
        #expect(health.error?.backendCode == "ThrottlingException")
        #expect(health.error?.message.hasSuffix("after 3 attempts") == true)
        try server.injectFaults([])
    }

    @Test("a slow endpoint times out within the total deadline, as unreachable")
    func timeout() async throws {
        let keystore = try keystore(
            endpoint: try server.proxyEndpoint(),
            extra: ", requestTimeout: 300ms, totalTimeout: 700ms, retries: { baseDelay: 1ms, maxDelay: 5ms }"
        )
        // More delays than attempts: a late request of an earlier test must not use one up.
        try server.injectFaults(Array(repeating: "delay:2", count: 8))
        let clock = ContinuousClock()
        let start = clock.now
        let health = await keystore.checkHealth()
        #expect(clock.now - start < .seconds(2))
        #expect(health.error?.kind == .unreachable)
        #expect(health.error?.backendCode == "Timeout")
        try server.injectFaults([])
    }

    @Test("an answer from another key than the pair's is refused (key-substitution defence)")
    func keySubstitution() async throws {
        let proxy = try server.proxyEndpoint()
        let keystore = try keystore(endpoint: proxy)
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        let other = try server.createKey()
        try server.injectFaults(["rewrite-keyid:\(other)"])
        let error = await #expect(throws: KeystoreError.self) { try await keystore.decryptPrivateKey(generated.wrapped, context: context) }
        #expect(error?.kind == .wrongKey)
        #expect(error?.message.contains("but the pair was wrapped by \(server.info.keyArn)") == true)
    }

    @Test("an unreachable endpoint is reported as unreachable with the connection error")
    func unreachable() async throws {
        let keystore = try keystore(
            endpoint: "http://127.0.0.1:9",
            // A refused connection answers at once; the generous deadline only keeps a loaded
            // machine (the parallel suite on two cores) from turning it into a timeout.
            extra: ", totalTimeout: 20s, retries: { maxAttempts: 2, baseDelay: 1ms, maxDelay: 5ms }"
        )
        let health = await keystore.checkHealth()
        #expect(health.error?.kind == .unreachable)
        #expect(health.error?.backendCode == "ConnectionFailed")
    }
}

/// The plugin against LocalStack's KMS: data-key pairs, key states, multi-Region keys.
@Suite("aws-kms-symmetric against LocalStack", .serialized, .enabled(if: KMSTestServer.available(.localstack), KMSTestServer.skipMessage))
struct AWSKMSLocalStackTests {
    let directory: TemporaryDirectory
    let server: KMSTestServer
    let org = Fixtures.org("org-a")

    init() async throws {
        directory = try TemporaryDirectory()
        server = try await offPool { try SharedKMS.localstack() }
    }

    private func keystore(keyAlias: String? = nil, generation: String = "data-key-pair") throws -> any Keystore {
        try SharedKMS.keystore(server.keystoreYAML(generation: generation, keyAlias: keyAlias), in: directory)
    }

    @Test("data-key-pair generation: KMS makes the pair, the broker round-trips through it")
    func dataKeyPair() async throws {
        let config = Fixtures.config(
            organizations: "{ org-a: { keystore: kms } }",
            extraKeystores: "  kms: \(server.keystoreYAML(generation: "data-key-pair"))"
        )
        let broker = try await Fixtures.broker(config, in: directory)
        let record = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        #expect(record.backendKeyReference == server.info.keyArn)
        let dataKey = Fixtures.dataKey()
        let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: record.publicKeyDER)
        #expect(try await broker.unwrapDataKey(for: org, keyPairID: record.id, wrappedDataKey: wrapped) == dataKey)
        #expect(try await broker.test(organization: org).passed)
    }

    @Test("a disabled key is surfaced in health and in test, and works again once enabled")
    func disabledKey() async throws {
        let arn = try server.createKey(alias: "disabled-\(UUID().uuidString.prefix(8).lowercased())")
        let keystore = try keystore(keyAlias: arn)
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        try server.command("disable_key", ["key": arn])
        let health = await keystore.checkHealth()
        #expect(health.error?.kind == .keyUnusable)
        #expect(health.error?.hint?.contains("enable-key") == true)
        let error = await #expect(throws: KeystoreError.self) { try await keystore.decryptPrivateKey(generated.wrapped, context: context) }
        #expect(error?.backendCode == "DisabledException")
        #expect(error?.kind == .keyUnusable)
        await #expect(throws: KeystoreError.self) { try await keystore.generateKeyPair(.rsa2048, context: context) }
        try server.command("enable_key", ["key": arn])
        #expect(await keystore.checkHealth().isHealthy)
        #expect(try await keystore.decryptPrivateKey(generated.wrapped, context: context).publicKeyDER == generated.publicKeyDER)
    }

    @Test("a key pending deletion is surfaced with KMSInvalidStateException")
    func pendingDeletion() async throws {
        let arn = try server.createKey()
        let keystore = try keystore(keyAlias: arn)
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        try server.command("schedule_deletion", ["key": arn])
        let error = await #expect(throws: KeystoreError.self) { try await keystore.decryptPrivateKey(generated.wrapped, context: context) }
        #expect(error?.backendCode == "KMSInvalidStateException")
        #expect(error?.kind == .keyUnusable)
        #expect(await keystore.checkHealth().error?.kind == .keyUnusable)
        try server.command("cancel_deletion", ["key": arn])
    }

    @Test("a multi-Region key configured by its primary ARN uses the replica in the home region")
    func multiRegionReplica() async throws {
        let primary = try server.createKey(multiRegion: true, region: "us-east-1")
        let replica = try server.command("replicate_key", ["key": primary, "region": server.info.region])["arn"] as! String
        let keystore = try keystore(keyAlias: primary)
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        #expect(generated.wrapped.backendKeyReference == replica)
        #expect(try await keystore.decryptPrivateKey(generated.wrapped, context: context).publicKeyDER == generated.publicKeyDER)
    }

    @Test("decrypting with another key's ARN is refused by KMS with IncorrectKeyException")
    func incorrectKey() async throws {
        let keystore = try keystore()
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        let other = try server.createKey()
        let substituted = WrappedPrivateKey(ciphertext: generated.wrapped.ciphertext, backendKeyReference: other)
        let error = await #expect(throws: KeystoreError.self) { try await keystore.decryptPrivateKey(substituted, context: context) }
        #expect(error?.backendCode == "IncorrectKeyException")
        #expect(error?.kind == .wrongKey)
    }
}
