import KeyBroker
import KeyBrokerTesting
import NoneKeystore
import Testing

/// The keystore contract (`KeyBrokerTesting`), through the plugin's `make` from YAML.
@Suite("none keystore")
struct NoneKeystoreConformanceTests {
    @Test("the plugin meets the keystore contract")
    func conformance() async throws {
        try await KeystorePluginConformance(plugin: NoneKeystorePlugin.self) { _ in [:] }.run()
    }
}
