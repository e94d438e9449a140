import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerServer
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP server: probes, admin and data API, rotation scheduler, metrics.",
        discussion: """
            Stops gracefully on SIGTERM or SIGINT; reloads the configuration on SIGHUP (an invalid \
            configuration is refused and the running one kept). Listens on server.listen.
            """)

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        var logger = Logger(label: "keybroker")
        logger.logLevel = options.verbose ? .debug : .info
        let loaded = try options.load()
        for warning in loaded.warnings { Terminal.error(warning.description) }
        let configPath = options.config
        let registry = ConfigOptions.registry()
        let environment = ProcessInfo.processInfo.environment
        let loader = ConfigLoader(registry: registry, sections: KeyBrokerServer.configSections, environment: environment, logger: logger)
        // Candidates sent over the API never see the server's environment.
        let candidateLoader = ConfigLoader(registry: registry, environment: [:], logger: logger)
        let store = try await ConfigOptions.openStore(loaded)
        let server: KeyBrokerServer
        do {
            server = try await KeyBrokerServer(
                loaded: loaded,
                source: { () throws(ConfigError) in try loader.load(path: configPath) },
                loadCandidate: { text throws(ConfigError) in
                    try candidateLoader.loadCandidate(text: text, source: "request body", relativeTo: configPath)
                },
                store: store, logger: logger)
        } catch {
            throw CLIFailure(error)
        }
        let host = loaded.config.server.host
        try await server.run { port in
            Terminal.error("listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port) (config \(configPath))")
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "API tokens.", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new random API token once, and the line to add under auth.tokens.",
            discussion: "Only the token's SHA-256 goes into the configuration; the token itself is shown once and stored nowhere.")

        @Option(help: "A name for audit logs (e.g. recorder-eu).")
        var name: String

        @Option(name: .customLong("permission"), help: "encryption-key:view, encryption-key:edit, recording:encrypt or recording:decrypt (repeatable).")
        var permissions: [String]

        @Option(name: .customLong("org"), help: "An organization the token may act for (repeatable), or * for all.")
        var organizations: [String]

        func validate() throws {
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw ValidationError("--name must be letters, digits, '-', '_' or '.'")
            }
            for permission in permissions where Permission(rawValue: permission) == nil {
                throw ValidationError("unknown permission '\(permission)'; allowed: \(Permission.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard !permissions.isEmpty else { throw ValidationError("give at least one --permission") }
            guard !organizations.isEmpty else { throw ValidationError("give at least one --org (or --org '*' for all)") }
            if organizations.contains("*"), organizations.count > 1 { throw ValidationError("--org '*' stands alone") }
            for org in organizations where org != "*" && !OrganizationID.isValid(org) {
                throw ValidationError(OrganizationID.invalidMessage(org))
            }
        }

        func run() throws {
            let (token, hash) = TokenAuthenticator.newToken()
            let orgs = organizations.map { $0 == "*" ? "\"*\"" : $0 }.joined(separator: ", ")
            Terminal.write("""
                token (shown once; give it to the client, store it in a secret manager):
                  \(token)
                add under auth.tokens in the configuration, then reload (kill -HUP or POST /v1/admin/reload):
                  - { name: \(name), sha256: \(hash), permissions: [\(permissions.joined(separator: ", "))], orgs: [\(orgs)] }

                """)
        }
    }
}
