import Crypto
import Foundation
import KeyBroker

/// A 256-bit master key read from a file, with its public identifier.
struct MasterKey: Sendable {
    /// The number of random bytes in a master key file.
    static let size = 32
    /// The length of a key id in bytes.
    static let idSize = 8

    let key: SymmetricKey
    /// A fingerprint that names the key without revealing it: the first 8 bytes of
    /// SHA-256 over a domain label and the key.
    let id: Data
    let file: URL

    var idHex: String { id.hexEncodedString() }

    init(bytes: Data, file: URL) {
        key = SymmetricKey(data: bytes)
        var hasher = SHA256()
        hasher.update(data: Data("keybroker local-file master key id v1".utf8))
        hasher.update(data: bytes)
        id = Data(hasher.finalize().prefix(Self.idSize))
        self.file = file
    }
}
