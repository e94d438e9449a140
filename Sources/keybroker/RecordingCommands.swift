import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

struct EncryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt",
        abstract: "Encrypt a recording with the organization's current public key (no keystore call).",
        discussion: "Use - for standard input or output. The output appears under its name only once complete."
    )

    @OptionGroup var options: ConfigOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var organization: OrganizationOption

    @Argument(help: "The plaintext recording, or - for standard input.") var input: String
    @Argument(help: "The encrypted output, or - for standard output.") var output: String

    func run() async throws {
        let key: PublicKeyView
        if let client = try remote.client() {
            key = try await client.get("/v1/orgs/\(organization.id)/public-key")
        } else {
            let broker = try await options.openBroker()
            key = try await attempt { try PublicKeyView(try await broker.currentKeyPair(for: organization.id)) }
        }
        guard let der = Data(base64Encoded: key.publicKeyDER), let id = UUID(uuidString: key.keyPair.id),
            let spec = KeyPairSpec(rawValue: key.keyPair.spec)
        else {
            throw CLIFailure(["error: the public key received is malformed"], exitCode: CLIFailure.operationExitCode)
        }
        do {
            let encryptor = try RecordingEncryptor(organization: organization.id, keyPairID: id, spec: spec, publicKeyDER: der)
            try RecordingFiles.encrypt(input, to: output, with: encryptor, progress: ProgressLine.make(verb: "encrypted"))
            ProgressLine.finish()
        } catch {
            ProgressLine.finish()
            throw CLIFailure(["error: \(error)"], exitCode: CLIFailure.operationExitCode)
        }
    }
}

struct DecryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt",
        abstract: "Decrypt a recording: its data key is unwrapped through the keystore that wrapped its key pair.",
        discussion: """
            Use - for standard input or output. A file output appears under its name only when the \
            whole recording authenticated; to standard output, plaintext is written as segments \
            authenticate, and a failure exits 1.
            """
    )

    @OptionGroup var options: ConfigOptions
    @OptionGroup var remote: RemoteOptions

    @Option(name: .long, help: ArgumentHelp("Refuse recordings of any other organization.", valueName: "org"))
    var org: String?

    @Argument(help: "The encrypted recording, or - for standard input.") var input: String
    @Argument(help: "The plaintext output, or - for standard output.") var output: String

    func validate() throws {
        if let org, !OrganizationID.isValid(org) {
            throw ValidationError(OrganizationID.invalidMessage(org))
        }
    }

    func run() async throws {
        let client = try remote.client()
        let local = client == nil ? try await options.openBrokerAndAudit() : nil
        let expected = org.flatMap(OrganizationID.init)
        do {
            try await RecordingFiles.decrypt(input, to: output, progress: ProgressLine.make(verb: "decrypted")) { header in
                if let expected, expected != header.organization {
                    throw RecordingError.wrongOrganization(expected: expected, found: header.organization)
                }
                if let client {
                    let response: UnwrapResponse = try await client.post(
                        "/v1/orgs/\(header.organization)/unwrap",
                        body: try JSONEncoder().encode(
                            UnwrapRequest(
                                keyPairId: header.keyPairID.uuidString.lowercased(),
                                wrappedKey: header.wrappedDataKey.base64EncodedString()
                            )
                        )
                    )
                    guard let key = Data(base64Encoded: response.dataKey) else {
                        throw RecordingError.dataKey("the server sent a malformed key")
                    }
                    return key
                }
                guard let (broker, audit) = local else { throw RecordingError.dataKey("no broker or server to unwrap the data key with") }
                let key = try await broker.unwrapDataKey(
                    for: header.organization,
                    keyPairID: header.keyPairID,
                    wrappedDataKey: header.wrappedDataKey
                )
                // As in the server: the data key is used only once its unwrap is recorded.
                do {
                    try await audit.record(
                        .unwrap,
                        actor: cliActor,
                        organization: header.organization,
                        keyPairID: header.keyPairID,
                        result: .ok
                    )
                } catch {
                    throw BrokerError.auditFailed(error)
                }
                return key
            }
            ProgressLine.finish()
        } catch {
            // Whatever is wrong with the recording or its key, the decryption failed: exit 1.
            ProgressLine.finish()
            let lines = (error as? CLIFailure)?.lines ?? CLIFailure(error).lines
            throw CLIFailure(lines.isEmpty ? ["error: \(error)"] : lines, exitCode: CLIFailure.operationExitCode)
        }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an encrypted recording's header (no secrets, no keystore call)."
    )

    @OptionGroup var output: OutputOptions
    @Argument(help: "The encrypted recording, or - for standard input.") var input: String

    func run() throws {
        let header: RecordingHeader
        do {
            header = try RecordingFiles.header(of: input)
        } catch {
            throw CLIFailure(["error: \(input): \(error)"], exitCode: CLIFailure.operationExitCode)
        }
        struct View: Encodable {
            let formatVersion: Int
            let organization: String
            let keyPairId: String
            let keyPairSpec: String
            let wrappedDataKeyBytes: Int
            let segmentSize: Int
            let headerBytes: Int
        }
        let view = View(
            formatVersion: Int(RecordingHeader.version),
            organization: header.organization.rawValue,
            keyPairId: header.keyPairID.uuidString.lowercased(),
            keyPairSpec: header.spec.rawValue,
            wrappedDataKeyBytes: header.wrappedDataKey.count,
            segmentSize: header.segmentSize,
            headerBytes: header.encoded.count
        )
        if output.json {
            try Terminal.json(view)
        } else {
            Terminal.write(
                """
                format:        KeyBroker recording v\(view.formatVersion) (AES-256-GCM segments of \(view.segmentSize) bytes)
                organization:  \(view.organization)
                key pair:      \(view.keyPairId) (\(view.keyPairSpec))
                data key:      wrapped with RSA-OAEP-SHA256 (\(view.wrappedDataKeyBytes) bytes)

                """
            )
        }
    }
}

/// Progress on standard error when it is a terminal: bytes, rate and time left.
enum ProgressLine {
    private static let start = Date()
    nonisolated(unsafe) private static var lastPrint = Date.distantPast
    nonisolated(unsafe) private static var printed = false

    static func make(verb: String) -> RecordingFiles.Progress? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        return { done, total in
            let now = Date()
            guard now.timeIntervalSince(lastPrint) >= 0.25 || done == total else { return }
            lastPrint = now
            printed = true
            let elapsed = max(now.timeIntervalSince(start), 0.001)
            let rate = Double(done) / elapsed
            var line = "\(verb) \(format(Double(done)))"
            if let total, total > 0 {
                let left = rate > 0 ? Double(total - done) / rate : 0
                line +=
                    " of \(format(Double(total))) (\(Int(Double(done) * 100 / Double(total)))%), \(format(rate))/s, \(Int(left.rounded()))s left"
            } else {
                line += ", \(format(rate))/s"
            }
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        }
    }

    static func finish() {
        if printed { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private static func format(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = bytes
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
    }
}
