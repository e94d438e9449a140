import AWSKMSKeystore
import Foundation
import KeyBroker
import KeyBrokerTesting
import LocalFileKeystore
import NoneKeystore
import Testing

@testable import KeyBrokerTestSupport

/// One plugin under the shared conformance suite, with the settings an operator would write.
struct PluginUnderTest: Sendable, CustomTestStringConvertible {
    let name: String
    let suite: @Sendable () throws -> KeystorePluginConformance

    var testDescription: String { name }

    /// Every built-in plugin; the KMS plugin against each real server that supports its
    /// generation mode: moto (signatures checked) for `local`, LocalStack for `data-key-pair`.
    /// Included where the server is installed, and always in CI, where a missing server fails.
    static var all: [PluginUnderTest] {
        var plugins = [
            PluginUnderTest(name: "none") { try KeystorePluginConformance(plugin: NoneKeystorePlugin.self) { _ in [:] } },
            PluginUnderTest(name: "local-file") {
                try KeystorePluginConformance(
                    plugin: LocalFileKeystorePlugin.self,
                    requiredKeys: ["path"],
                    fileOnlyKeys: ["path": "master.key", "createIfMissing": "true", "previousPaths": "[old.key]"]
                ) { directory in
                    ["path": "\"\(directory.appendingPathComponent("master.key").path)\"", "createIfMissing": "true"]
                }
            },
        ]
        for (kind, generation, label) in [(KMSTestServer.Kind.motoWithAuth, "local", "moto"), (.localstack, "data-key-pair", "LocalStack")]
        where KMSTestServer.available(kind) {
            plugins.append(
                PluginUnderTest(name: "aws-kms-symmetric (\(generation) generation, \(label))") {
                    let server = try kind == .localstack ? SharedKMS.localstack() : SharedKMS.moto()
                    return try KeystorePluginConformance(
                        plugin: AWSKMSKeystorePlugin.self,
                        requiredKeys: ["keyAlias", "region"],
                        fileOnlyKeys: ["endpoint": "\"http://127.0.0.1:9\"", "profile": "ops"]
                    ) { _ in
                        [
                            "keyAlias": "\"\(server.info.aliasArn)\"", "region": server.info.region,
                            "endpoint": "\"\(server.info.endpoint)\"",
                            "generation": generation, "accessKeyId": server.info.accessKeyId,
                            "secretAccessKey": "\"\(server.info.secretAccessKey)\"",
                        ]
                    }
                }
            )
        }
        return plugins
    }
}

/// The contract every keystore plugin must meet (`KeyBrokerTesting`), run against each one
/// through its `make` from YAML.
@Suite("Keystore conformance")
struct KeystoreConformanceTests {
    @Test("the plugin meets the keystore contract", arguments: PluginUnderTest.all)
    func conformance(_ plugin: PluginUnderTest) async throws {
        try await plugin.suite().run()
    }
}
