import Foundation
public import KeyBroker

/// A keystore that does not wrap. See ``NoneKeystorePlugin``.
public struct NoneKeystore: Keystore {
    public let name: String
    public var type: String { NoneKeystorePlugin.type }

    static let magic = Data("KBNO".utf8)
    static let version: UInt8 = 1

    /// Creates an instance.
    public init(name: String) {
        self.name = name
    }

    public func generateKeyPair(_ spec: KeyPairSpec, context: EncryptionContext) async throws(KeystoreError) -> GeneratedKeyPair {
        try await generateLocally(spec) { der in
            let contextBytes = context.canonicalBytes
            var blob = Self.magic
            blob.append(Self.version)
            withUnsafeBytes(of: UInt32(contextBytes.count).bigEndian) { blob.append(contentsOf: $0) }
            blob.append(contextBytes)
            blob.append(der)
            return WrappedPrivateKey(ciphertext: blob, backendKeyReference: nil)
        }
    }

    public func decryptPrivateKey(
        _ wrapped: WrappedPrivateKey,
        context: EncryptionContext
    ) async throws(KeystoreError) -> PrivateKeyMaterial {
        let blob = wrapped.ciphertext
        let headerSize = Self.magic.count + 1 + 4
        guard blob.count > headerSize, blob.prefix(4) == Self.magic else {
            throw KeystoreError(
                .badCiphertext,
                keystore: name,
                message: "the stored key is not a 'none' keystore blob (bad magic); it was wrapped by another keystore type"
            )
        }
        let version = blob[blob.startIndex + 4]
        guard version == Self.version else {
            throw KeystoreError(
                .badCiphertext,
                keystore: name,
                message: "the stored key has format version \(version); this build reads version \(Self.version)"
            )
        }
        let lengthBytes = blob[(blob.startIndex + 5)..<(blob.startIndex + 9)]
        let length = Int(lengthBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard blob.count > headerSize + length else {
            throw KeystoreError(.badCiphertext, keystore: name, message: "the stored key is truncated")
        }
        let contextStart = blob.startIndex + headerSize
        guard blob[contextStart..<(contextStart + length)] == context.canonicalBytes else {
            throw KeystoreError(
                .badCiphertext,
                keystore: name,
                message: "the stored key belongs to another encryption context than \(context); it is another organization's key"
            )
        }
        var der = Data(blob[(contextStart + length)...])
        return try privateKey(fromUnwrapped: &der)
    }

    public func checkHealth() async -> KeystoreHealth {
        .healthy("private keys are stored unwrapped (development only)")
    }
}
