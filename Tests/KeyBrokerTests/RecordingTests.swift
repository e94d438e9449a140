import Foundation
import KeyBroker
import LocalFileKeystore
import Testing

@testable import KeyBrokerTestSupport

@Suite("Recording envelope")
struct RecordingTests {
    let directory: TemporaryDirectory
    let org = Fixtures.org("acme")

    init() throws { directory = try TemporaryDirectory() }

    private func broker() async throws -> Broker {
        try await Fixtures.broker(Fixtures.config(), in: directory)
    }

    private func encryptor(_ pair: KeyPairRecord, segmentSize: Int = 1024) throws -> RecordingEncryptor {
        try RecordingEncryptor(
            organization: pair.organization,
            keyPairID: pair.id,
            spec: pair.spec,
            publicKeyDER: pair.publicKeyDER,
            segmentSize: segmentSize
        )
    }

    private func random(_ count: Int) -> Data { Data((0..<count).map { _ in UInt8.random(in: 0...255) }) }

    /// Encrypts `plaintext` to a file and returns its path.
    private func encryptFile(_ plaintext: Data, _ pair: KeyPairRecord, segmentSize: Int = 1024, name: String = "rec.kbr") throws -> String {
        let input = directory.path("plain-\(UUID().uuidString)")
        try plaintext.write(to: URL(fileURLWithPath: input))
        let output = directory.path(name)
        try RecordingFiles.encrypt(input, to: output, with: try encryptor(pair, segmentSize: segmentSize))
        return output
    }

    private func decryptFile(_ path: String, _ broker: Broker, to output: String? = nil) async throws -> Data {
        let output = output ?? directory.path("out-\(UUID().uuidString)")
        try await RecordingFiles.decrypt(path, to: output) { header in
            try await broker.unwrapDataKey(for: header.organization, keyPairID: header.keyPairID, wrappedDataKey: header.wrappedDataKey)
        }
        return try Data(contentsOf: URL(fileURLWithPath: output))
    }

    @Test("round trips at segment boundaries and across several MiB", arguments: [0, 1, 1023, 1024, 1025, 3 * 1024 + 5, 4 * 1024])
    func roundTrip(size: Int) async throws {
        let broker = try await broker()
        let pair = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        let plaintext = random(size)
        let path = try encryptFile(plaintext, pair)
        let sealedSegments = max(1, (size + 1023) / 1024)
        let header = try RecordingFiles.header(of: path)
        let fileSize = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(fileSize == header.encoded.count + size + 16 * sealedSegments)
        #expect(try await decryptFile(path, broker) == plaintext)
    }

    @Test("several MiB with the default 64 KiB segments, through the in-memory API in odd-sized chunks")
    func largeInMemory() async throws {
        let broker = try await broker()
        let pair = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        let plaintext = random(3 * 1024 * 1024 + 17)
        var encryptor = try RecordingEncryptor(organization: org, keyPairID: pair.id, spec: pair.spec, publicKeyDER: pair.publicKeyDER)
        var sealed = encryptor.header.encoded
        var offset = 0
        while offset < plaintext.count {
            let end = min(offset + 100_003, plaintext.count)
            sealed.append(try encryptor.update(plaintext[offset..<end]))
            offset = end
        }
        sealed.append(try encryptor.finish())
        let path = directory.path("mem.kbr")
        try sealed.write(to: URL(fileURLWithPath: path))
        #expect(try await decryptFile(path, broker) == plaintext)
    }

    @Test("a recording made before rotations and a keystore switch still decrypts")
    func survivesRotationsAndKeystoreChange() async throws {
        let broker = try await broker()
        let old = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        let plaintext = random(5000)
        let path = try encryptFile(plaintext, old)
        for _ in 0..<3 { try await broker.generateKeyPair(for: org, reason: .scheduled, requestedBy: "test") }
        let switched = try await Fixtures.broker(Fixtures.config(organizations: "{ acme: { keystore: other } }"), in: directory)
        let new = try await switched.generateKeyPair(for: org, reason: .configChange, requestedBy: "test")
        #expect(new.keystoreName == "other")
        #expect(try await decryptFile(path, switched) == plaintext)
    }

    /// Applies `change` to an encrypted file and expects decryption to fail with `expected`;
    /// no output file may appear.
    private func expectFailure(
        plaintextSize: Int = 5 * 1024 + 100,
        _ change: (inout Data, RecordingHeader) -> Void,
        expecting expected: @escaping (any Error) -> Bool,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let broker = try await broker()
        let pair = try await broker.generateKeyPair(for: org, reason: .initial, requestedBy: "test")
        let path = try encryptFile(random(plaintextSize), pair, name: "tamper-\(UUID().uuidString).kbr")
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        change(&data, try RecordingFiles.header(of: path))
        try data.write(to: URL(fileURLWithPath: path))
        let output = directory.path("tampered-\(UUID().uuidString).out")
        do {
            _ = try await decryptFile(path, broker, to: output)
            Issue.record("decryption succeeded", sourceLocation: sourceLocation)
        } catch {
            #expect(expected(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
        }
        #expect(
            !FileManager.default.fileExists(atPath: output),
            "no partial plaintext under the output name",
            sourceLocation: sourceLocation
        )
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.url.path).filter { $0.hasSuffix(".partial") }
        #expect(leftovers.isEmpty, sourceLocation: sourceLocation)
    }

    private static func segment(_ header: RecordingHeader, _ index: Int) -> Range<Int> {
        let start = header.encoded.count + index * (header.segmentSize + 16)
        return start..<(start + header.segmentSize + 16)
    }

    @Test("damaged headers: bad magic, unknown version, another organization, an unknown key pair, a damaged wrapped key or nonce")
    func headerTampering() async throws {
        try await expectFailure { data, _ in
            data[0] = UInt8(ascii: "X")
        } expecting: {
            ($0 as? RecordingError) == .badMagic
        }
        try await expectFailure { data, _ in
            data[4] = 9
        } expecting: {
            ($0 as? RecordingError) == .unknownVersion(9)
        }
        // Organization "acme" -> "acmf": the broker finds no such pair for that organization.
        try await expectFailure { data, _ in
            data[10] ^= 0x03
        } expecting: {
            ($0 as? BrokerError)?.kind == .notFound
        }
        // Key pair id: unknown pair.
        try await expectFailure { data, _ in
            data[7 + 4 + 3] ^= 0x01
        } expecting: {
            ($0 as? BrokerError)?.message.contains("has no key pair") == true
        }
        // The wrapped data key: RSA-OAEP refuses it.
        try await expectFailure { data, header in
            data[7 + 4 + 16 + 1 + 2 + 100] ^= 0x01
        } expecting: {
            ($0 as? BrokerError)?.kind == .invalidInput
        }
        // The nonce prefix: every segment fails, the first first.
        try await expectFailure { data, header in
            data[header.encoded.count - 5] ^= 0x01
        } expecting: {
            ($0 as? RecordingError) == .authenticationFailed(segment: 0)
        }
        // A file that is not a recording at all.
        try await expectFailure { data, _ in
            data = Data("hello, this is not a recording".utf8)
        } expecting: {
            ($0 as? RecordingError) == .badMagic
        }
        try await expectFailure { data, header in
            data = data.prefix(20)
        } expecting: {
            if case .truncatedHeader = $0 as? RecordingError { true } else { false }
        }
    }

    @Test("damaged bodies: a flipped bit, truncation, reordering, duplication and appending are all detected")
    func bodyTampering() async throws {
        try await expectFailure { data, header in
            data[Self.segment(header, 2).lowerBound + 7] ^= 0x40
        } expecting: {
            ($0 as? RecordingError) == .authenticationFailed(segment: 2)
        }
        // Truncated at a segment boundary: the final segment is missing.
        try await expectFailure { data, header in
            data = data.prefix(Self.segment(header, 5).lowerBound)
        } expecting: {
            ($0 as? RecordingError) == .truncated(afterSegment: 4)
        }
        try await expectFailure { data, header in
            data = data.prefix(Self.segment(header, 1).lowerBound)
        } expecting: {
            ($0 as? RecordingError) == .truncated(afterSegment: 0)
        }
        // Truncated in the middle of a segment.
        try await expectFailure { data, header in
            data = data.prefix(Self.segment(header, 3).lowerBound + 500)
        } expecting: {
            ($0 as? RecordingError) == .authenticationFailed(segment: 3)
        }
        // Only the header left.
        try await expectFailure { data, header in
            data = data.prefix(header.encoded.count)
        } expecting: {
            ($0 as? RecordingError) == .noSegments
        }
        // Two segments swapped.
        try await expectFailure { data, header in
            let (one, two) = (data[Self.segment(header, 1)], data[Self.segment(header, 2)])
            data.replaceSubrange(Self.segment(header, 1), with: two)
            data.replaceSubrange(Self.segment(header, 2), with: one)
        } expecting: {
            ($0 as? RecordingError) == .authenticationFailed(segment: 1)
        }
        // A segment duplicated.
        try await expectFailure { data, header in
            data.insert(contentsOf: data[Self.segment(header, 1)], at: Self.segment(header, 2).lowerBound)
        } expecting: {
            ($0 as? RecordingError) == .authenticationFailed(segment: 2)
        }
        // Bytes appended after the final segment.
        try await expectFailure { data, _ in
            data.append(Data(repeating: 0, count: 40))
        } expecting: {
            if case .authenticationFailed = $0 as? RecordingError { true } else { false }
        }
        // A copy of the final (full) segment appended: data after the final segment.
        try await expectFailure(plaintextSize: 4 * 1024) { data, header in
            data.append(data.suffix(header.segmentSize + 16))
        } expecting: {
            ($0 as? RecordingError) == .trailingData(afterSegment: 3)
        }
    }

    @Test("the data key in a header unwraps with OpenSSL and the exported private key (standard RSA-OAEP-SHA256)")
    func opensslUnwrapsTheDataKey() async throws {
        let openssl = try #require(ProcessRunner.which("openssl"), "openssl is not installed")
        let keystore = LocalFileKeystore(
            name: "local",
            currentKeyFile: directory.url.appendingPathComponent("m.key"),
            previousKeyFiles: [],
            createIfMissing: true
        )
        let context = EncryptionContext.organization(org)
        let generated = try await keystore.generateKeyPair(.rsa3072, context: context)
        let privateKey = try await keystore.decryptPrivateKey(generated.wrapped, context: context)
        let pem =
            "-----BEGIN PRIVATE KEY-----\n"
            + (try privateKey.pkcs8DERRepresentation()).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END PRIVATE KEY-----\n"
        let keyPath = try directory.write("private.pem", pem)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyPath)

        let encryptor = try RecordingEncryptor(organization: org, keyPairID: UUID(), spec: .rsa3072, publicKeyDER: generated.publicKeyDER)
        try encryptor.header.wrappedDataKey.write(to: directory.url.appendingPathComponent("wrapped.bin"))
        let result = try ProcessRunner.run(
            openssl,
            [
                "pkeyutl", "-decrypt", "-inkey", keyPath, "-in", directory.path("wrapped.bin"),
                "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
            ]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.count == 32)

        // With that key, a second implementation (Python's cryptography) opens segment 0.
        let plaintext = Data("a short recording".utf8)
        var writer = encryptor
        var file = writer.header.encoded
        file.append(try writer.update(plaintext))
        file.append(try writer.finish())
        try file.write(to: directory.url.appendingPathComponent("rec.kbr"))
        try result.stdout.write(to: directory.url.appendingPathComponent("data.key"))
        let script = """
            import hashlib, sys
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            data = open(sys.argv[1], 'rb').read(); key = open(sys.argv[2], 'rb').read()
            org_len = int.from_bytes(data[5:7], 'big'); pos = 7 + org_len + 16 + 1
            wrapped_len = int.from_bytes(data[pos:pos+2], 'big'); pos += 2 + wrapped_len
            prefix = data[pos:pos+7]; pos += 7 + 4
            header = data[:pos]
            nonce = prefix + (0).to_bytes(4, 'big') + b'\\x01'
            sys.stdout.write(AESGCM(key).decrypt(nonce, data[pos:], hashlib.sha256(header).digest()).decode())
            """
        let python = try ProcessRunner.run(
            "/usr/bin/env",
            ["python3", "-c", script, directory.path("rec.kbr"), directory.path("data.key")]
        )
        #expect(python.status == 0, "\(python.stderr)")
        #expect(python.stdoutText == "a short recording")
    }
}
