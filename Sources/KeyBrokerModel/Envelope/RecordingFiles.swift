public import Foundation

/// Streams recordings between files (or standard input and output) in constant memory.
/// Output goes to a temporary file beside the destination, renamed into place only on
/// success, so a failure never leaves partial plaintext under the output name.
public enum RecordingFiles {
    /// Progress reports: bytes read so far, and the input's total size when known.
    public typealias Progress = @Sendable (_ done: Int64, _ total: Int64?) -> Void

    /// Encrypts `input` into `output` (`-` for standard input or output).
    public static func encrypt(
        _ input: String,
        to output: String,
        with encryptor: RecordingEncryptor,
        progress: Progress? = nil
    ) throws {
        var encryptor = encryptor
        try withStreams(input: input, output: output) { read, write, total in
            try write(encryptor.header.encoded)
            let size = encryptor.header.segmentSize
            var done: Int64 = 0
            var current = try read(size)
            while true {
                // A full segment is the last one only if nothing follows it.
                let next = current.count == size ? try read(size) : Data()
                let sealed = try encryptor.sealSegment(current, last: next.isEmpty)
                try write(sealed.ciphertext)
                try write(sealed.tag)
                done += Int64(current.count)
                progress?(done, total)
                if next.isEmpty { break }
                current = next
            }
        }
    }

    /// Reads only the header of a recording.
    public static func header(of input: String) throws -> RecordingHeader {
        let handle = try open(input)
        defer { if input != "-" { try? handle.close() } }
        return try RecordingHeader.read { try Descriptor.read(handle.fileDescriptor, count: $0) }
    }

    /// Decrypts `input` into `output`; `dataKey` receives the header and returns the
    /// unwrapped data key (through the broker or a server).
    public static func decrypt(
        _ input: String,
        to output: String,
        progress: Progress? = nil,
        dataKey: (RecordingHeader) async throws -> Data
    ) async throws {
        let handle = try open(input)
        defer { if input != "-" { try? handle.close() } }
        let header = try RecordingHeader.read { try Descriptor.read(handle.fileDescriptor, count: $0) }
        var key = try await dataKey(header)
        defer { PrivateKeyMaterial.wipe(&key) }
        let decryptor = try RecordingDecryptor(header: header, dataKey: key)
        try withStreams(inputHandle: handle, inputPath: input, output: output) { read, write, total in
            var index: UInt64 = 0
            var done: Int64 = Int64(header.encoded.count)
            var current = try read(decryptor.sealedSegmentSize)
            while true {
                // A full segment is the last one only if nothing follows it.
                let next = current.count == decryptor.sealedSegmentSize ? try read(decryptor.sealedSegmentSize) : Data()
                let last = next.isEmpty
                if current.isEmpty { throw RecordingError.noSegments }
                do {
                    try write(try decryptor.open(current, segment: index, last: last))
                } catch RecordingError.authenticationFailed(let segment) where last && current.count == decryptor.sealedSegmentSize {
                    // A full segment that fails as the last one was probably followed by a removed final segment.
                    if (try? decryptor.open(current, segment: index, last: false)) != nil {
                        throw RecordingError.truncated(afterSegment: index)
                    }
                    throw RecordingError.authenticationFailed(segment: segment)
                } catch RecordingError.authenticationFailed where !last {
                    if (try? decryptor.open(current, segment: index, last: true)) != nil {
                        throw RecordingError.trailingData(afterSegment: index)
                    }
                    throw RecordingError.authenticationFailed(segment: index)
                }
                done += Int64(current.count)
                progress?(done, total)
                if last { break }
                index += 1
                current = next
            }
        }
    }

    // MARK: streams

    private static func open(_ path: String) throws -> FileHandle {
        if path == "-" { return FileHandle.standardInput }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw RecordingFileError(
                "cannot read '\(path)': \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")"
            )
        }
        return handle
    }

    private static func withStreams(
        input: String,
        output: String,
        _ body: (_ read: (Int) throws -> Data, _ write: (Data) throws -> Void, _ total: Int64?) throws -> Void
    ) throws {
        let handle = try open(input)
        defer { if input != "-" { try? handle.close() } }
        try withStreams(inputHandle: handle, inputPath: input, output: output, body)
    }

    private static func withStreams(
        inputHandle: FileHandle,
        inputPath: String,
        output: String,
        _ body: (_ read: (Int) throws -> Data, _ write: (Data) throws -> Void, _ total: Int64?) throws -> Void
    ) throws {
        let total = inputPath == "-" ? nil : (try? FileManager.default.attributesOfItem(atPath: inputPath)[.size] as? Int64) ?? nil
        // Plain read(2)/write(2) on the descriptors: Foundation's FileHandle reads files in
        // 4 KiB pieces with an fstat each, which made streaming several times slower.
        let input = inputHandle.fileDescriptor
        let read: (Int) throws -> Data = { count in try Descriptor.read(input, count: count) }
        if output == "-" {
            try body(read, { try Descriptor.write(STDOUT_FILENO, $0) }, total)
            return
        }
        let destination = URL(fileURLWithPath: output)
        let temporary = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).partial")
        // Created 0600 from the start, never through a link or over an existing file.
        let descriptor = systemOpen(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw RecordingFileError(
                "cannot create a file in '\(destination.deletingLastPathComponent().path)': \(String(cString: strerror(errno)))"
            )
        }
        let writer = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            try body(read, { try Descriptor.write(writer.fileDescriptor, $0) }, total)
            try writer.synchronize()
            try writer.close()
            if rename(temporary.path, destination.path) != 0 {
                throw RecordingFileError("cannot rename the output into '\(output)': \(String(cString: strerror(errno)))")
            }
        } catch {
            try? writer.close()
            unlink(temporary.path)
            throw error
        }
    }
}

/// A file could not be read or written.
public struct RecordingFileError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Whole reads and writes on a file descriptor, retrying short transfers and EINTR.
enum Descriptor {
    /// Reads `count` bytes, or fewer at the end of the input.
    static func read(_ descriptor: Int32, count: Int) throws -> Data {
        var data = Data(count: count)
        let filled = try data.withUnsafeMutableBytes { buffer -> Int in
            // An empty buffer has no base address, and nothing to read into.
            guard let base = buffer.baseAddress else { return 0 }
            var filled = 0
            while filled < count {
                let got = systemRead(descriptor, base + filled, count - filled)
                if got == 0 { break }
                if got < 0 {
                    if errno == EINTR { continue }
                    throw RecordingFileError("reading the input failed: \(String(cString: strerror(errno)))")
                }
                filled += got
            }
            return filled
        }
        if filled < count { data.removeSubrange(filled...) }
        return data
    }

    /// Writes all of `data`.
    static func write(_ descriptor: Int32, _ data: Data) throws {
        try data.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var written = 0
            while written < buffer.count {
                let put = systemWrite(descriptor, base + written, buffer.count - written)
                if put < 0 {
                    if errno == EINTR { continue }
                    throw RecordingFileError("writing the output failed: \(String(cString: strerror(errno)))")
                }
                // A descriptor that accepts nothing would otherwise be retried for ever.
                guard put > 0 else { throw RecordingFileError("writing the output failed: the output accepted no bytes") }
                written += put
            }
        }
    }
}

// File-scope wrappers: inside `Descriptor`, `read` and `write` name its own methods.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}

private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}

private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}
