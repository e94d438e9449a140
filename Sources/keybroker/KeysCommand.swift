import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage an organization's key pairs.",
        subcommands: [Generate.self, List.self, Public.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new key pair now and make it current (\"change key now\").",
            discussion: "Older pairs stay stored and keep decrypting the recordings made with them.")

        @OptionGroup var options: ConfigOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let broker = try await options.openBroker()
            let record = try await attempt {
                try await broker.generateKeyPair(for: organization.id, reason: .manual, requestedBy: cliActor)
            }
            if output.json {
                try Terminal.json(KeyPairView(record, current: true))
            } else {
                Terminal.write(
                    "generated key pair \(record.id.uuidString.lowercased()) for organization '\(record.organization)' (\(record.spec), keystore '\(record.keystoreName)'); it is now current\n")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an organization's key pairs, newest first.")

        @OptionGroup var options: ConfigOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        @Option(help: "At most this many pairs.")
        var limit = 100

        @Option(help: "Skip this many of the newest pairs.")
        var offset = 0

        func run() async throws {
            let broker = try await options.openBroker()
            let pairs = try await attempt { try await broker.history(for: organization.id, limit: limit, offset: offset) }
            if output.json {
                try Terminal.json(pairs.map { KeyPairView($0.record, current: $0.isCurrent) })
                return
            }
            guard !pairs.isEmpty else {
                Terminal.write("organization '\(organization.id)' has no key pairs; create one with: keybroker keys generate --org \(organization.id)\n")
                return
            }
            let rows = pairs.map { pair in
                let record = pair.record
                return [
                    record.id.uuidString.lowercased(), pair.isCurrent ? "yes" : "", Terminal.timestamp(record.createdAt),
                    record.reason.rawValue, record.spec.rawValue, record.keystoreName, record.backendKeyReference ?? "-",
                    record.requestedBy,
                ]
            }
            Terminal.write(Terminal.table(
                ["ID", "CURRENT", "CREATED", "REASON", "SPEC", "KEYSTORE", "BACKEND KEY", "REQUESTED BY"], rows))
        }
    }

    struct Public: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the organization's current public key (no keystore is called).")

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case pem, der
        }

        @OptionGroup var options: ConfigOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        @Option(help: "pem (SubjectPublicKeyInfo, as OpenSSL reads it) or der.")
        var format: Format = .pem

        @Option(name: [.customShort("o"), .customLong("out")], help: "Write to this file instead of stdout.")
        var outputFile: String?

        func run() async throws {
            let broker = try await options.openBroker()
            let record = try await attempt { try await broker.currentKeyPair(for: organization.id) }
            if output.json {
                struct View: Encodable {
                    let keyPair: KeyPairView
                    let publicKeyPEM: String
                }
                try Terminal.json(View(keyPair: KeyPairView(record, current: true), publicKeyPEM: PublicKeyEncryption.pem(ofDER: record.publicKeyDER)))
                return
            }
            let bytes = format == .der ? record.publicKeyDER : Data(PublicKeyEncryption.pem(ofDER: record.publicKeyDER).utf8)
            if let path = outputFile {
                do {
                    try bytes.write(to: URL(fileURLWithPath: path), options: .atomic)
                } catch {
                    throw CLIFailure(["error: cannot write '\(path)': \(error.localizedDescription)"], exitCode: CLIFailure.operationExitCode)
                }
            } else {
                FileHandle.standardOutput.write(bytes)
            }
        }
    }
}
