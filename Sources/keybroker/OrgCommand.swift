import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer
import NIOHTTP1

/// `keybroker org show|set|test|reset`: an organization's own key configuration, as its
/// administrator edits it through the API (edit, test, save), on the store or a server.
struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "org",
        abstract: "Show, test, set or reset an organization's own key configuration; revoke or restore the organization.",
        subcommands: [Show.self, Test.self, Set.self, Reset.self, Revoke.self, Restore.self]
    )

    /// The configuration options of `set` and `test`.
    struct ConfigurationOptions: ParsableArguments {
        @Option(help: "default, or a type under tenantKeystores: (e.g. aws-kms-symmetric).") var type: String
        @Option(name: .customLong("key-alias"), help: "The organization's own key: alias ARN or key ARN.") var keyAlias: String?
        @Option(help: "daily, weekly, monthly, yearly or never (default: defaults.rotation).") var rotation: String?
        @Option(name: .customLong("key-pair-spec"), help: "RSA_2048, RSA_3072 or RSA_4096.") var keyPairSpec: String?

        var request: KeyConfigurationRequest {
            KeyConfigurationRequest(type: type, keyAlias: keyAlias, rotation: rotation, keyPairSpec: keyPairSpec)
        }

        func configuration() throws -> TenantKeyConfiguration {
            do {
                return try request.configuration()
            } catch let error as APIError {
                throw ValidationError(error.message)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the organization's key configuration and its last error.")

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let view: KeyConfigurationView
            if let client = try remote.client() {
                view = try await client.get("/v1/orgs/\(organization.id)/key-configuration")
            } else {
                let broker = try await options.openBroker()
                let stored = try await attempt { try await broker.keyConfiguration(for: organization.id) }
                view = KeyConfigurationView(organization.id, stored: stored, broker: broker)
            }
            if output.json { return try Terminal.json(view) }
            Terminal.write(OrgCommand.text(view))
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Test a key configuration for the organization: a pair through it, test data encrypted and decrypted; saves nothing."
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var candidate: ConfigurationOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let report: TestReportView
            if let client = try remote.client() {
                report = try await client.post(
                    "/v1/orgs/\(organization.id)/key-configuration/test",
                    body: try APIJSON.encoder.encode(candidate.request)
                )
            } else {
                let configuration = try candidate.configuration()
                let (broker, audit) = try await options.openBrokerAndAudit()
                let organization = organization.id
                do {
                    try broker.validate(configuration)
                } catch {
                    throw CLIFailure(error)
                }
                do {
                    try await audit.record(.test, actor: cliActor, organization: organization, result: .pending)
                } catch {
                    throw CLIFailure(BrokerError.auditFailed(error))
                }
                let tested = try await attempt {
                    try await broker.test(organization: organization, policy: broker.policy(for: organization, trying: configuration))
                }
                await audit.note(.test, actor: cliActor, organization: organization, result: tested.passed ? .passed : .failed)
                report = TestReportView(tested)
            }
            if output.json { try Terminal.json(report) } else { Terminal.write(TestCommand.text(report)) }
            if !report.passed { throw CLIFailure([], exitCode: CLIFailure.operationExitCode) }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Test, then save the organization's key configuration with a new key pair through it.",
            discussion: "Nothing is saved unless the test passes. Older pairs keep decrypting through the keys that wrapped them."
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var candidate: ConfigurationOptions
        @Option(name: .customLong("if-match"), help: "Save only if the stored version is this one (from org show).") var ifMatch: Int?
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let configuration = try candidate.configuration()
            let view = try await OrgCommand.change(
                to: configuration,
                request: try APIJSON.encoder.encode(candidate.request),
                method: .PUT,
                organization: organization.id,
                ifMatch: ifMatch,
                options: options,
                remote: remote
            )
            try OrgCommand.print(view, output: output)
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Back to the platform's default keystore, with a new key pair from it."
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @Option(name: .customLong("if-match"), help: "Reset only if the stored version is this one.") var ifMatch: Int?
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let view = try await OrgCommand.change(
                to: .platformDefault,
                request: nil,
                method: .DELETE,
                organization: organization.id,
                ifMatch: ifMatch,
                options: options,
                remote: remote
            )
            try OrgCommand.print(view, output: output)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke the organization (kill switch): none of its private keys is used until it is restored.",
            discussion:
                "Unwraps are refused (403 organization_revoked), cached private keys are wiped and rotation stops, on every replica sharing the store within a second. Its public key is still served, so encryption goes on."
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await OrgCommand.changeRevocation(revoke: true, organization.id, options: options, remote: remote, output: output)
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift the organization's revocation.")

        @OptionGroup var options: ConfigOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var organization: OrganizationOption
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await OrgCommand.changeRevocation(revoke: false, organization.id, options: options, remote: remote, output: output)
        }
    }

    static func changeRevocation(
        revoke: Bool,
        _ organization: OrganizationID,
        options: ConfigOptions,
        remote: RemoteOptions,
        output: OutputOptions
    ) async throws {
        let view: RevocationView
        if let client = try remote.client() {
            view = try await client.post("/v1/orgs/\(organization)/\(revoke ? "revoke" : "restore")")
        } else {
            let (broker, audit) = try await options.openBrokerAndAudit()
            let event: AuditLog.Event = revoke ? .revoke : .restore
            let record: () async throws(BrokerError) -> Void = { () throws(BrokerError) in
                do {
                    try await audit.record(event, actor: cliActor, organization: organization, result: .ok, durable: true)
                } catch {
                    throw BrokerError.auditFailed(error)
                }
            }
            let changed: Bool
            do {
                changed =
                    revoke
                    ? try await broker.revoke(organization, by: cliActor, beforeCommit: record)
                    : try await broker.restore(organization, by: cliActor, beforeCommit: record)
            } catch {
                await audit.note(event, actor: cliActor, organization: organization, result: .failed, error: error)
                throw CLIFailure(error)
            }
            let revocation = try await attempt { try await broker.revocation(of: organization) }
            view = RevocationView(organization, revocation: revocation, changed: changed)
        }
        if output.json { return try Terminal.json(view) }
        let state: String
        if view.revoked {
            state =
                "revoked\(view.revokedBy.map { " by \($0)" } ?? "")\(view.revokedAt.map { " at \(ISO8601DateFormatter().string(from: $0))" } ?? "")"
        } else {
            state = "not revoked"
        }
        Terminal.write("organization \(organization): \(state)\(view.changed == false ? " (unchanged)" : "")\n")
    }

    static func change(
        to configuration: TenantKeyConfiguration,
        request: Data?,
        method: RemoteClient.Method,
        organization: OrganizationID,
        ifMatch: Int?,
        options: ConfigOptions,
        remote: RemoteOptions
    ) async throws -> KeyConfigurationSavedView {
        if let client = try remote.client() {
            return try await client.send(
                method,
                "/v1/orgs/\(organization)/key-configuration",
                body: request,
                headers: ifMatch.map { ["If-Match": "\"\($0)\""] } ?? [:]
            )
        }
        let (broker, audit) = try await options.openBrokerAndAudit()
        let old = try await attempt { try await broker.keyConfiguration(for: organization) }
        let change = TenantKeyConfiguration.change(from: old?.configuration, to: configuration)
        do {
            try await audit.record(.configure, actor: cliActor, organization: organization, result: .pending, change: change)
        } catch {
            throw CLIFailure(BrokerError.auditFailed(error))
        }
        let outcome = try await attempt {
            try await broker.setKeyConfiguration(
                configuration,
                for: organization,
                expectedVersion: ifMatch,
                by: cliActor,
                beforeCommit: audit.pendingGeneration(by: cliActor, for: organization, event: .configure, change: change)
            )
        }
        switch outcome {
        case .saved(let stored, let report, let pair):
            await audit.note(.configure, actor: cliActor, organization: organization, keyPairID: pair.id, result: .ok, change: change)
            return KeyConfigurationSavedView(
                configuration: KeyConfigurationView(organization, stored: stored, broker: broker),
                test: TestReportView(report),
                keyPair: KeyPairView(pair, current: true)
            )
        case .testFailed(let report):
            await audit.note(.configure, actor: cliActor, organization: organization, result: .failed, change: change)
            Terminal.write(TestCommand.text(TestReportView(report)))
            throw CLIFailure(["error: the test failed; nothing was saved"], exitCode: CLIFailure.operationExitCode)
        case .conflict(let version):
            throw CLIFailure(
                [
                    "error: the configuration is now version \(version), not \(ifMatch ?? 0); show it again and retry with --if-match \(version)"
                ],
                exitCode: CLIFailure.operationExitCode
            )
        case .pinnedByOperator(let file):
            throw CLIFailure(
                ["error: organization '\(organization)' is configured under 'organizations:' in \(file), which wins; change it there"],
                exitCode: CLIFailure.usageExitCode
            )
        }
    }

    static func print(_ view: KeyConfigurationSavedView, output: OutputOptions) throws {
        if output.json { return try Terminal.json(view) }
        Terminal.write(
            text(view.configuration)
                + "saved: the test passed; key pair \(view.keyPair.id) (\(view.keyPair.spec), keystore '\(view.keyPair.keystore)') is now current\n"
        )
    }

    static func text(_ view: KeyConfigurationView) -> String {
        var rows = [
            ["organization", view.organization], ["source", view.source], ["type", view.type],
            ["rotation", view.rotation], ["keyPairSpec", view.keyPairSpec], ["version", String(view.version)],
        ]
        if let alias = view.keyAlias { rows.insert(["keyAlias", alias], at: 3) }
        if let at = view.updatedAt { rows.append(["updated", "\(Terminal.timestamp(at)) by \(view.updatedBy ?? "?")"]) }
        if let error = view.lastError { rows.append(["LAST ERROR", "\(error.code): \(error.message) (\(Terminal.timestamp(error.at)))"]) }
        rows.append([
            "may choose", view.offeredTypes.isEmpty ? "nothing (the operator configures it)" : view.offeredTypes.joined(separator: ", "),
        ])
        return rows.map { "\($0[0].padding(toLength: 13, withPad: " ", startingAt: 0)) \($0[1])" }.joined(separator: "\n") + "\n"
    }
}
