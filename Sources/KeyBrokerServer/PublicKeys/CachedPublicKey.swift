package import Foundation
package import KeyBroker
package import NIOCore

/// The answer to `GET /v1/orgs/{org}/public-key` for one current pair, kept compact and
/// written out on each hit without JSON encoding, date formatting or a store read.
///
/// A full answer is about 1.6 KiB for an RSA-3072 pair, so 100,000 of them would take some
/// 170 MiB. An entry keeps one byte array instead: the pair id and the public key's SHA-256
/// as raw bytes, the other values of the key pair as `APIJSON.encoder` wrote them (each
/// behind its length), and the DER public key — about 0.6 KiB. A hit writes the rest: the
/// fixed key names, the id and fingerprint in hex, the base64 DER and the PEM. Building an
/// entry renders it once both ways and compares: an answer that the fast writer would not
/// produce byte for byte is kept whole instead, so a hit never differs from what the encoder
/// would have sent.
package struct CachedPublicKey: Sendable {
    private let storage: Storage

    private enum Storage: Sendable {
        /// 16 bytes of pair id, 32 of fingerprint, the other values (2-byte length, then the
        /// bytes; length 0: absent), then the DER public key.
        case compact([UInt8])
        /// The whole answer, and the ETag, when the fast writer disagreed with the encoder.
        case whole([UInt8], etag: String)
    }

    /// The fixed cost of one entry besides its bytes, as measured by benchmarks/public-key
    /// (the array's header and allocator rounding, the clock slot, the dictionary's share).
    static let overhead = 112

    /// The values kept as JSON, in `APIJSON.encoder`'s sorted order, with where the raw id and
    /// fingerprint go between them.
    private static let jsonValues = 9

    /// The entry of a current pair.
    /// - Throws: ``KeyBroker/BrokerError`` (`corruptRecord`) when the stored public key is no
    ///   RSA key, as ``PublicKeyView`` does.
    package init(_ record: KeyPairRecord) throws {
        let view = try PublicKeyView(record)
        let whole = try [UInt8](APIJSON.encoder.encode(view))
        let pair = view.keyPair
        let values: [[UInt8]?] = [
            try pair.backendKeyReference.map(Self.encoded),
            try Self.encoded(pair.createdAt),
            try Self.encoded(pair.current),
            try Self.encoded(pair.keystore),
            try Self.encoded(pair.keystoreType),
            try Self.encoded(pair.organization),
            try Self.encoded(pair.reason),
            try Self.encoded(pair.requestedBy),
            try Self.encoded(pair.spec),
        ]
        // Sized exactly: an array grown by appending keeps up to twice its bytes.
        var packed: [UInt8] = []
        packed.reserveCapacity(Self.header + values.reduce(0) { $0 + 2 + ($1?.count ?? 0) } + record.publicKeyDER.count)
        var fits = Data(hexEncoded: pair.publicKeyFingerprint)?.count == 32 && pair.id == record.id.uuidString.lowercased()
        withUnsafeBytes(of: record.id.uuid) { packed.append(contentsOf: $0) }
        packed.append(contentsOf: Data(hexEncoded: pair.publicKeyFingerprint) ?? Data(count: 32))
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
        if fits, Self.render(packed) == whole {
            storage = .compact(packed)
        } else {
            storage = .whole(whole, etag: "\"\(pair.id)\"")
        }
    }

    /// The `ETag` value: the pair id in quotes (a strong validator; a pair's answer never
    /// changes while it is current).
    package var etag: String {
        switch storage {
        case .whole(_, let etag): return etag
        case .compact(let packed):
            var text = [UInt8](repeating: UInt8(ascii: "\""), count: 38)
            Self.writeUUID(packed[0..<16]) { index, byte in text[index + 1] = byte }
            return String(decoding: text, as: UTF8.self)
        }
    }

    /// The pair's id.
    package var pairID: UUID? { UUID(uuidString: String(etag.dropFirst().dropLast())) }

    /// What the entry costs in memory, roughly: its bytes plus the fixed costs of a slot.
    package var cost: Int {
        switch storage {
        case .compact(let packed): return packed.count + Self.overhead
        case .whole(let bytes, let etag): return bytes.count + etag.utf8.count + Self.overhead
        }
    }

    /// The answer's bytes.
    package func body(allocator: ByteBufferAllocator) -> ByteBuffer {
        switch storage {
        case .whole(let bytes, _):
            return allocator.buffer(bytes: bytes)
        case .compact(let packed):
            var buffer = allocator.buffer(capacity: Self.length(packed))
            Self.write(packed, into: &buffer)
            return buffer
        }
    }

    /// Whether the entry is kept whole (the fast writer disagreed); for tests.
    package var isWhole: Bool {
        if case .whole = storage { return true }
        return false
    }

    // MARK: writing

    private static func encoded<T: Encodable>(_ value: T) throws -> [UInt8] {
        [UInt8](try APIJSON.encoder.encode(value))
    }

    private static func key(_ name: String) -> [UInt8] { Array("\"\(name)\":".utf8) }
    /// The keys of the JSON values, in their order.
    private static let valueKeys = [
        "backendKeyReference", "createdAt", "current", "keystore", "keystoreType", "organization", "reason", "requestedBy", "spec",
    ].map(key)
    private static let idKey = key("id")
    private static let fingerprintKey = key("publicKeyFingerprint")
    /// The id goes after `current` (value 2), the fingerprint after `organization` (value 5).
    private static let idAfter = 2
    private static let fingerprintAfter = 5
    private static let opening = Array(#"{"keyPair":{"#.utf8)
    private static let derKey = Array(#"},"publicKeyDER":""#.utf8)
    private static let pemKey = Array(#"","publicKeyPEM":"-----BEGIN PUBLIC KEY-----\n"#.utf8)
    private static let closing = Array(#"-----END PUBLIC KEY-----\n"}"#.utf8)
    private static let newline = Array(#"\n"#.utf8)
    private static let hex = Array("0123456789abcdef".utf8)
    private static let header = 48

    private static func render(_ packed: [UInt8]) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: length(packed))
        write(packed, into: &buffer)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// Walks the packed JSON values; `body` gets each value's index and range, and the
    /// function returns where the DER begins.
    private static func values(_ packed: [UInt8], _ body: (Int, Range<Int>) -> Void) -> Int {
        var offset = header
        for index in 0..<jsonValues {
            guard offset + 2 <= packed.count else { return packed.count }
            let count = Int(packed[offset]) << 8 | Int(packed[offset + 1])
            offset += 2
            let end = min(offset + count, packed.count)
            body(index, offset..<end)
            offset = end
        }
        return offset
    }

    private static func base64Length(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    private static func length(_ packed: [UInt8]) -> Int {
        // The id and fingerprint, quoted, each with its key and a comma.
        var total = opening.count + derKey.count + pemKey.count + closing.count
        total += idKey.count + 38 + 1 + fingerprintKey.count + 66 + 1
        var present = 0
        let derStart = values(packed) { index, range in
            guard !range.isEmpty else { return }
            total += valueKeys[index].count + range.count
            present += 1
        }
        total += max(present - 1, 0)
        let encoded = base64Length(max(packed.count - derStart, 0))
        let lines = (encoded + 63) / 64
        return total + encoded * 2 + lines * newline.count
    }

    /// Writes the 16 bytes of a UUID as lowercase hex with dashes (36 characters).
    private static func writeUUID(_ bytes: ArraySlice<UInt8>, _ put: (Int, UInt8) -> Void) {
        var position = 0
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 {
                put(position, UInt8(ascii: "-"))
                position += 1
            }
            put(position, hex[Int(byte >> 4)])
            put(position + 1, hex[Int(byte & 15)])
            position += 2
        }
    }

    private static func write(_ packed: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeBytes(opening)
        var first = true
        func separate() {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
        }
        let derStart = values(packed) { index, range in
            if !range.isEmpty {
                separate()
                buffer.writeBytes(valueKeys[index])
                buffer.writeBytes(packed[range])
            }
            if index == idAfter {
                separate()
                buffer.writeBytes(idKey)
                buffer.writeInteger(UInt8(ascii: "\""))
                writeUUID(packed[0..<16]) { _, byte in buffer.writeInteger(byte) }
                buffer.writeInteger(UInt8(ascii: "\""))
            } else if index == fingerprintAfter {
                separate()
                buffer.writeBytes(fingerprintKey)
                buffer.writeInteger(UInt8(ascii: "\""))
                for byte in packed[16..<48] {
                    buffer.writeInteger(hex[Int(byte >> 4)])
                    buffer.writeInteger(hex[Int(byte & 15)])
                }
                buffer.writeInteger(UInt8(ascii: "\""))
            }
        }
        buffer.writeBytes(derKey)
        let encoded = base64(packed[min(derStart, packed.count)...])
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
