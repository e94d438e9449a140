import Foundation

/// Reading a file already opened and checked (`open`, then `fstat` on the descriptor), as
/// key files are: the checks and the read see the same file.
public enum DescriptorRead {
    /// Reads from `descriptor` until `buffer` is full or the file ends, retrying on `EINTR`.
    /// - Returns: how many bytes were read, or `-1` with `errno` set.
    public static func fill(_ descriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
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
}
