import Crypto
import Foundation
import KeyBroker

/// Reading and creating master key files, refusing any that others could read.
enum MasterKeyFile {
    /// Reads a key file, checking that it is a regular file of exactly 32 bytes that only
    /// its owner can read or write.
    /// - Returns: the key, or `nil` when the file does not exist.
    static func read(_ file: URL, keystore: String) throws(KeystoreError) -> MasterKey? {
        func failure(_ kind: KeystoreError.Kind, _ message: String) -> KeystoreError {
            KeystoreError(kind, keystore: keystore, message: message)
        }
        var bytes: [UInt8]
        do {
            // One byte more than a key would be read, to tell a longer file from a key file.
            bytes = try CheckedFile.read(file, limit: MasterKey.size, secret: true)
        } catch {
            let what = "master key file"
            switch error {
            case .missing: return nil
            case .notRegular:
                throw failure(
                    .misconfigured,
                    "\(what) '\(file.path)' is not a regular file (a FIFO, device or directory); point path at the 32-byte key file"
                )
            case .tooLarge(let size):
                throw failure(.misconfigured, Self.wrongSize(file, size: size))
            case .unreadable:
                throw failure(.unreachable, CheckedFile.message(error, what: what, file: file) ?? "")
            case .readableByOthers, .wrongOwner:
                throw failure(.denied, CheckedFile.message(error, what: what, file: file) ?? "")
            }
        }
        defer { CheckedFile.wipe(&bytes) }
        guard bytes.count == MasterKey.size else { throw failure(.misconfigured, Self.wrongSize(file, size: Int64(bytes.count))) }
        return MasterKey(bytes: Data(bytes), file: file)
    }

    private static func wrongSize(_ file: URL, size: Int64) -> String {
        "master key file '\(file.path)' holds \(size) bytes, but a master key is exactly \(MasterKey.size) random bytes; create one with: head -c 32 /dev/urandom > FILE && chmod 600 FILE"
    }

    /// Creates a key file with 32 bytes from the CSPRNG, mode 0600, in a directory created
    /// with mode 0700 where missing. Never overwrites: when another process created the file
    /// first, that file is read instead.
    static func create(_ file: URL, keystore: String) throws(KeystoreError) -> MasterKey {
        func failure(_ kind: KeystoreError.Kind, _ message: String) -> KeystoreError {
            KeystoreError(kind, keystore: keystore, message: message)
        }
        let directory = file.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(
                at: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw failure(.unreachable, "cannot create directory '\(directory.path)' for the master key: \(error.localizedDescription)")
        }
        // Write a complete file under a temporary name, then link it into place: link() never
        // replaces an existing file, and a concurrent reader never sees a half-written key.
        let temporary = directory.appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString).tmp")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw failure(.unreachable, "cannot create a master key file in '\(directory.path)': \(String(cString: strerror(errno)))")
        }
        defer { unlink(temporary.path) }
        var bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        defer { PrivateKeyMaterial.wipe(&bytes) }
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = written == MasterKey.size && fchmod(descriptor, 0o600) == 0 && fsync(descriptor) == 0
        let reason = synced ? "" : (written >= 0 && written < MasterKey.size ? "short write" : String(cString: strerror(errno)))
        close(descriptor)
        guard synced else {
            throw failure(.unreachable, "writing master key file '\(file.path)' failed: \(reason)")
        }
        guard link(temporary.path, file.path) == 0 else {
            if errno == EEXIST, let existing = try read(file, keystore: keystore) { return existing }
            throw failure(.unreachable, "cannot create master key file '\(file.path)': \(String(cString: strerror(errno)))")
        }
        let directoryDescriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
        return MasterKey(bytes: bytes, file: file)
    }
}
