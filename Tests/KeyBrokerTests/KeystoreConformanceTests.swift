import Foundation
import KeyBroker
import LocalFileKeystore
import NoneKeystore
import Testing

/// Builds one keystore under test. Every plugin adds a factory to ``KeystoreConformance/factories``
/// and so runs the same suite.
struct KeystoreFactory: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable (TemporaryDirectory) throws -> any Keystore

    var testDescription: String { name }
}

enum KeystoreConformance {
    static let factories: [KeystoreFactory] = [
        KeystoreFactory(name: "none") { _ in NoneKeystore(name: "plain") },
        KeystoreFactory(name: "local-file") { directory in
            LocalFileKeystore(
                name: "local", currentKeyFile: directory.url.appendingPathComponent("master.key"), previousKeyFiles: [],
                createIfMissing: true)
        },
    ] + kmsFactories

    /// The KMS plugin against each real server that supports the generation mode: moto
    /// (with SigV4 checking) for `local`, LocalStack for `data-key-pair`. Included where the
    /// server is installed, and always in CI, where a missing server fails.
    static var kmsFactories: [KeystoreFactory] {
        var factories: [KeystoreFactory] = []
        if KMSTestServer.available(.motoWithAuth) {
            factories.append(KeystoreFactory(name: "aws-kms-symmetric (local generation, moto)") { directory in
                try SharedKMS.keystore(try SharedKMS.moto().keystoreYAML(generation: "local"), in: directory)
            })
        }
        if KMSTestServer.available(.localstack) {
            factories.append(KeystoreFactory(name: "aws-kms-symmetric (data-key-pair, LocalStack)") { directory in
                try SharedKMS.keystore(try SharedKMS.localstack().keystoreYAML(generation: "data-key-pair"), in: directory)
            })
        }
        return factories
    }
}

/// The contract every keystore plugin must meet, run against each one.
@Suite("Keystore conformance")
struct KeystoreConformanceTests {
    let directory: TemporaryDirectory
    let org = Fixtures.org("org-a")
    let otherOrg = Fixtures.org("org-b")

    init() throws { directory = try TemporaryDirectory() }

    @Test("generated pair decrypts under its own context, and its public key wraps data keys it unwraps", arguments: KeystoreConformance.factories)
    func generateAndDecrypt(factory: KeystoreFactory) async throws {
        let keystore = try factory.make(directory)
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        let privateKey = try await keystore.decryptPrivateKey(generated.wrapped, context: context)
        #expect(privateKey.spec == .rsa2048)
        #expect(privateKey.publicKeyDER == generated.publicKeyDER)
        let dataKey = Fixtures.dataKey()
        let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: generated.publicKeyDER)
        #expect(try privateKey.unwrapDataKey(wrapped) == dataKey)
    }

    @Test("two generated pairs differ", arguments: KeystoreConformance.factories)
    func pairsDiffer(factory: KeystoreFactory) async throws {
        let keystore = try factory.make(directory)
        let context = EncryptionContext.organization(org)
        let first = try await keystore.generateKeyPair(.rsa2048, context: context)
        let second = try await keystore.generateKeyPair(.rsa2048, context: context)
        #expect(first.publicKeyDER != second.publicKeyDER)
        #expect(first.wrapped.ciphertext != second.wrapped.ciphertext)
    }

    @Test("unwrapping under another organization's context fails (invariant 5)", arguments: KeystoreConformance.factories)
    func wrongOrganizationContext(factory: KeystoreFactory) async throws {
        let keystore = try factory.make(directory)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: .organization(org))
        let error = await #expect(throws: KeystoreError.self) {
            try await keystore.decryptPrivateKey(generated.wrapped, context: .organization(otherOrg))
        }
        #expect(error?.kind == .badCiphertext)
        // The same organization id under another context key is another context too.
        await #expect(throws: KeystoreError.self) {
            try await keystore.decryptPrivateKey(generated.wrapped, context: .organization(org, contextKey: "tenant"))
        }
    }

    @Test("a blob with a damaged header is refused", arguments: KeystoreConformance.factories)
    func damagedHeader(factory: KeystoreFactory) async throws {
        let keystore = try factory.make(directory)
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        for index in [0, 4] {
            var blob = generated.wrapped.ciphertext
            blob[blob.startIndex + index] ^= 0x01
            let tampered = WrappedPrivateKey(ciphertext: blob, backendKeyReference: generated.wrapped.backendKeyReference)
            await #expect(throws: KeystoreError.self, "byte \(index) flipped") {
                try await keystore.decryptPrivateKey(tampered, context: context)
            }
        }
        let empty = WrappedPrivateKey(ciphertext: Data(), backendKeyReference: nil)
        await #expect(throws: KeystoreError.self) { try await keystore.decryptPrivateKey(empty, context: context) }
    }

    @Test("a tampered blob never yields the original private key", arguments: KeystoreConformance.factories)
    func tamperedBody(factory: KeystoreFactory) async throws {
        let keystore = try factory.make(directory)
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        let dataKey = Fixtures.dataKey()
        let wrappedDataKey = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: generated.publicKeyDER)
        let blob = generated.wrapped.ciphertext
        for offset in [blob.count / 2, blob.count - 1] {
            var tampered = blob
            tampered[tampered.startIndex + offset] ^= 0x80
            let wrapped = WrappedPrivateKey(ciphertext: tampered, backendKeyReference: generated.wrapped.backendKeyReference)
            if let key = try? await keystore.decryptPrivateKey(wrapped, context: context) {
                #expect((try? key.unwrapDataKey(wrappedDataKey)) != dataKey, "byte \(offset) flipped still unwrapped")
            }
        }
    }

    @Test("health is reported with a detail", arguments: KeystoreConformance.factories)
    func health(factory: KeystoreFactory) async throws {
        let keystore = try factory.make(directory)
        let health = await keystore.checkHealth()
        #expect(health.isHealthy)
        #expect(!health.detail.isEmpty)
    }
}
