import Foundation
import KeyBroker
import Testing
import _CryptoExtras

@Suite("Key material")
struct KeyMaterialTests {
    @Test("the PKCS#8 export is byte for byte what swift-crypto's PEM export holds", arguments: KeyPairSpec.allCases)
    func pkcs8MatchesSwiftCrypto(_ spec: KeyPairSpec) throws {
        let material = try PrivateKeyMaterial(generating: spec)
        let der = try material.pkcs8DERRepresentation()
        let reference = try _RSA.Encryption.PrivateKey(derRepresentation: der)
        let body = reference.pkcs8PEMRepresentation
            .split(separator: "\n")
            .filter { !$0.hasPrefix("-----") }
            .joined()
        #expect(Data(base64Encoded: body) == der)
        #expect(reference.publicKey.derRepresentation == material.publicKeyDER)
        #expect(try PrivateKeyMaterial(derRepresentation: der).publicKeyDER == material.publicKeyDER)
    }

    @Test("DER lengths: short form below 128, long form with the fewest bytes above")
    func derLengths() {
        let cases: [(Int, [UInt8])] = [
            (0, [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x81, 0x80]), (255, [0x81, 0xFF]),
            (256, [0x82, 0x01, 0x00]), (1_190, [0x82, 0x04, 0xA6]), (65_535, [0x82, 0xFF, 0xFF]), (65_536, [0x83, 0x01, 0x00, 0x00]),
        ]
        for (length, encoded) in cases {
            #expect(PrivateKeyMaterial.derLength(length) == encoded, "length \(length)")
        }
    }
}
