public import Foundation

/// The two steps every wrapping keystore shares, so that plugins handle plaintext private
/// keys the same way: generate and export for wrapping, and parse after unwrapping, with the
/// plaintext DER wiped as soon as it is used.
extension Keystore {
    /// Generates a key pair of `spec` locally and hands its PKCS#8 DER private key to `wrap`;
    /// the DER buffer is wiped afterwards (best effort).
    /// - Returns: the public key and whatever `wrap` made of the private key.
    public func generateLocally(
        _ spec: KeyPairSpec,
        wrap: (Data) async throws(KeystoreError) -> WrappedPrivateKey
    ) async throws(KeystoreError) -> GeneratedKeyPair {
        let material: PrivateKeyMaterial
        var der: Data
        do {
            // Up to a second of CPU: off the cooperative pool, so probes and other requests go on.
            material = try await BlockingWork.cpu { () throws(KeyMaterialError) in try PrivateKeyMaterial(generating: spec) }
            der = try material.pkcs8DERRepresentation()
        } catch {
            throw KeystoreError(.internalFailure, keystore: name, message: error.description)
        }
        defer { PrivateKeyMaterial.wipe(&der) }
        return GeneratedKeyPair(publicKeyDER: material.publicKeyDER, wrapped: try await wrap(der))
    }

    /// Parses an unwrapped DER private key and wipes the buffer (best effort).
    public func privateKey(fromUnwrapped der: inout Data) throws(KeystoreError) -> PrivateKeyMaterial {
        defer { PrivateKeyMaterial.wipe(&der) }
        do {
            return try PrivateKeyMaterial(derRepresentation: der)
        } catch {
            throw KeystoreError(.badCiphertext, keystore: name, message: error.description)
        }
    }
}
