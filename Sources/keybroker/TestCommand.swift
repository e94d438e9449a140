import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Test a keystore end to end for an organization, saving nothing.",
        discussion: """
            Generates a key pair through the keystore, encrypts test data with its public key, \
            decrypts the private key through the keystore, decrypts the test data, compares, and \
            checks that the keystore refuses another organization's context. Exits 1 when a step fails.
            """)

    @OptionGroup var options: ConfigOptions
    @OptionGroup var organization: OrganizationOption
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp(
        "Test this keystore configuration instead of the organization's: a YAML file holding one keystore entry as it would stand under 'keystores:'.",
        valueName: "file"))
    var candidate: String?

    func run() async throws {
        let broker = try await options.openBroker()
        var candidateKeystore: (settings: KeystoreSettings, keystore: any Keystore)?
        if let candidate {
            do {
                candidateKeystore = try ConfigLoader(registry: ConfigOptions.registry(), logger: options.logger).loadCandidate(path: candidate)
            } catch {
                throw CLIFailure(error)
            }
        }
        let report = try await attempt { try await broker.test(organization: organization.id, candidate: candidateKeystore) }
        if output.json {
            try Terminal.json(TestReportView(report))
        } else {
            Terminal.write(text(report))
        }
        if !report.passed { throw CLIFailure([], exitCode: CLIFailure.operationExitCode) }
    }

    private func text(_ report: KeystoreTestReport) -> String {
        var out = "testing keystore '\(report.keystore)' (\(report.keystoreType)) for organization '\(report.organization)' with \(report.spec); nothing is saved\n"
        let rows = report.steps.map { step in
            [step.name, step.outcome.rawValue.uppercased(), step.outcome == .skipped ? "-" : Terminal.milliseconds(step.duration), step.detail ?? ""]
        }
        out += Terminal.table(["STEP", "RESULT", "TIME", "DETAIL"], rows)
        out += report.passed ? "PASSED: the keystore works for this organization\n" : "FAILED: see the failing step above\n"
        return out
    }
}

