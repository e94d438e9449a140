import Foundation
import KeyBroker
import NIOCore

/// The answer to `GET /v1/orgs/{org}/public-key` for one current pair, kept compact and
/// written out on each hit without JSON encoding, date formatting or a store read.
///
/// A full answer is about 1.6 KiB for an RSA-3072 pair, so 100,000 of them would take some
/// 170 MiB. This keeps what differs between answers — the key pair's JSON values as
/// `APIJSON.encoder` wrote them, each behind its length, and the DER public key — about 0.8
/// KiB, and writes the rest (the fixed key names, the base64 DER and the PEM) on each hit.
/// Building an entry renders it once both ways and compares: an answer that the fast writer
/// would not produce byte for byte is kept whole instead, so a hit never differs from what
/// the encoder would have sent.
struct CachedPublicKey: Sendable {
    /// The pair's id.
    let pairID: UUID
    /// The `ETag` value: the pair id in quotes (a strong validator; a pair's answer never
    /// changes while it is current).
    let etag: String
    private let storage: Storage
    /// What the entry costs in memory, roughly: its bytes plus the fixed costs of a cache slot.
    let cost: Int

    private enum Storage: Sendable {
        /// The key pair's 11 JSON values (2-byte length, then the bytes; length 0: absent),
        /// then the DER public key.
        case compact([UInt8])
        /// The whole answer, when the fast writer disagreed with the encoder.
        case whole([UInt8])
    }

    /// The fixed cost of one entry besides its bytes: the entry, its array's header, the
    /// dictionary slot and the clock slot.
    static let overhead = 160

    /// The entry of a current pair.
    /// - Throws: ``KeyBroker/BrokerError`` (`corruptRecord`) when the stored public key is no
    ///   RSA key, as ``PublicKeyView`` does.
    init(_ record: KeyPairRecord) throws {
        let view = try PublicKeyView(record)
        let whole = try [UInt8](APIJSON.encoder.encode(view))
        pairID = record.id
        etag = "\"\(view.keyPair.id)\""
        var packed: [UInt8] = []
        let pair = view.keyPair
        let values: [[UInt8]?] = [
            try pair.backendKeyReference.map(Self.encoded),
            try Self.encoded(pair.createdAt),
            try Self.encoded(pair.current),
            try Self.encoded(pair.id),
            try Self.encoded(pair.keystore),
            try Self.encoded(pair.keystoreType),
            try Self.encoded(pair.organization),
            try Self.encoded(pair.publicKeyFingerprint),
            try Self.encoded(pair.reason),
            try Self.encoded(pair.requestedBy),
            try Self.encoded(pair.spec),
        ]
        var fits = true
        for value in values {
            let bytes = value ?? []
            guard bytes.count <= Int(UInt16.max) else {
                fits = false
                break
            }
            packed.append(UInt8(truncatingIfNeeded: bytes.count >> 8))
            packed.append(UInt8(truncatingIfNeeded: bytes.count))
            packed.append(contentsOf: bytes)
        }
        packed.append(contentsOf: record.publicKeyDER)
        let compact = Storage.compact(packed)
        if fits, Self.render(compact) == whole {
            storage = compact
            cost = packed.count + Self.overhead
        } else {
            storage = .whole(whole)
            cost = whole.count + Self.overhead
        }
    }

    /// The answer's bytes.
    func body(allocator: ByteBufferAllocator) -> ByteBuffer {
        switch storage {
        case .whole(let bytes):
            return allocator.buffer(bytes: bytes)
        case .compact(let packed):
            var buffer = allocator.buffer(capacity: Self.length(packed))
            Self.write(packed, into: &buffer)
            return buffer
        }
    }

    /// Whether the entry is kept whole (the fast writer disagreed); for tests and metrics.
    var isWhole: Bool {
        if case .whole = storage { return true }
        return false
    }

    // MARK: writing

    private static func encoded<T: Encodable>(_ value: T) throws -> [UInt8] {
        [UInt8](try APIJSON.encoder.encode(value))
    }

    /// The key names before each value, in `APIJSON.encoder`'s sorted order.
    private static let keys: [[UInt8]] = [
        "backendKeyReference", "createdAt", "current", "id", "keystore", "keystoreType", "organization",
        "publicKeyFingerprint", "reason", "requestedBy", "spec",
    ].map { Array("\"\($0)\":".utf8) }
    private static let opening = Array(#"{"keyPair":{"#.utf8)
    private static let derKey = Array(#"},"publicKeyDER":""#.utf8)
    private static let pemKey = Array(#"","publicKeyPEM":"-----BEGIN PUBLIC KEY-----\n"#.utf8)
    private static let closing = Array(#"-----END PUBLIC KEY-----\n"}"#.utf8)
    private static let newline = Array(#"\n"#.utf8)

    private static func render(_ storage: Storage) -> [UInt8] {
        switch storage {
        case .whole(let bytes): return bytes
        case .compact(let packed):
            var buffer = ByteBufferAllocator().buffer(capacity: length(packed))
            write(packed, into: &buffer)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        }
    }

    /// Walks the packed values; `body` gets each key index and its value's range, and the
    /// function returns where the DER begins.
    private static func values(_ packed: [UInt8], _ body: (Int, Range<Int>) -> Void) -> Int {
        var offset = 0
        for index in keys.indices {
            guard offset + 2 <= packed.count else { return packed.count }
            let count = Int(packed[offset]) << 8 | Int(packed[offset + 1])
            offset += 2
            let end = min(offset + count, packed.count)
            if count > 0 { body(index, offset..<end) }
            offset = end
        }
        return offset
    }

    private static func base64Length(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    private static func length(_ packed: [UInt8]) -> Int {
        var total = opening.count + derKey.count + pemKey.count + closing.count
        var separators = -1
        let derStart = values(packed) { index, range in
            total += keys[index].count + range.count
            separators += 1
        }
        total += max(separators, 0)
        let encoded = base64Length(packed.count - derStart)
        let lines = (encoded + 63) / 64
        return total + encoded * 2 + lines * newline.count
    }

    private static func write(_ packed: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeBytes(opening)
        var first = true
        let derStart = values(packed) { index, range in
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
            buffer.writeBytes(keys[index])
            buffer.writeBytes(packed[range])
        }
        buffer.writeBytes(derKey)
        let der = packed[derStart...]
        let encoded = base64(der)
        buffer.writeBytes(encoded)
        buffer.writeBytes(pemKey)
        var line = encoded.startIndex
        while line < encoded.endIndex {
            let end = min(line + 64, encoded.endIndex)
            buffer.writeBytes(encoded[line..<end])
            buffer.writeBytes(newline)
            line = end
        }
        buffer.writeBytes(closing)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 with padding (RFC 4648 §4), as `Data.base64EncodedString()` writes it.
    private static func base64(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(base64Length(bytes.count))
        var index = bytes.startIndex
        while index + 3 <= bytes.endIndex {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(alphabet[Int(chunk >> 6 & 63)])
            out.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let rest = bytes.endIndex - index
        if rest > 0 {
            let second = rest == 2 ? UInt32(bytes[index + 1]) : 0
            let chunk = UInt32(bytes[index]) << 16 | second << 8
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return out
    }
}
