import Crypto
public import Foundation

/// The header of an encrypted recording (format version 1). See docs/format.md.
///
/// ```
/// offset  size  field
/// 0       4     magic "KBRC"
/// 4       1     format version (1)
/// 5       2     organization id length L (big-endian)
/// 7       L     organization id (ASCII)
/// 7+L     16    key pair id (UUID bytes)
/// 23+L    1     KEK spec (1 RSA_2048, 2 RSA_3072, 3 RSA_4096)
/// 24+L    2     wrapped data key length W (big-endian)
/// 26+L    W     data key wrapped with RSA-OAEP-SHA256 (W = modulus size)
/// 26+L+W  7     nonce prefix (random)
/// 33+L+W  4     segment size S in bytes (big-endian)
/// ```
/// Every body segment is authenticated with SHA-256 of these header bytes as associated
/// data, so changing any header byte makes decryption fail.
public struct RecordingHeader: Sendable, Equatable {
    /// `KBRC`.
    public static let magic = Data("KBRC".utf8)
    /// The format version this build writes and reads.
    public static let version: UInt8 = 1
    /// The default plaintext segment size: 64 KiB.
    public static let defaultSegmentSize = 64 * 1024
    /// The allowed segment sizes.
    public static let segmentSizes = 1024...(16 * 1024 * 1024)
    static let noncePrefixSize = 7

    /// The organization whose key pair wrapped the data key.
    public let organization: OrganizationID
    /// The key pair whose public key wrapped the data key.
    public let keyPairID: UUID
    /// That pair's spec.
    public let spec: KeyPairSpec
    /// The data key, wrapped with RSA-OAEP-SHA256.
    public let wrappedDataKey: Data
    /// The random prefix of every segment nonce.
    public let noncePrefix: Data
    /// The plaintext size of every segment but the last.
    public let segmentSize: Int

    /// The encoded header.
    public let encoded: Data

    /// Creates a header and its encoding.
    public init(organization: OrganizationID, keyPairID: UUID, spec: KeyPairSpec, wrappedDataKey: Data, noncePrefix: Data, segmentSize: Int)
    {
        precondition(noncePrefix.count == Self.noncePrefixSize && Self.segmentSizes.contains(segmentSize))
        self.organization = organization
        self.keyPairID = keyPairID
        self.spec = spec
        self.wrappedDataKey = wrappedDataKey
        self.noncePrefix = noncePrefix
        self.segmentSize = segmentSize
        var data = Self.magic
        data.append(Self.version)
        let org = Data(organization.rawValue.utf8)
        data.appendBigEndian(UInt16(org.count))
        data.append(org)
        withUnsafeBytes(of: keyPairID.uuid) { data.append(contentsOf: $0) }
        data.append(Self.code(of: spec))
        data.appendBigEndian(UInt16(wrappedDataKey.count))
        data.append(wrappedDataKey)
        data.append(noncePrefix)
        data.appendBigEndian(UInt32(segmentSize))
        encoded = data
    }

    /// SHA-256 of the encoded header: the associated data of every segment.
    var authenticationDigest: Data { Data(SHA256.hash(data: encoded)) }

    private static func code(of spec: KeyPairSpec) -> UInt8 {
        switch spec {
        case .rsa2048: 1
        case .rsa3072: 2
        case .rsa4096: 3
        }
    }

    private static func spec(for code: UInt8) -> KeyPairSpec? {
        [1: KeyPairSpec.rsa2048, 2: .rsa3072, 3: .rsa4096][code]
    }

    /// Reads a header from the start of a stream.
    /// - Parameter read: returns exactly `count` bytes, or fewer at the end of the input.
    public static func read(from read: (Int) throws -> Data) throws -> RecordingHeader {
        func take(_ count: Int, _ what: String) throws -> Data {
            let data = try read(count)
            guard data.count == count else { throw RecordingError.truncatedHeader(what) }
            return data
        }
        let magic = try read(4)
        guard magic == Self.magic else { throw RecordingError.badMagic }
        let version = try take(1, "version")[0]
        guard version == Self.version else { throw RecordingError.unknownVersion(version) }
        let orgLength = Int(try take(2, "organization length").bigEndianInteger)
        let orgText = String(decoding: try take(orgLength, "organization"), as: UTF8.self)
        guard let organization = OrganizationID(orgText) else { throw RecordingError.malformedHeader("the organization id is not valid") }
        let uuidBytes = [UInt8](try take(16, "key pair id"))
        let keyPairID = UUID(
            uuid: (
                uuidBytes[0], uuidBytes[1], uuidBytes[2], uuidBytes[3], uuidBytes[4], uuidBytes[5], uuidBytes[6], uuidBytes[7],
                uuidBytes[8], uuidBytes[9], uuidBytes[10], uuidBytes[11], uuidBytes[12], uuidBytes[13], uuidBytes[14], uuidBytes[15]
            )
        )
        let specCode = try take(1, "KEK spec")[0]
        guard let spec = Self.spec(for: specCode) else { throw RecordingError.malformedHeader("unknown KEK spec code \(specCode)") }
        let wrappedLength = Int(try take(2, "wrapped key length").bigEndianInteger)
        guard wrappedLength == spec.bits / 8 else {
            throw RecordingError.malformedHeader("the wrapped data key is \(wrappedLength) bytes, but \(spec) needs \(spec.bits / 8)")
        }
        let wrapped = try take(wrappedLength, "wrapped data key")
        let prefix = try take(noncePrefixSize, "nonce prefix")
        let segmentSize = Int(try take(4, "segment size").bigEndianInteger)
        guard segmentSizes.contains(segmentSize) else {
            throw RecordingError.malformedHeader("segment size \(segmentSize) is out of range")
        }
        return RecordingHeader(
            organization: organization,
            keyPairID: keyPairID,
            spec: spec,
            wrappedDataKey: wrapped,
            noncePrefix: prefix,
            segmentSize: segmentSize
        )
    }

    /// The nonce of segment `index`: prefix ‖ counter (32-bit big-endian) ‖ last-segment flag.
    func nonce(segment index: UInt32, last: Bool) throws -> AES.GCM.Nonce {
        var bytes = noncePrefix
        bytes.appendBigEndian(index)
        bytes.append(last ? 1 : 0)
        return try AES.GCM.Nonce(data: bytes)
    }
}

/// What is wrong with an encrypted recording, phrased for the person who has to deal with it.
public enum RecordingError: Error, Sendable, Equatable, CustomStringConvertible {
    case badMagic
    case unknownVersion(UInt8)
    case truncatedHeader(String)
    case malformedHeader(String)
    case wrongOrganization(expected: OrganizationID, found: OrganizationID)
    case authenticationFailed(segment: UInt64)
    case truncated(afterSegment: UInt64)
    case noSegments
    case trailingData(afterSegment: UInt64)
    case tooManySegments
    case dataKey(String)

    public var description: String {
        switch self {
        case .badMagic: "not a KeyBroker recording (bad magic: the file does not start with KBRC)"
        case .unknownVersion(let version):
            "unknown recording format version \(version); this build reads version \(RecordingHeader.version)"
        case .truncatedHeader(let field): "the recording is truncated inside its header (at the \(field))"
        case .malformedHeader(let detail): "the recording header is malformed: \(detail)"
        case .wrongOrganization(let expected, let found):
            "the recording belongs to organization '\(found)', not '\(expected)'"
        case .authenticationFailed(let segment):
            "authentication failed at segment \(segment): the recording was altered, truncated or reordered, or its header changed"
        case .truncated(let segment): "the recording is truncated: it ends after segment \(segment) without its final segment"
        case .noSegments: "the recording is truncated: it ends right after its header"
        case .trailingData(let segment): "the recording has data after its final segment \(segment) (appended or duplicated data)"
        case .tooManySegments: "the recording has more segments than the format allows"
        case .dataKey(let detail): "the data key is unusable: \(detail)"
        }
    }
}

extension Data {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    var bigEndianInteger: UInt64 { reduce(0) { $0 << 8 | UInt64($1) } }
}
