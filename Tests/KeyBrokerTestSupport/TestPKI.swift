import Crypto
import Foundation
import SwiftASN1
import X509

/// A certificate authority made for one test with swift-certificates, and the certificates it
/// issues: P-256 keys, PEM files, any validity (an expired certificate is one call).
struct TestPKI {
    /// One issued certificate and its key, as PEM.
    struct Issued {
        let certificatePEM: String
        let privateKeyPEM: String
        /// The SHA-256 of its SubjectPublicKeyInfo (DER), hex: `auth.clients[].spkiSha256`.
        let spkiSha256: String
        /// Its subject in RFC 4514 form: `auth.clients[].subject`.
        let subject: String
    }

    let name: String
    private let key: P256.Signing.PrivateKey
    private let certificate: Certificate

    /// The CA's certificate, PEM: `server.tls.clientCA`, `--cacert`, `caFile:`.
    var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }

    init(name: String = "KeyBroker test CA") throws {
        self.name = name
        key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("KeyBroker tests")
            CommonName(name)
        }
        let now = Date()
        certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(365 * 86400),
            issuer: subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
    }

    /// A server certificate for 127.0.0.1, ::1 and localhost.
    func server(validFor days: Double = 90) throws -> Issued {
        try issue(
            commonName: "localhost",
            organization: nil,
            notValidBefore: Date().addingTimeInterval(min(-3600, days * 86400 - 86400)),
            notValidAfter: Date().addingTimeInterval(days * 86400),
            server: true
        )
    }

    /// A client certificate; `expired` gives one that ended an hour ago.
    func client(commonName: String, organization: String = "Acme", expired: Bool = false) throws -> Issued {
        let now = Date()
        return try issue(
            commonName: commonName,
            organization: organization,
            notValidBefore: now.addingTimeInterval(expired ? -86400 : -3600),
            notValidAfter: now.addingTimeInterval(expired ? -3600 : 86400),
            server: false
        )
    }

    private func issue(commonName: String, organization: String?, notValidBefore: Date, notValidAfter: Date, server: Bool) throws -> Issued
    {
        let leafKey = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            if let organization { OrganizationName(organization) }
            CommonName(commonName)
        }
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(leafKey.publicKey),
            notValidBefore: notValidBefore,
            notValidAfter: notValidAfter,
            issuer: certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([server ? .serverAuth : .clientAuth])
                if server {
                    SubjectAlternativeNames([
                        .dnsName("localhost"),
                        .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                        .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1]))),
                    ])
                }
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        let spki = leafKey.publicKey.derRepresentation
        return Issued(
            certificatePEM: try leaf.serializeAsPEM().pemString,
            privateKeyPEM: leafKey.pemRepresentation,
            spkiSha256: SHA256.hash(data: spki).map { String(format: "%02x", $0) }.joined(),
            subject: leaf.subject.description
        )
    }
}
