public import Foundation
public import KeyBroker
import Testing

/// The contract every keystore plugin meets, driven through the plugin's own
/// ``KeyBroker/KeystorePlugin/make(name:settings:context:)`` from YAML, as an operator's
/// configuration reaches it:
///
/// - the settings load, and `make` creates nothing (no file appears in the scratch directory
///   its settings point into; reads and connections are not observed, so keep them out of
///   `make` by design: the loader calls it for every reload and every API candidate);
/// - an unknown key, and each required key left out, are errors that name the key and its place;
/// - every setting that names a file, a host or a profile is refused from the API
///   (``KeyBroker/PluginContext/Origin/api``), and so is a `${…}` reference;
/// - a generated pair decrypts under its own context, wraps and unwraps a data key, differs
///   from the next pair, and does not decrypt under another organization's context;
/// - a damaged or empty blob is refused, a tampered one never yields the key;
/// - health is reported with a detail.
///
/// A third-party plugin runs it from its own tests:
/// ```swift
/// @Test func conformance() async throws {
///     try await KeystorePluginConformance(
///         plugin: MyKeystorePlugin.self,
///         requiredKeys: ["keyFile"],
///         fileOnlyKeys: ["keyFile": "k.key"]
///     ) { directory in
///         ["keyFile": "\"\(directory.path)/k.key\"", "createIfMissing": "true"]
///     }.run()
/// }
/// ```
public struct KeystorePluginConformance: Sendable {
    private let plugin: any KeystorePlugin.Type
    private let settings: @Sendable (URL) throws -> [String: String]
    private let requiredKeys: [String]
    private let fileOnlyKeys: [String: String]
    private let registry: KeystoreRegistry

    /// Creates the suite.
    /// - Parameters:
    ///   - plugin: the plugin under test.
    ///   - requiredKeys: the keys the plugin must refuse to do without.
    ///   - fileOnlyKeys: the keys the plugin must refuse from the API, each with a value to
    ///     try it with (where `settings` does not set it).
    ///   - settings: working settings as YAML values by key (without `type`), given an empty
    ///     scratch directory the suite removes afterwards.
    public init(
        plugin: any KeystorePlugin.Type,
        requiredKeys: [String] = [],
        fileOnlyKeys: [String: String] = [:],
        settings: @escaping @Sendable (_ directory: URL) throws -> [String: String]
    ) throws {
        self.plugin = plugin
        self.settings = settings
        self.requiredKeys = requiredKeys
        self.fileOnlyKeys = fileOnlyKeys
        var registry = KeystoreRegistry()
        try registry.register(plugin)
        self.registry = registry
    }

    /// Runs every part of the contract.
    public func run() async throws {
        try await loadsWithoutIO()
        try await unknownAndRequiredKeys()
        try await apiOrigin()
        try await roundTrip()
        try await contextBinding()
        try await damagedBlobs()
        try await health()
    }

    // MARK: loading

    func loadsWithoutIO() async throws {
        try await withScratch { directory in
            let before = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            _ = try load(try settings(directory), in: directory)
            let after = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(Set(after).subtracting(before).subtracting(["keystore.yaml"]).isEmpty, "\(plugin.type): make did I/O: \(after)")
        }
    }

    func unknownAndRequiredKeys() async throws {
        try await withScratch { directory in
            var withTypo = try settings(directory)
            withTypo["definitelyNotAKey"] = "1"
            let typo = try failures(withTypo, in: directory)
            #expect(
                typo.contains { $0.message.contains("unknown key 'definitelyNotAKey'") && $0.location != nil },
                "\(plugin.type): \(typo)"
            )
            for key in requiredKeys {
                var without = try settings(directory)
                without[key] = nil
                let missing = try failures(without, in: directory)
                #expect(missing.contains { $0.message.contains("needs '\(key)'") }, "\(plugin.type) without \(key): \(missing)")
            }
        }
    }

    func apiOrigin() async throws {
        try await withScratch { directory in
            let base = try settings(directory)
            for (key, sample) in fileOnlyKeys {
                var candidate = base
                if candidate[key] == nil { candidate[key] = sample }
                let refused = try failures(candidate, in: directory, origin: .api)
                #expect(
                    refused.contains { $0.message.contains("is not allowed in a keystore sent over the API") && $0.message.contains(key) },
                    "\(plugin.type): '\(key)' from the API: \(refused)"
                )
            }
            var reference = base
            reference["contextKey"] = "\"${HOME}\""
            let environment = try failures(reference, in: directory, origin: .api)
            #expect(environment.contains { $0.message.contains("environment references") }, "\(plugin.type): \(environment)")
        }
    }

    // MARK: keys

    func roundTrip() async throws {
        try await withScratch { directory in
            let keystore = try load(try settings(directory), in: directory)
            let context = EncryptionContext.organization(try OrganizationID.checked("org-a"))
            let first = try await keystore.generateKeyPair(.rsa2048, context: context)
            let key = try await keystore.decryptPrivateKey(first.wrapped, context: context)
            #expect(key.spec == .rsa2048 && key.publicKeyDER == first.publicKeyDER, "\(plugin.type): the pair decrypts whole")
            let dataKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
            let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: first.publicKeyDER)
            #expect(try key.unwrapDataKey(wrapped) == dataKey, "\(plugin.type): its public key wraps what its private key unwraps")
            let second = try await keystore.generateKeyPair(.rsa2048, context: context)
            #expect(
                first.publicKeyDER != second.publicKeyDER && first.wrapped.ciphertext != second.wrapped.ciphertext,
                "\(plugin.type): pairs differ"
            )
        }
    }

    func contextBinding() async throws {
        try await withScratch { directory in
            let keystore = try load(try settings(directory), in: directory)
            let organization = try OrganizationID.checked("org-a")
            let generated = try await keystore.generateKeyPair(.rsa2048, context: .organization(organization))
            for other in [
                EncryptionContext.organization(try OrganizationID.checked("org-b")), .organization(organization, contextKey: "tenant"),
            ] {
                do throws(KeystoreError) {
                    _ = try await keystore.decryptPrivateKey(generated.wrapped, context: other)
                    Issue.record("\(plugin.type): unwrapped under \(other) (invariant 5)")
                } catch {
                    #expect(!error.kind.isTransient, "\(plugin.type): a refusal, not an outage: \(error)")
                }
            }
        }
    }

    func damagedBlobs() async throws {
        try await withScratch { directory in
            let keystore = try load(try settings(directory), in: directory)
            let context = EncryptionContext.organization(try OrganizationID.checked("org-a"))
            let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
            let blob = generated.wrapped.ciphertext
            for index in [0, 4] {
                var damaged = blob
                damaged[damaged.startIndex + index] ^= 0x01
                await #expect(throws: KeystoreError.self, "\(plugin.type): byte \(index) flipped") {
                    try await keystore.decryptPrivateKey(
                        WrappedPrivateKey(ciphertext: damaged, backendKeyReference: generated.wrapped.backendKeyReference),
                        context: context
                    )
                }
            }
            await #expect(throws: KeystoreError.self, "\(plugin.type): an empty blob") {
                try await keystore.decryptPrivateKey(WrappedPrivateKey(ciphertext: Data(), backendKeyReference: nil), context: context)
            }
            let dataKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
            let wrappedDataKey = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: generated.publicKeyDER)
            for offset in [blob.count / 2, blob.count - 1] {
                var tampered = blob
                tampered[tampered.startIndex + offset] ^= 0x80
                let wrapped = WrappedPrivateKey(ciphertext: tampered, backendKeyReference: generated.wrapped.backendKeyReference)
                if let key = try? await keystore.decryptPrivateKey(wrapped, context: context) {
                    #expect((try? key.unwrapDataKey(wrappedDataKey)) != dataKey, "\(plugin.type): byte \(offset) flipped still unwrapped")
                }
            }
        }
    }

    func health() async throws {
        try await withScratch { directory in
            let keystore = try load(try settings(directory), in: directory)
            let health = await keystore.checkHealth()
            #expect(health.isHealthy && !health.detail.isEmpty, "\(plugin.type): \(health.detail)")
        }
    }

    // MARK: helpers

    /// The settings as one YAML flow mapping (`name` and `type` first).
    private func yaml(_ settings: [String: String]) -> String {
        let pairs = ["name: conformance", "type: \(plugin.type)"] + settings.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        return "{ " + pairs.joined(separator: ", ") + " }\n"
    }

    private func load(_ settings: [String: String], in directory: URL) throws -> any Keystore {
        let path = directory.appendingPathComponent("keystore.yaml").path
        try yaml(settings).write(toFile: path, atomically: true, encoding: .utf8)
        return try ConfigLoader(registry: registry, environment: [:]).loadCandidate(path: path).keystore
    }

    private func failures(
        _ settings: [String: String],
        in directory: URL,
        origin: PluginContext.Origin = .configurationFile
    ) throws -> [ConfigDiagnostic] {
        // The same empty environment as `load`, so that no machine's variables change a result.
        let loader = ConfigLoader(registry: registry, environment: [:])
        let configPath = directory.appendingPathComponent("keybroker.yaml").path
        do {
            switch origin {
            case .configurationFile:
                let path = directory.appendingPathComponent("keystore.yaml").path
                try yaml(settings).write(toFile: path, atomically: true, encoding: .utf8)
                _ = try loader.loadCandidate(path: path)
            case .api:
                _ = try loader.loadCandidate(text: yaml(settings), source: "request body", relativeTo: configPath)
            }
            return []
        } catch let error as ConfigError {
            return error.errors
        }
    }

    private func withScratch(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keybroker-conformance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

}
