import Crypto
public import Foundation
import _CryptoExtras

/// A plaintext RSA private key, held only as long as an unwrap needs it (invariant 4).
///
/// `_RSA.Encryption.PrivateKey` is not `Sendable` in swift-crypto 4.5.2, although it is an
/// immutable wrapper around a BoringSSL `RSA*` that BoringSSL documents as safe for
/// concurrent use. This one type carries the `@unchecked Sendable` so that no other code
/// needs an annotation.
public final class PrivateKeyMaterial: @unchecked Sendable {
    private let key: _RSA.Encryption.PrivateKey

    /// The spec matching the key's modulus size.
    public let spec: KeyPairSpec

    /// Parses a DER private key (PKCS#8 or PKCS#1).
    /// - Parameter derRepresentation: the key bytes; the caller should wipe its copy afterwards.
    public init(derRepresentation: Data) throws(KeyMaterialError) {
        let key: _RSA.Encryption.PrivateKey
        do {
            key = try _RSA.Encryption.PrivateKey(derRepresentation: derRepresentation)
        } catch {
            throw KeyMaterialError("the unwrapped private key is not a valid DER RSA private key (\(error))")
        }
        guard let spec = KeyPairSpec.allCases.first(where: { $0.bits == key.keySizeInBits }) else {
            throw KeyMaterialError("the unwrapped private key has \(key.keySizeInBits) bits, not one of \(KeyPairSpec.allowedValues)")
        }
        self.key = key
        self.spec = spec
    }

    /// Generates a new private key of `spec` with BoringSSL's CSPRNG.
    public init(generating spec: KeyPairSpec) throws(KeyMaterialError) {
        let size: _RSA.Signing.KeySize
        switch spec {
        case .rsa2048: size = .bits2048
        case .rsa3072: size = .bits3072
        case .rsa4096: size = .bits4096
        }
        do {
            self.key = try _RSA.Encryption.PrivateKey(keySize: size)
        } catch {
            throw KeyMaterialError("generating an \(spec) key pair failed (\(error))")
        }
        self.spec = spec
    }

    /// The public key as DER `SubjectPublicKeyInfo`.
    public var publicKeyDER: Data { key.publicKey.derRepresentation }

    /// The private key as PKCS#8 DER, the form AWS KMS returns for data-key pairs. The caller
    /// owns the returned buffer and should ``wipe(_:)`` it once it has been wrapped.
    ///
    /// Built here rather than through swift-crypto's `pkcs8PEMRepresentation` (its only PKCS#8
    /// export): that is a `String`, which can never be wiped, and swift-asn1's serializer keeps
    /// copies in arrays of its own. PKCS#8 for RSA is a fixed header around the PKCS#1 key
    /// (RFC 5208 §5, RFC 8017 A.1): both buffers here are ours, and both are wiped.
    public func pkcs8DERRepresentation() throws(KeyMaterialError) -> Data {
        var pkcs1 = key.derRepresentation
        defer { Self.wipe(&pkcs1) }
        // version 0, AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
        let header: [UInt8] = [0x02, 0x01, 0x00, 0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00]
        let octetString = Self.derLength(pkcs1.count)
        let contentLength = header.count + 1 + octetString.count + pkcs1.count
        var der = Data()
        der.reserveCapacity(contentLength + 8)
        der.append(0x30)
        der.append(contentsOf: Self.derLength(contentLength))
        der.append(contentsOf: header)
        der.append(0x04)
        der.append(contentsOf: octetString)
        der.append(pkcs1)
        return der
    }

    /// A DER length: one byte below 128, else 0x80 + the count of big-endian length bytes.
    package static func derLength(_ length: Int) -> [UInt8] {
        guard length >= 0x80 else { return [UInt8(length)] }
        var bytes: [UInt8] = []
        var rest = length
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    /// Unwraps a data key wrapped with this pair's public key (RSA-OAEP-SHA256).
    /// - Parameter wrappedDataKey: the RSA ciphertext.
    public func unwrapDataKey(_ wrappedDataKey: Data) throws(KeyMaterialError) -> Data {
        guard wrappedDataKey.count == spec.bits / 8 else {
            throw KeyMaterialError(
                "the wrapped data key is \(wrappedDataKey.count) bytes, but an \(spec) ciphertext is \(spec.bits / 8) bytes"
            )
        }
        do {
            return try key.decrypt(wrappedDataKey, padding: .PKCS1_OAEP_SHA256)
        } catch {
            throw KeyMaterialError(
                "the wrapped data key does not decrypt with this key pair (RSA-OAEP-SHA256); it was wrapped with another public key or is corrupt"
            )
        }
    }

    /// Overwrites a buffer that held key material with zeros. Best effort: Swift may have
    /// copied the bytes elsewhere, but the buffer we own no longer holds them.
    public static func wipe(_ data: inout Data) {
        data.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            memset(base, 0, buffer.count)
        }
    }
}
