import Foundation
import KeyBroker
import LocalFileKeystore
import Testing

@testable import KeyBrokerTestSupport

@Suite("local-file keystore")
struct LocalFileKeystoreTests {
    let directory: TemporaryDirectory
    let context = EncryptionContext.organization(Fixtures.org("org-a"))

    init() throws { directory = try TemporaryDirectory() }

    private func keystore(_ file: String = "master.key", previous: [String] = [], create: Bool = true) -> LocalFileKeystore {
        LocalFileKeystore(
            name: "local",
            currentKeyFile: directory.url.appendingPathComponent(file),
            previousKeyFiles: previous.map { directory.url.appendingPathComponent($0) },
            createIfMissing: create
        )
    }

    private func mode(_ file: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: directory.path(file))[.posixPermissions] as? Int) ?? -1
    }

    @Test("createIfMissing creates a 32-byte key file with mode 0600 in a 0700 directory")
    func createsKeyFile() async throws {
        let keystore = keystore("keys/master.key")
        _ = try await keystore.generateKeyPair(.rsa2048, context: context)
        #expect(try mode("keys/master.key") == 0o600)
        #expect(try mode("keys") == 0o700)
        let bytes = try Data(contentsOf: directory.url.appendingPathComponent("keys/master.key"))
        #expect(bytes.count == 32)
        #expect(Set(bytes).count > 8, "the key file does not look random")
    }

    @Test("without createIfMissing a missing key file is an error naming the path and the fix")
    func missingKeyFile() async throws {
        let keystore = keystore(create: false)
        let error = await #expect(throws: KeystoreError.self) {
            try await keystore.generateKeyPair(.rsa2048, context: context)
        }
        #expect(error?.kind == .misconfigured)
        #expect(error?.message.contains(directory.path("master.key")) == true)
        #expect(error?.hint?.contains("createIfMissing: true") == true)
        #expect(!FileManager.default.fileExists(atPath: directory.path("master.key")))
        #expect(await !keystore.checkHealth().isHealthy)
    }

    @Test("a key file readable by group or others is refused, naming the path and chmod 600", arguments: [0o644, 0o640, 0o604])
    func looseModeRefused(mode: Int) async throws {
        let path = directory.path("master.key")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 32)))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        let keystore = keystore()
        let error = await #expect(throws: KeystoreError.self) {
            try await keystore.generateKeyPair(.rsa2048, context: context)
        }
        #expect(error?.kind == .denied)
        #expect(error?.message.contains("chmod 600 '\(path)'") == true)
        let health = await keystore.checkHealth()
        #expect(health.error?.kind == .denied)
    }

    @Test("a key file owned by another user is refused", .enabled(if: geteuid() == 0, "needs root to chown"))
    func foreignOwner() async throws {
        let path = directory.path("master.key")
        #expect(
            FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 32), attributes: [.posixPermissions: 0o600])
        )
        #expect(chown(path, 12345, 12345) == 0)
        let error = await #expect(throws: KeystoreError.self) {
            try await keystore().generateKeyPair(.rsa2048, context: context)
        }
        #expect(error?.kind == .denied)
        #expect(error?.message.contains("belongs to uid 12345") == true)
    }

    @Test("a key file of the wrong size is refused with how to make one")
    func wrongSize() async throws {
        let path = directory.path("master.key")
        #expect(FileManager.default.createFile(atPath: path, contents: Data("hunter2\n".utf8), attributes: [.posixPermissions: 0o600]))
        let error = await #expect(throws: KeystoreError.self) {
            try await keystore().generateKeyPair(.rsa2048, context: context)
        }
        #expect(error?.message.contains("holds 8 bytes") == true)
        #expect(error?.message.contains("head -c 32 /dev/urandom") == true)
    }

    @Test("a blob wrapped by another master key is refused with both key ids")
    func wrongMasterKey() async throws {
        let generated = try await keystore("a.key").generateKeyPair(.rsa2048, context: context)
        let other = keystore("b.key")
        _ = try await other.generateKeyPair(.rsa2048, context: context)
        let error = await #expect(throws: KeystoreError.self) {
            try await other.decryptPrivateKey(generated.wrapped, context: context)
        }
        #expect(error?.kind == .wrongKey)
        let wrappingID = try #require(generated.wrapped.backendKeyReference)
        #expect(error?.message.contains("master key id \(wrappingID)") == true)
        #expect(error?.hint == "add the key file with id \(wrappingID) to previousPaths")
    }

    @Test("master-key rotation: new pairs use the new key, old pairs decrypt through previousPaths")
    func masterKeyRotation() async throws {
        let before = keystore("2025.key")
        let old = try await before.generateKeyPair(.rsa2048, context: context)

        let after = keystore("2026.key", previous: ["2025.key"])
        let new = try await after.generateKeyPair(.rsa2048, context: context)
        #expect(new.wrapped.backendKeyReference != old.wrapped.backendKeyReference)
        #expect(try await after.decryptPrivateKey(old.wrapped, context: context).publicKeyDER == old.publicKeyDER)
        #expect(try await after.decryptPrivateKey(new.wrapped, context: context).publicKeyDER == new.publicKeyDER)
        #expect(await after.checkHealth().detail.contains("1 previous key(s)"))

        // Without the old key file the old pair is refused, the new one still works.
        let forgetful = keystore("2026.key")
        await #expect(throws: KeystoreError.self) { try await forgetful.decryptPrivateKey(old.wrapped, context: context) }
        #expect(try await forgetful.decryptPrivateKey(new.wrapped, context: context).publicKeyDER == new.publicKeyDER)
    }

    @Test("a lost key file is never silently replaced: decryption reports it, only generation creates one")
    func lostKeyFileIsNotRecreatedOnDecrypt() async throws {
        let generated = try await keystore().generateKeyPair(.rsa2048, context: context)
        try FileManager.default.removeItem(atPath: directory.path("master.key"))
        let restarted = keystore()
        let error = await #expect(throws: KeystoreError.self) {
            try await restarted.decryptPrivateKey(generated.wrapped, context: context)
        }
        #expect(error?.message.contains("does not exist") == true)
        #expect(error?.hint?.contains("restore it from backup") == true)
        #expect(!FileManager.default.fileExists(atPath: directory.path("master.key")))
        #expect(await restarted.checkHealth().detail.contains("will be created when the first key pair is generated"))
    }

    @Test("a missing previous key file makes the keystore unhealthy")
    func missingPreviousKey() async throws {
        let keystore = keystore(previous: ["gone.key"])
        _ = try await keystore.generateKeyPair(.rsa2048, context: context)
        let health = await keystore.checkHealth()
        #expect(health.error?.message.contains("gone.key") == true)
    }

    @Test("every byte of the blob is authenticated")
    func everyByteAuthenticated() async throws {
        let keystore = keystore()
        let generated = try await keystore.generateKeyPair(.rsa2048, context: context)
        let blob = generated.wrapped.ciphertext
        for offset in stride(from: 0, to: blob.count, by: max(1, blob.count / 40)) + [blob.count - 1] {
            var tampered = blob
            tampered[tampered.startIndex + offset] ^= 0x01
            await #expect(throws: KeystoreError.self, "byte \(offset) flipped") {
                try await keystore.decryptPrivateKey(WrappedPrivateKey(ciphertext: tampered, backendKeyReference: nil), context: context)
            }
        }
        await #expect(throws: KeystoreError.self) {
            try await keystore.decryptPrivateKey(WrappedPrivateKey(ciphertext: blob.dropLast(), backendKeyReference: nil), context: context)
        }
    }

    @Test("the plugin reads its settings and rejects unknown ones")
    func pluginSettings() throws {
        let path = try directory.write(
            "c.yaml",
            """
            storage: { sqlite: { path: db.sqlite } }
            keystores:
              local:
                type: local-file
                path: keys/current.key
                previousPaths: [keys/current.key]
                pasword: x
            """
        )
        let error = #expect(throws: ConfigError.self) { try Fixtures.loader().load(path: path) }
        #expect(
            error?.errors.map(\.description) == [
                "\(path):6:20: error: 'keystores.local.previousPaths' lists the current key file 'keys/current.key'; list only older key files there",
                "\(path):7:5: error: unknown key 'pasword' in 'keystores.local'; allowed keys: contextKey, createIfMissing, keyPairSpec, path, previousPaths, type",
            ]
        )
    }
}
