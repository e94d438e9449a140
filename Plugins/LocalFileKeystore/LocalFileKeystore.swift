import Crypto
public import Foundation
public import KeyBroker
public import Logging

/// Wraps private keys with AES-256-GCM under a master key file. See ``LocalFileKeystorePlugin``.
///
/// Blob layout (all integers big-endian):
///
/// | bytes | field |
/// |---|---|
/// | 4 | magic `KBLF` |
/// | 1 | format version, 1 |
/// | 8 | master key id |
/// | 12 | AES-GCM nonce |
/// | n | ciphertext of the PKCS#8 DER private key |
/// | 16 | AES-GCM tag |
///
/// The associated data is the 13-byte header followed by the canonical encryption
/// context, so a blob opens only under its own organization's context and with the key
/// whose id it names.
public final class LocalFileKeystore: Keystore {
    public let name: String
    public var type: String { LocalFileKeystorePlugin.type }

    static let magic = Data("KBLF".utf8)
    static let version: UInt8 = 1
    static let headerSize = 4 + 1 + MasterKey.idSize
    static let nonceSize = 12
    static let tagSize = 16

    private let ring: MasterKeyRing

    /// Creates an instance; key files are read on first use.
    /// - Parameters:
    ///   - name: the instance name.
    ///   - currentKeyFile: the key new pairs are wrapped with.
    ///   - previousKeyFiles: older keys, for pairs wrapped before a master-key rotation.
    ///   - createIfMissing: whether generation may create the current key file when it does not exist.
    ///   - logger: where the creation of a key file is reported.
    public init(
        name: String,
        currentKeyFile: URL,
        previousKeyFiles: [URL],
        createIfMissing: Bool,
        logger: Logger = Logger(label: "keybroker.local-file")
    ) {
        self.name = name
        ring = MasterKeyRing(
            keystore: name,
            current: currentKeyFile,
            previous: previousKeyFiles,
            createIfMissing: createIfMissing,
            logger: logger
        )
    }

    public func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        let master = try await ring.currentKey(creatingIfMissing: true)
        var header = Self.magic
        header.append(Self.version)
        header.append(master.id)
        return try await generateLocally(spec) { der throws(KeystoreError) in
            do {
                let sealed = try AES.GCM.seal(der, using: master.key, authenticating: header + context.canonicalBytes)
                let blob = header + Data(sealed.nonce) + sealed.ciphertext + sealed.tag
                return WrappedPrivateKey(ciphertext: blob, backendKeyReference: master.idHex)
            } catch {
                throw KeystoreError(.internalFailure, keystore: name, message: "AES-256-GCM wrapping failed: \(error)")
            }
        }
    }

    public func decryptPrivateKey(
        _ wrapped: WrappedPrivateKey,
        context: EncryptionContext
    ) async throws(KeystoreError) -> PrivateKeyMaterial {
        let blob = wrapped.ciphertext
        guard blob.count >= Self.headerSize + Self.nonceSize + Self.tagSize, blob.prefix(4) == Self.magic else {
            throw KeystoreError(
                .badCiphertext,
                keystore: name,
                message:
                    "the stored key is not a local-file blob (bad magic or too short); it was wrapped by another keystore type or is corrupt"
            )
        }
        let start = blob.startIndex
        let version = blob[start + 4]
        guard version == Self.version else {
            throw KeystoreError(
                .badCiphertext,
                keystore: name,
                message: "the stored key has format version \(version); this build reads version \(Self.version)"
            )
        }
        let keyID = Data(blob[(start + 5)..<(start + Self.headerSize)])
        let master = try await ring.key(withID: keyID)
        let header = Data(blob[start..<(start + Self.headerSize)])
        let nonceEnd = start + Self.headerSize + Self.nonceSize
        var der: Data
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: blob[(start + Self.headerSize)..<nonceEnd]),
                ciphertext: blob[nonceEnd..<(blob.endIndex - Self.tagSize)],
                tag: blob.suffix(Self.tagSize)
            )
            der = try AES.GCM.open(box, using: master.key, authenticating: header + context.canonicalBytes)
        } catch {
            throw KeystoreError(
                .badCiphertext,
                keystore: name,
                message: "the stored key failed authentication under context \(context): it belongs to another organization, or was altered"
            )
        }
        return try privateKey(fromUnwrapped: &der)
    }

    public func checkHealth() async -> KeystoreHealth {
        await ring.health()
    }

    /// A master key file that exists means this keystore wrapped pairs before.
    public func priorUseEvidence() async -> String? {
        let files = [ring.currentFile] + ring.previousFiles
        return await BlockingWork.io {
            files.first { FileManager.default.fileExists(atPath: $0.path) }.map { "master key file '\($0.path)' exists" }
        }
    }
}
