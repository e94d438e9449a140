import AWSKMSKeystore
import ArgumentParser
import Foundation
import KeyBroker

struct AWSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aws",
        abstract: "Helpers for aws-kms-symmetric keystores.",
        subcommands: [KeyPolicy.self]
    )

    struct KeyPolicy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "key-policy",
            abstract: "Print the key-policy statements that let KeyBroker use a KMS key for exactly its organizations.",
            discussion: """
                Grants kms:DescribeKey, and the generation mode's actions only under the condition \
                kms:EncryptionContext:<contextKey> = one of the organizations. Without --org, the \
                organizations configured to use the keystore are listed.
                """
        )

        @OptionGroup var options: ConfigOptions

        @Option(help: "The aws-kms-symmetric keystore, by name.")
        var keystore: String

        @Option(help: "The AWS account KeyBroker runs in; its root is the principal unless --principal is given.")
        var account: String?

        @Option(help: "The exact IAM principal ARN KeyBroker runs as (a role), instead of the account root.")
        var principal: String?

        @Option(name: .customLong("org"), help: "An organization the key may serve (repeatable).")
        var organizations: [String] = []

        func validate() throws {
            switch (account, principal) {
            case (nil, nil):
                throw ValidationError("give --account ACCOUNT_ID (KeyBroker's account) or --principal ARN (its role)")
            case (let account?, _) where !(account.count == 12 && account.allSatisfy({ $0.isASCII && $0.isNumber })):
                throw ValidationError("--account must be a 12-digit AWS account id, found '\(account)'")
            case (_, let principal?) where !(principal.hasPrefix("arn:aws") && principal.contains(":iam::")):
                throw ValidationError(
                    "--principal must be an IAM ARN such as arn:aws:iam::111122223333:role/keybroker, found '\(principal)'"
                )
            default:
                break
            }
            if let bad = organizations.first(where: { !OrganizationID.isValid($0) }) {
                throw ValidationError(OrganizationID.invalidMessage(bad))
            }
        }

        func run() async throws {
            let loaded = try options.load()
            guard let settings = loaded.config.keystores[keystore] else {
                throw CLIFailure(
                    [
                        "error: keystore '\(keystore)' is not configured; configured: \(loaded.config.keystores.keys.sorted().joined(separator: ", "))"
                    ],
                    exitCode: CLIFailure.usageExitCode
                )
            }
            guard let kms = loaded.keystores[keystore] as? AWSKMSKeystore else {
                throw CLIFailure(
                    ["error: keystore '\(keystore)' is of type \(settings.type), not aws-kms-symmetric"],
                    exitCode: CLIFailure.usageExitCode
                )
            }
            var organizations = self.organizations.compactMap(OrganizationID.init)
            if organizations.isEmpty {
                organizations = loaded.config.organizations.keys.filter { loaded.config.policy(for: $0).keystore == keystore }.sorted()
            }
            guard !organizations.isEmpty else {
                throw CLIFailure(
                    ["error: no organization is configured to use keystore '\(keystore)'; name them with --org ORG"],
                    exitCode: CLIFailure.usageExitCode
                )
            }
            Terminal.error(
                "add these statements to the key policy of the KMS key behind \(kms.key) (generation: \(kms.generation.rawValue)):"
            )
            Terminal.write(
                AWSKMSKeyPolicy.statements(
                    principal: principal ?? "arn:aws:iam::\(account ?? ""):root",
                    generation: kms.generation,
                    contextKey: settings.contextKey,
                    organizations: organizations
                ) + "\n"
            )
        }
    }
}
