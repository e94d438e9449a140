import Crypto
public import Foundation

/// Encrypts a recording for an organization with its current public key — no keystore call,
/// so it works during a keystore outage — in constant memory, one segment at a time.
///
/// ```swift
/// var encryptor = try RecordingEncryptor(organization: org, keyPairID: pair.id, spec: pair.spec, publicKeyDER: pair.publicKeyDER)
/// write(encryptor.header.encoded)
/// while let chunk = read() { write(try encryptor.update(chunk)) }
/// write(try encryptor.finish())
/// ```
public struct RecordingEncryptor: Sendable {
    /// The header to write first.
    public let header: RecordingHeader
    private let key: SymmetricKey
    private let digest: Data
    private var buffer = Data()
    private var segment: UInt32 = 0
    private var finished = false

    /// Creates an encryptor with a fresh random data key wrapped by `publicKeyDER`.
    /// - Parameters:
    ///   - organization: the organization the recording belongs to.
    ///   - keyPairID: the id of the pair whose public key is used.
    ///   - spec: that pair's spec.
    ///   - publicKeyDER: its public key, DER `SubjectPublicKeyInfo`.
    ///   - segmentSize: the plaintext segment size.
    public init(
        organization: OrganizationID,
        keyPairID: UUID,
        spec: KeyPairSpec,
        publicKeyDER: Data,
        segmentSize: Int = RecordingHeader.defaultSegmentSize
    ) throws {
        guard RecordingHeader.segmentSizes.contains(segmentSize) else {
            throw RecordingError.malformedHeader("segment size \(segmentSize) is out of range \(RecordingHeader.segmentSizes)")
        }
        let key = SymmetricKey(size: .bits256)
        var keyBytes = key.withUnsafeBytes { Data($0) }
        defer { PrivateKeyMaterial.wipe(&keyBytes) }
        let wrapped = try PublicKeyEncryption.wrapDataKey(keyBytes, publicKeyDER: publicKeyDER)
        guard wrapped.count == spec.bits / 8 else {
            throw RecordingError.dataKey("the public key is not an \(spec) key")
        }
        var prefix = Data(count: RecordingHeader.noncePrefixSize)
        prefix.withUnsafeMutableBytes { buffer in
            var generator = SystemRandomNumberGenerator()
            for index in buffer.indices { buffer[index] = generator.next() }
        }
        header = RecordingHeader(
            organization: organization,
            keyPairID: keyPairID,
            spec: spec,
            wrappedDataKey: wrapped,
            noncePrefix: prefix,
            segmentSize: segmentSize
        )
        self.key = key
        digest = header.authenticationDigest
    }

    /// Takes more plaintext; returns the sealed segments it completed (possibly none).
    /// A full segment is held back until more input shows it is not the last.
    public mutating func update(_ plaintext: Data) throws -> Data {
        precondition(!finished, "update after finish")
        var output = Data()
        var rest = plaintext[...]
        let size = header.segmentSize
        // The buffer never holds more than one segment: a full one is sealed only once more
        // input shows it is not the last. (Data.removeFirst would keep the removed bytes'
        // storage alive, so a long recording would grow the buffer without bound.)
        while !rest.isEmpty {
            if buffer.count == size {
                output.append(try seal(buffer, last: false))
                buffer.removeAll(keepingCapacity: true)
            }
            let take = min(size - buffer.count, rest.count)
            buffer.append(rest.prefix(take))
            rest = rest.dropFirst(take)
        }
        return output
    }

    /// Seals one whole segment directly, for callers that read exactly segment-sized chunks
    /// and know which is the last (no buffering, no copy into the encryptor).
    /// - Parameters:
    ///   - plaintext: `segmentSize` bytes, or at most that for the last segment.
    ///   - last: whether this is the final segment; call with `true` exactly once, at the end.
    /// - Returns: the ciphertext and the 16-byte tag.
    public mutating func sealSegment(_ plaintext: Data, last: Bool) throws -> (ciphertext: Data, tag: Data) {
        precondition(!finished && buffer.isEmpty, "sealSegment cannot be mixed with update")
        precondition(plaintext.count == header.segmentSize || (last && plaintext.count <= header.segmentSize))
        if last { finished = true }
        return try sealParts(plaintext, last: last)
    }

    /// Seals the last segment (possibly empty); call once at the end of the input.
    public mutating func finish() throws -> Data {
        precondition(!finished, "finish twice")
        finished = true
        defer { buffer = Data() }
        return try seal(buffer, last: true)
    }

    private mutating func seal(_ plaintext: Data, last: Bool) throws -> Data {
        let (ciphertext, tag) = try sealParts(plaintext, last: last)
        return ciphertext + tag
    }

    private mutating func sealParts(_ plaintext: Data, last: Bool) throws -> (ciphertext: Data, tag: Data) {
        guard segment < UInt32.max else { throw RecordingError.tooManySegments }
        let box = try AES.GCM.seal(plaintext, using: key, nonce: header.nonce(segment: segment, last: last), authenticating: digest)
        segment += 1
        return (box.ciphertext, box.tag)
    }
}

/// Decrypts a recording's body once its data key was unwrapped (through KeyBroker, which
/// routes the private key to the keystore that wrapped the pair), one segment at a time.
public struct RecordingDecryptor: Sendable {
    /// The recording's header.
    public let header: RecordingHeader
    private let key: SymmetricKey
    private let digest: Data
    static let tagSize = 16

    /// The size of a full sealed segment.
    public var sealedSegmentSize: Int { header.segmentSize + Self.tagSize }

    /// Creates a decryptor.
    /// - Parameters:
    ///   - header: the header read from the recording.
    ///   - dataKey: the unwrapped 32-byte data key.
    public init(header: RecordingHeader, dataKey: Data) throws {
        guard dataKey.count == 32 else { throw RecordingError.dataKey("it is \(dataKey.count) bytes, not 32") }
        self.header = header
        key = SymmetricKey(data: dataKey)
        digest = header.authenticationDigest
    }

    /// Opens segment `index`.
    /// - Parameters:
    ///   - sealed: the segment's ciphertext and tag.
    ///   - index: its position from 0.
    ///   - last: whether nothing follows it.
    public func open(_ sealed: Data, segment index: UInt64, last: Bool) throws -> Data {
        guard index < UInt64(UInt32.max) else { throw RecordingError.tooManySegments }
        guard sealed.count >= Self.tagSize, sealed.count <= sealedSegmentSize else {
            throw RecordingError.authenticationFailed(segment: index)
        }
        do {
            let box = try AES.GCM.SealedBox(
                nonce: header.nonce(segment: UInt32(index), last: last),
                ciphertext: sealed.dropLast(Self.tagSize),
                tag: sealed.suffix(Self.tagSize)
            )
            return try AES.GCM.open(box, using: key, authenticating: digest)
        } catch {
            throw RecordingError.authenticationFailed(segment: index)
        }
    }
}
