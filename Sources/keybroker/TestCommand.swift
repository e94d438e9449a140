import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer
import Yams

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Test a keystore end to end for an organization, saving nothing.",
        discussion: """
            Generates a key pair through the keystore, encrypts test data with its public key, \
            decrypts the private key through the keystore, decrypts the test data, compares, and \
            checks that the keystore refuses another organization's context. Exits 1 when a step fails.
            """
    )

    @OptionGroup var options: ConfigOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var organization: OrganizationOption
    @OptionGroup var output: OutputOptions

    @Option(
        help: ArgumentHelp(
            "Test this keystore configuration instead of the organization's: a YAML file holding one keystore entry as it would stand under 'keystores:'.",
            valueName: "file"
        )
    )
    var candidate: String?

    func run() async throws {
        let report: TestReportView
        if let client = try remote.client() {
            var body: Data?
            if let candidate {
                body = try candidateJSON(candidate)
            }
            report = try await client.post("/v1/orgs/\(organization.id)/test", body: body)
        } else {
            let (broker, audit) = try await options.openBrokerAndAudit()
            var candidateKeystore: (settings: KeystoreSettings, keystore: any Keystore)?
            if let candidate {
                do {
                    candidateKeystore = try options.loader.loadCandidate(path: candidate)
                } catch {
                    throw CLIFailure(error)
                }
            }
            do {
                try await audit.record(.test, actor: cliActor, organization: organization.id, result: .pending)
            } catch {
                throw CLIFailure(BrokerError.auditFailed(error))
            }
            let result = try await attempt { try await broker.test(organization: organization.id, candidate: candidateKeystore) }
            await audit.note(.test, actor: cliActor, organization: organization.id, result: result.passed ? .passed : .failed)
            report = TestReportView(result)
        }
        if output.json {
            try Terminal.json(report)
        } else {
            Terminal.write(Self.text(report))
        }
        if !report.passed { throw CLIFailure([], exitCode: CLIFailure.operationExitCode) }
    }

    /// A candidate YAML file as the JSON the server's test endpoint takes.
    private func candidateJSON(_ path: String) throws -> Data {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let object = try? Yams.load(yaml: text) as? [String: Any]
        else {
            throw CLIFailure(
                ["error: '\(path)' is not a readable YAML mapping of one keystore's settings"],
                exitCode: CLIFailure.usageExitCode
            )
        }
        // YAML can hold what JSON cannot (dates, binary, NaN): refuse it rather than hand it on.
        let body: [String: Any] = ["keystore": object]
        guard JSONSerialization.isValidJSONObject(body), let data = try? JSONSerialization.data(withJSONObject: body) else {
            throw CLIFailure(
                ["error: '\(path)' holds values that have no JSON form (a date, binary data, NaN); write them as strings"],
                exitCode: CLIFailure.usageExitCode
            )
        }
        return data
    }

    static func text(_ report: TestReportView) -> String {
        var out =
            "testing keystore '\(report.keystore)' (\(report.keystoreType)) for organization '\(report.organization)' with \(report.spec); nothing is saved\n"
        let rows = report.steps.map { step in
            [
                step.name, step.outcome.uppercased(), step.outcome == "skipped" ? "-" : String(format: "%.1f ms", step.durationMs),
                [step.detail, step.backendError?.hint.map { "hint: \($0)" }].compactMap { $0 }.joined(separator: "; "),
            ]
        }
        out += Terminal.table(["STEP", "RESULT", "TIME", "DETAIL"], rows)
        out += report.passed ? "PASSED: the keystore works for this organization\n" : "FAILED: see the failing step above\n"
        return out
    }
}
