import Foundation
import KeyBroker
import KeyBrokerTesting
import LocalFileKeystore
import Testing

/// The keystore contract (`KeyBrokerTesting`), through the plugin's `make` from YAML.
@Suite("local-file keystore conformance")
struct LocalFileKeystoreConformanceTests {
    @Test("the plugin meets the keystore contract")
    func conformance() async throws {
        try await KeystorePluginConformance(
            plugin: LocalFileKeystorePlugin.self,
            requiredKeys: ["path"],
            fileOnlyKeys: ["path": "master.key", "createIfMissing": "true", "previousPaths": "[old.key]"]
        ) { directory in
            ["path": "\"\(directory.appendingPathComponent("master.key").path)\"", "createIfMissing": "true"]
        }.run()
    }
}
