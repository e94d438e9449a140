import AWSKMSKeystore
import ArgumentParser
import Foundation
import KeyBroker
import KeyBrokerPlugins
import KeyBrokerPostgres
import KeyBrokerSQLite
import KeyBrokerServer
import LocalFileKeystore
import Logging
import NoneKeystore

/// Options every command that reads the configuration takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The configuration file.")
    var config = "config/keybroker.yaml"

    @Flag(name: .long, help: "Log what the broker does to stderr.")
    var verbose = false

    /// The plugins this executable ships (``BuiltInKeystores``).
    static func registry() -> KeystoreRegistry {
        do {
            return try BuiltInKeystores.registry()
        } catch {
            fatalError("built-in keystore plugins conflict: \(error)")
        }
    }

    var logger: Logger {
        var logger = Logger(label: "keybroker")
        logger.logLevel = verbose ? .info : .warning
        return logger
    }

    /// A loader with the built-in plugins and the process environment, for offline commands:
    /// it does not read files only the server needs (its TLS key), which another user may
    /// not be able to read.
    var loader: ConfigLoader {
        ConfigLoader(registry: Self.registry(), sections: KeyBrokerServer.configSections, logger: logger, purpose: .tool)
    }

    /// A loader that reads and checks everything `serve` would (`config validate`).
    var servingLoader: ConfigLoader {
        ConfigLoader(registry: Self.registry(), sections: KeyBrokerServer.configSections, logger: logger, purpose: .serve)
    }

    /// Loads and validates the configuration.
    func load() throws -> LoadedConfig {
        do {
            return try loader.load(path: config)
        } catch {
            throw CLIFailure(error)
        }
    }

    /// Loads the configuration, opens its store and the broker, and prints warnings.
    func openBroker() async throws -> Broker {
        try await openBrokerAndAudit().broker
    }

    /// The broker, and the configured audit log for key operations made from the CLI: they
    /// are recorded where the server records its own (`audit.destination`), and refused like
    /// the server's when the record cannot be written.
    func openBrokerAndAudit() async throws -> (broker: Broker, audit: AuditLog) {
        let loaded = try load()
        for warning in loaded.warnings { Terminal.error(warning.description) }
        let audit: AuditLog
        do {
            audit = try AuditLog(loaded.config.audit, logger: logger, replica: loaded.config.server.instanceId)
        } catch {
            throw CLIFailure(["error: \(error)"], exitCode: CLIFailure.operationExitCode)
        }
        let store = try await Self.openStore(loaded)
        do {
            return (try await Broker.open(loaded, store: store, logger: logger), audit)
        } catch {
            throw CLIFailure(error)
        }
    }

    /// Opens the configured store (see ``SQLiteKeyPairStore/make(for:readOnly:)`` for when a
    /// missing database is created); a failure is exit code 1 with the store's message.
    static func openStore(_ loaded: LoadedConfig, logger: Logger = Logger(label: "keybroker")) async throws -> any KeyPairStore {
        do {
            switch loaded.config.storage {
            case .sqlite:
                guard let store = try await SQLiteKeyPairStore.make(for: loaded) else { break }
                return store
            case .postgres(let settings):
                return try await PostgresKeyPairStore.open(settings, logger: logger)
            }
            throw CLIFailure(["error: this build has no store for the configured storage"], exitCode: CLIFailure.operationExitCode)
        } catch let failure as CLIFailure {
            throw failure
        } catch {
            throw CLIFailure(["error: \(error)"], exitCode: CLIFailure.operationExitCode)
        }
    }
}

/// `--org`.
struct OrganizationOption: ParsableArguments {
    @Option(
        name: .customLong("org"),
        help: ArgumentHelp("The organization id.", valueName: "org"),
        transform: { raw in
            guard let id = OrganizationID(raw) else { throw ValidationError(OrganizationID.invalidMessage(raw)) }
            return id
        }
    )
    var id: OrganizationID
}

/// `--json`.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false
}

/// The name recorded as `requestedBy` for operations run from the CLI.
var cliActor: String {
    let environment = ProcessInfo.processInfo.environment
    if let user = environment["USER"] ?? environment["LOGNAME"] { return "cli:\(user)" }
    if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return "cli:" + String(cString: name) }
    return "cli:uid-\(getuid())"
}

/// Runs a broker call, turning its failure into a ``CLIFailure``.
func attempt<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw CLIFailure(error)
    }
}
