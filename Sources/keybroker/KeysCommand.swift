import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage an organization's key pairs.",
        subcommands: [Generate.self, List.self, Public.self]
    )

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new key pair now and make it current (\"change key now\").",
            discussion: "Older pairs stay stored and keep decrypting the recordings made with them."
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let view: KeyPairView
            if let client = try remote.client() {
                view = try await client.post("/v1/orgs/\(organization.id)/keypairs")
            } else {
                let (broker, audit) = try await options.openBrokerAndAudit()
                let organization = organization.id
                let record = try await attempt {
                    try await broker.generateKeyPair(
                        for: organization,
                        reason: .manual,
                        requestedBy: cliActor,
                        beforeCommit: audit.pendingGeneration(by: cliActor, for: organization)
                    )
                }
                await audit.note(.generate, actor: cliActor, organization: organization, keyPairID: record.id, result: .ok)
                view = KeyPairView(record, current: true)
            }
            if output.json {
                try Terminal.json(view)
            } else {
                Terminal.write(
                    "generated key pair \(view.id) for organization '\(view.organization)' (\(view.spec), keystore '\(view.keystore)'); it is now current\n"
                )
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an organization's key pairs, newest first.")

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        @Option(help: "At most this many pairs.")
        var limit = 100

        @Option(help: "Skip this many of the newest pairs.")
        var offset = 0

        func run() async throws {
            let pairs: [KeyPairView]
            if let client = try remote.client() {
                let page: KeyPairPage = try await client.get("/v1/orgs/\(organization.id)/keypairs?limit=\(limit)&offset=\(offset)")
                pairs = page.items
            } else {
                let broker = try await options.openBroker()
                pairs = try await attempt { try await broker.history(for: organization.id, limit: limit, offset: offset) }
                    .map { KeyPairView($0.record, current: $0.isCurrent) }
            }
            if output.json {
                try Terminal.json(pairs)
                return
            }
            guard !pairs.isEmpty else {
                Terminal.write(
                    "organization '\(organization.id)' has no key pairs; create one with: keybroker keys generate --org \(organization.id)\n"
                )
                return
            }
            let rows = pairs.map { pair in
                [
                    pair.id, pair.current ? "yes" : "", Terminal.timestamp(pair.createdAt), pair.reason, pair.spec, pair.keystore,
                    pair.backendKeyReference ?? "-", pair.requestedBy,
                ]
            }
            Terminal.write(
                Terminal.table(
                    ["ID", "CURRENT", "CREATED", "REASON", "SPEC", "KEYSTORE", "BACKEND KEY", "REQUESTED BY"],
                    rows
                )
            )
        }
    }

    struct Public: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the organization's current public key (no keystore is called)."
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case pem, der
        }

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        @Option(help: "pem (SubjectPublicKeyInfo, as OpenSSL reads it) or der.")
        var format: Format = .pem

        @Option(name: [.customShort("o"), .customLong("out")], help: "Write to this file instead of stdout.")
        var outputFile: String?

        func run() async throws {
            let view: PublicKeyView
            if let client = try remote.client() {
                view = try await client.get("/v1/orgs/\(organization.id)/public-key")
            } else {
                let broker = try await options.openBroker()
                view = try await attempt { try PublicKeyView(try await broker.currentKeyPair(for: organization.id)) }
            }
            if output.json {
                try Terminal.json(view)
                return
            }
            let bytes = format == .der ? Data(base64Encoded: view.publicKeyDER) ?? Data() : Data(view.publicKeyPEM.utf8)
            if let path = outputFile {
                do {
                    try bytes.write(to: URL(fileURLWithPath: path), options: .atomic)
                } catch {
                    throw CLIFailure(
                        ["error: cannot write '\(path)': \(error.localizedDescription)"],
                        exitCode: CLIFailure.operationExitCode
                    )
                }
            } else {
                FileHandle.standardOutput.write(bytes)
            }
        }
    }
}
