import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerSQLite
import KeyBrokerServer

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check configuration files.",
        subcommands: [Validate.self]
    )

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration without changing anything.",
            discussion: """
                Reports every error with file:line:column. When the database exists, also checks \
                that every keystore its key pairs need is still configured.
                """
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let loaded: LoadedConfig
            do {
                loaded = try options.servingLoader.load(path: options.config)
            } catch {
                try report(error.diagnostics, config: nil)
                throw CLIFailure([], exitCode: CLIFailure.usageExitCode)
            }
            var diagnostics = loaded.warnings
            if case .sqlite(let settings) = loaded.config.storage, FileManager.default.fileExists(atPath: settings.path.path) {
                let store = try await attempt { try SQLiteKeyPairStore(settings, readOnly: true) }
                diagnostics = try await attempt { try await Broker.referenceProblems(config: loaded.config, store: store) } + diagnostics
            }
            try report(diagnostics, config: loaded.config)
            if diagnostics.contains(where: { $0.severity == .error }) {
                throw CLIFailure([], exitCode: CLIFailure.usageExitCode)
            }
        }

        private func report(_ diagnostics: [ConfigDiagnostic], config: BrokerConfig?) throws {
            let valid = config != nil && !diagnostics.contains { $0.severity == .error }
            if output.json {
                struct Report: Encodable {
                    let file: String
                    let valid: Bool
                    let keystores: [String]
                    let organizations: [String]
                    let diagnostics: [DiagnosticView]
                }
                try Terminal.json(
                    Report(
                        file: options.config,
                        valid: valid,
                        keystores: config?.keystores.keys.sorted() ?? [],
                        organizations: config?.organizations.keys.map(\.rawValue).sorted() ?? [],
                        diagnostics: diagnostics.map(DiagnosticView.init)
                    )
                )
                return
            }
            for diagnostic in diagnostics { Terminal.error(diagnostic.description) }
            if let config, valid {
                let keystores = config.keystores.values.sorted { $0.name < $1.name }.map { "\($0.name) (\($0.type))" }
                Terminal.write(
                    "\(options.config): valid; keystores: \(keystores.joined(separator: ", ")); default keystore '\(config.defaults.keystore)', rotation \(config.defaults.rotation), \(config.defaults.keyPairSpec); \(config.organizations.count) organization(s) with their own settings; tenants may choose: \(config.tenantKeystores.isEmpty ? "nothing (no tenantKeystores)" : (["default"] + config.tenantKeystores.keys.sorted()).joined(separator: ", "))\n"
                )
            }
        }
    }
}
