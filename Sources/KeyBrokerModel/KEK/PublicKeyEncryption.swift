import Crypto
public import Foundation
import _CryptoExtras

/// Operations on a key pair's public half: what a recording service does with the current
/// public key, without any keystore.
public enum PublicKeyEncryption {
    /// Wraps a data key with an RSA public key (RSA-OAEP with SHA-256 and MGF1-SHA-256).
    /// - Parameters:
    ///   - dataKey: the symmetric key bytes (32 for AES-256).
    ///   - publicKeyDER: DER `SubjectPublicKeyInfo`.
    public static func wrapDataKey(_ dataKey: Data, publicKeyDER: Data) throws(KeyMaterialError) -> Data {
        let key: _RSA.Encryption.PublicKey
        do {
            key = try _RSA.Encryption.PublicKey(derRepresentation: publicKeyDER)
        } catch {
            throw KeyMaterialError("the public key is not a valid DER SubjectPublicKeyInfo RSA key (\(error))")
        }
        do {
            return try key.encrypt(dataKey, padding: .PKCS1_OAEP_SHA256)
        } catch {
            throw KeyMaterialError(
                "RSA-OAEP-SHA256 encryption of a \(dataKey.count)-byte data key failed (\(error)); at most \(key.keySizeInBits / 8 - 66) bytes fit"
            )
        }
    }

    /// The SHA-256 of a DER public key, lowercase hex.
    public static func fingerprint(ofDER der: Data) -> String {
        Data(SHA256.hash(data: der)).hexEncodedString()
    }

    /// PEM (`-----BEGIN PUBLIC KEY-----`) for a DER `SubjectPublicKeyInfo`, as OpenSSL writes it.
    /// - Throws: ``KeyMaterialError`` when the DER is not an RSA public key.
    public static func pem(ofDER der: Data) throws(KeyMaterialError) -> String {
        do {
            return try _RSA.Encryption.PublicKey(derRepresentation: der).pemRepresentation + "\n"
        } catch {
            throw KeyMaterialError("the public key is not a valid DER SubjectPublicKeyInfo RSA key (\(error))")
        }
    }
}
