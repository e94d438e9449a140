import Crypto
import Foundation
import KeyBroker
import Logging

/// The master keys of one keystore, read lazily and kept once read.
actor MasterKeyRing {
    let keystore: String
    let currentFile: URL
    let previousFiles: [URL]
    let createIfMissing: Bool
    private var current: MasterKey?
    private var previous: [MasterKey]?

    let logger: Logger

    init(keystore: String, current: URL, previous: [URL], createIfMissing: Bool, logger: Logger) {
        self.logger = logger
        self.keystore = keystore
        currentFile = current
        previousFiles = previous
        self.createIfMissing = createIfMissing
    }

    /// The current key. Only generation may create a missing file: a decryption or health
    /// check that found the file gone must say so, not replace a lost key with a new one.
    func currentKey(creatingIfMissing: Bool = false) async throws(KeystoreError) -> MasterKey {
        if let current { return current }
        let (file, keystore) = (currentFile, self.keystore)
        // Files are read off the cooperative pool: a path on a stalled mount must not stop
        // other requests (see BlockingWork).
        var key = try await BlockingWork.io { () throws(KeystoreError) in try MasterKeyFile.read(file, keystore: keystore) }
        if key == nil, createIfMissing, creatingIfMissing {
            let created = try await BlockingWork.io { () throws(KeystoreError) in try MasterKeyFile.create(file, keystore: keystore) }
            logger.warning(
                "created a new master key file; back it up: without it no key pair it wraps can be decrypted",
                metadata: ["keystore": "\(keystore)", "file": "\(currentFile.path)", "keyID": "\(created.idHex)"]
            )
            key = created
        }
        guard let key else {
            throw KeystoreError(
                .misconfigured,
                keystore: keystore,
                message: "master key file '\(currentFile.path)' does not exist",
                hint: createIfMissing
                    ? "restore it from backup if it existed before (pairs it wrapped cannot be decrypted without it); a new one is created only when a key pair is generated"
                    : "restore it from backup, or set createIfMissing: true to create a new one (only for a new deployment: pairs wrapped by a lost key cannot be recovered)"
            )
        }
        current = key
        return key
    }

    func previousKeys() async throws(KeystoreError) -> [MasterKey] {
        if let previous { return previous }
        var keys: [MasterKey] = []
        let keystore = self.keystore
        for file in previousFiles {
            guard let key = try await BlockingWork.io({ () throws(KeystoreError) in try MasterKeyFile.read(file, keystore: keystore) })
            else {
                throw KeystoreError(
                    .misconfigured,
                    keystore: keystore,
                    message: "previous master key file '\(file.path)' (listed in previousPaths) does not exist",
                    hint: "restore it from backup; the pairs it wrapped cannot be decrypted without it"
                )
            }
            keys.append(key)
        }
        previous = keys
        return keys
    }

    func key(withID id: Data) async throws(KeystoreError) -> MasterKey {
        let current = try await currentKey()
        if current.id == id { return current }
        let previous = try await previousKeys()
        if let match = previous.first(where: { $0.id == id }) { return match }
        let hex = id.hexEncodedString()
        let known = ([current] + previous).map { "\($0.idHex) (\($0.file.path))" }
        throw KeystoreError(
            .wrongKey,
            keystore: keystore,
            message:
                "the stored key was wrapped by master key id \(hex), which is not configured; configured: \(known.joined(separator: ", "))",
            hint: "add the key file with id \(hex) to previousPaths"
        )
    }

    func health() async -> KeystoreHealth {
        let file = currentFile
        if current == nil, createIfMissing, !(await BlockingWork.io { FileManager.default.fileExists(atPath: file.path) }) {
            return .healthy("master key file '\(currentFile.path)' will be created when the first key pair is generated")
        }
        do {
            let key = try await currentKey()
            let previous = try await previousKeys()
            let note = previous.isEmpty ? "" : ", \(previous.count) previous key(s)"
            return .healthy("master key '\(key.file.path)' (id \(key.idHex))\(note)")
        } catch {
            return .unhealthy(error)
        }
    }
}
