public import Foundation

#if canImport(CDispatch)
// On Linux, the clang importer files `struct stat` under the first module to include
// <sys/stat.h>; its members need that module imported.
import CDispatch
#endif
#if canImport(CoreFoundation)
import CoreFoundation
#endif

/// Reading a file that settings name: a regular file of bounded size and, for a secret (a
/// master key, a TLS private key), readable by its owner only and owned by the user the
/// process runs as. The file is opened once and what was opened is checked (`fstat`), so it
/// cannot be swapped between the checks and the read. Symbolic links are followed (mounted
/// secrets use them); `O_NONBLOCK` makes a FIFO open at once, to be refused, instead of
/// waiting for a writer forever.
public enum CheckedFile {
    /// Why a file cannot be used.
    public enum Problem: Error, Sendable {
        /// It does not exist.
        case missing
        /// It cannot be opened or read; the system's reason.
        case unreadable(String)
        /// A FIFO, device or directory.
        case notRegular
        /// A secret that group or others may read; its mode in octal.
        case readableByOthers(mode: String)
        /// A secret that belongs to another user.
        case wrongOwner(owner: UInt32, user: UInt32)
        /// It holds more than the limit; its size.
        case tooLarge(size: Int64)
    }

    /// The file's bytes, at most `limit` of them.
    public static func read(_ file: URL, limit: Int, secret: Bool) throws(Problem) -> [UInt8] {
        let descriptor = open(file.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw errno == ENOENT ? .missing : .unreadable(String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .unreadable(String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notRegular }
        if secret {
            let mode = info.st_mode & 0o777
            guard mode & 0o077 == 0 else { throw .readableByOthers(mode: String(mode, radix: 8)) }
            guard info.st_uid == geteuid() else { throw .wrongOwner(owner: info.st_uid, user: geteuid()) }
        }
        // One byte more than the limit, to tell a longer file from one that fits.
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        let count = bytes.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return -1 }
            var filled = 0
            while filled < buffer.count {
                let got = Foundation.read(descriptor, base + filled, buffer.count - filled)
                if got < 0, errno == EINTR { continue }
                if got <= 0 { return got < 0 ? -1 : filled }
                filled += got
            }
            return filled
        }
        guard count >= 0 else { throw .unreadable(String(cString: strerror(errno))) }
        guard count <= limit else {
            wipe(&bytes)
            throw .tooLarge(size: Int64(info.st_size))
        }
        bytes.removeSubrange(count...)
        return bytes
    }

    /// Overwrites `bytes` with zeros (a secret's copy, once used).
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in _ = buffer.baseAddress.map { memset($0, 0, buffer.count) } }
    }

    /// What to tell the operator, for the problems every caller words alike; `what` names the
    /// file ("master key file"). `nil` for ``Problem/missing``, ``Problem/notRegular`` and
    /// ``Problem/tooLarge(size:)``, whose advice depends on what the file is for.
    public static func message(_ problem: Problem, what: String, file: URL) -> String? {
        switch problem {
        case .unreadable(let reason):
            return "cannot read \(what) '\(file.path)': \(reason)"
        case .readableByOthers(let mode):
            return
                "\(what) '\(file.path)' has mode \(mode), so group or others can read it; make it readable by its owner only: chmod 600 '\(file.path)'"
        case .wrongOwner(let owner, let user):
            return
                "\(what) '\(file.path)' belongs to uid \(owner), not to the user KeyBroker runs as (uid \(user)); chown it to that user"
        case .missing, .notRegular, .tooLarge:
            return nil
        }
    }
}
