import Foundation
import KeyBroker
import LocalFileKeystore
import NoneKeystore
import Testing

@testable import KeyBrokerTestSupport

@Suite("Keystore registry")
struct RegistryTests {
    @Test func registersPluginsByType() {
        let registry = Fixtures.registry()
        #expect(registry.types == ["aws-kms-symmetric", "local-file", "none"])
        #expect(registry.plugin(for: "local-file") == LocalFileKeystorePlugin.self)
        #expect(registry.plugin(for: "aws-kms") == nil)
    }

    @Test func refusesADuplicateType() {
        var registry = KeystoreRegistry()
        #expect(throws: Never.self) { try registry.register(NoneKeystorePlugin.self) }
        let error = #expect(throws: RegistryError.self) { try registry.register(NoneKeystorePlugin.self) }
        #expect(error?.description.contains("'none' is already registered") == true)
    }

    @Test func unknownTypeListsTheKnownTypes() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(
            "c.yaml",
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores:
              kms: { type: aws-kms }
            """
        )
        let error = #expect(throws: ConfigError.self) { try Fixtures.loader().load(path: path) }
        #expect(
            error?.errors.map(\.description) == [
                "\(path):3:16: error: unknown keystore type 'aws-kms'; known types: aws-kms-symmetric, local-file, none"
            ]
        )
    }

    @Test func duplicateKeystoreNamesAreRefused() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(
            "c.yaml",
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores:
              local: { type: none }
              local: { type: local-file, path: m.key }
            """
        )
        let error = #expect(throws: ConfigError.self) { try Fixtures.loader().load(path: path) }
        let message = try #require(error?.errors.first?.description)
        #expect(message.contains("duplicate key 'local'"))
        #expect(message.hasPrefix("\(path):3:3:"))
    }

    @Test func aPluginBuildsItsInstanceUnderItsName() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(
            "c.yaml",
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores:
              dev: { type: none }
              prod: { type: local-file, path: m.key }
            defaults: { keystore: prod }
            """
        )
        let loaded = try Fixtures.loader().load(path: path)
        #expect(loaded.keystores["dev"]?.type == "none")
        #expect(loaded.keystores["prod"]?.type == "local-file")
        #expect(loaded.keystores["prod"]?.name == "prod")
    }
}
