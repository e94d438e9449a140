import ArgumentParser
import Foundation
import KeyBroker

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
