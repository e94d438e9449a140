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
