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
            """
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        var logger = Logger(label: "keybroker")
        logger.logLevel = options.verbose ? .debug : .info
        let configPath = options.config
        let registry = ConfigOptions.registry()
        let environment = ProcessInfo.processInfo.environment
        // One set of metrics for the server and the keystores it loads (their KMS clients'
        // retries and breakers), at start and on every reload.
        let metrics = ServerMetrics()
        let loader = ConfigLoader(
            registry: registry,
            sections: KeyBrokerServer.configSections,
            environment: environment,
            logger: logger,
            metrics: metrics.factory
        )
        let loaded: LoadedConfig
        do {
            loaded = try loader.load(path: configPath)
        } catch {
            throw CLIFailure(error)
        }
        for warning in loaded.warnings { Terminal.error(warning.description) }
        // Candidates sent over the API never see the server's environment.
        let candidateLoader = ConfigLoader(registry: registry, environment: [:], logger: logger)
        let store = try await ConfigOptions.openStore(loaded)
        let server: KeyBrokerServer
        do {
            server = try await KeyBrokerServer(
                loaded: loaded,
                source: { () throws(ConfigError) in try loader.load(path: configPath) },
                loadCandidate: { text throws(ConfigError) in
                    try candidateLoader.loadCandidate(text: text, field: "keystore", source: "request body", relativeTo: configPath)
                },
                store: store,
                metrics: metrics,
                logger: logger
            )
        } catch {
            throw CLIFailure(error)
        }
        let host = loaded.config.server.host
        try await server.run { port in
            Terminal.error(
                "listening on \(loaded.config.server.tls == nil ? "http" : "https")://\(host.contains(":") ? "[\(host)]" : host):\(port) (config \(configPath))"
            )
        }
    }
}
