import AWSKMSKeystore
import Foundation
import KeyBroker
import KeyBrokerTesting
import Testing

@testable import KeyBrokerTestSupport

/// A real KMS-compatible server and the generation mode it supports: moto (signatures
/// checked) for `local`, LocalStack for `data-key-pair`.
struct KMSServerUnderTest: Sendable, CustomTestStringConvertible {
    let kind: KMSTestServer.Kind
    let generation: String
    let label: String

    var testDescription: String { "\(generation) generation, \(label)" }

    /// The servers installed here (in CI, all: a missing server fails there).
    static var available: [KMSServerUnderTest] {
        [
            KMSServerUnderTest(kind: .motoWithAuth, generation: "local", label: "moto"),
            KMSServerUnderTest(kind: .localstack, generation: "data-key-pair", label: "LocalStack"),
        ].filter { KMSTestServer.available($0.kind) }
    }
}

/// The keystore contract (`KeyBrokerTesting`), through the plugin's `make` from YAML.
@Suite("aws-kms-symmetric keystore conformance")
struct AWSKMSKeystoreConformanceTests {
    @Test("the plugin meets the keystore contract", arguments: KMSServerUnderTest.available)
    func conformance(_ target: KMSServerUnderTest) async throws {
        let server = try await offPool { try target.kind == .localstack ? SharedKMS.localstack() : SharedKMS.moto() }
        try await KeystorePluginConformance(
            plugin: AWSKMSKeystorePlugin.self,
            requiredKeys: ["keyAlias", "region"],
            fileOnlyKeys: ["endpoint": "\"http://127.0.0.1:9\"", "profile": "ops"]
        ) { _ in
            [
                "keyAlias": "\"\(server.info.aliasArn)\"", "region": server.info.region,
                "endpoint": "\"\(server.info.endpoint)\"",
                "generation": target.generation, "accessKeyId": server.info.accessKeyId,
                "secretAccessKey": "\"\(server.info.secretAccessKey)\"",
            ]
        }.run()
    }
}
