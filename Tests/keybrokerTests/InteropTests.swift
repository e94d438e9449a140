import Foundation
import KeyBroker
import Testing

@testable import KeyBrokerTestSupport

/// KeyBroker's public keys and its RSA-OAEP-SHA256 must be the standard ones, so that any
/// recording service can wrap data keys with the tools it already has.
@Suite("Interoperability with OpenSSL")
struct InteropTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    private var openssl: String? {
        ProcessRunner.which("openssl")
    }

    @Test(
        "a data key wrapped by `openssl pkeyutl` with an exported public key unwraps through the broker",
        arguments: [KeyPairSpec.rsa2048, .rsa3072]
    )
    func opensslWrapsBrokerUnwraps(spec: KeyPairSpec) async throws {
        let openssl = try #require(openssl, "openssl is not installed: scripts/test installs it (apt-get install openssl)")
        let broker = try await Fixtures.broker(
            Fixtures.config().replacingOccurrences(of: "keyPairSpec: RSA_2048", with: "keyPairSpec: \(spec)"),
            in: directory
        )
        let org = Fixtures.org("interop")
        let record = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        #expect(record.spec == spec)
        let pem = try directory.write("public.pem", try PublicKeyEncryption.pem(ofDER: record.publicKeyDER))
        let dataKey = Fixtures.dataKey()
        try dataKey.write(to: directory.url.appendingPathComponent("data.key"))

        let result = try ProcessRunner.run(
            openssl,
            [
                "pkeyutl", "-encrypt", "-pubin", "-inkey", pem, "-in", directory.path("data.key"),
                "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
            ]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.count == spec.bits / 8)
        let unwrapped = try await broker.unwrapDataKey(for: org, keyPairID: record.id, wrappedDataKey: result.stdout)
        #expect(unwrapped == dataKey)
    }

    @Test("OpenSSL reads the exported public key as an RSA SubjectPublicKeyInfo of the right size")
    func opensslReadsPublicKey() async throws {
        let openssl = try #require(openssl, "openssl is not installed")
        let broker = try await Fixtures.broker(Fixtures.config(), in: directory)
        let record = try await broker.generateKeyPair(for: Fixtures.org("interop"), reason: .initial, requestedBy: "test")
        let pem = try directory.write("public.pem", try PublicKeyEncryption.pem(ofDER: record.publicKeyDER))
        let result = try ProcessRunner.run(openssl, ["pkey", "-pubin", "-in", pem, "-noout", "-text"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText.contains("Public-Key: (2048 bit)"))
        let der = try ProcessRunner.run(openssl, ["pkey", "-pubin", "-in", pem, "-outform", "DER"])
        #expect(der.stdout == record.publicKeyDER)
    }
}
