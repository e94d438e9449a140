import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

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
