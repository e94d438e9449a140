import ArgumentParser
import Foundation
import KeyBroker
import NIOCore
import NIOPosix

/// The `keybroker` command line.
///
/// Exit codes: 0 success, 1 the operation failed, 2 usage or configuration error.
@main
struct KeyBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keybroker",
        abstract: "Generates, rotates and guards the key-encryption key pairs of every organization.",
        subcommands: [
            ServeCommand.self, ConfigCommand.self, KeysCommand.self, TestCommand.self, StatusCommand.self, OrgsCommand.self,
            OrgCommand.self,
            AWSCommand.self,
            TokenCommand.self, EncryptCommand.self, DecryptCommand.self, InspectCommand.self,
        ]
    )

    /// Runs a command, mapping every failure to one line on stderr and a documented exit code.
    static func main() async {
        // Swift concurrency's jobs run on NIO's event loops instead of a pool of their own, so
        // that a request is parsed, handled and answered on one thread instead of hopping
        // between the two pools (measured: docs/performance.md). It must happen before any
        // task is enqueued, which is why it is the first statement. Blocking work never runs
        // on either pool (`BlockingWork`), so the event loops stay free for I/O.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let code: Int32
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            code = 0
        } catch let error as CLIFailure {
            for line in error.lines { Terminal.error(line) }
            code = error.exitCode
        } catch {
            let exitCode = Self.exitCode(for: error)
            if exitCode == .success {
                print(Self.fullMessage(for: error))
                code = 0
            } else {
                let message = Self.fullMessage(for: error)
                FileHandle.standardError.write(Data((message.hasSuffix("\n") ? message : message + "\n").utf8))
                code = exitCode == .validationFailure ? CLIFailure.usageExitCode : exitCode.rawValue
            }
        }
        Foundation.exit(code)
    }
}

/// A failure already phrased for the operator.
struct CLIFailure: Error {
    static let operationExitCode: Int32 = 1
    static let usageExitCode: Int32 = 2

    let lines: [String]
    let exitCode: Int32

    init(_ lines: [String], exitCode: Int32) {
        self.lines = lines
        self.exitCode = exitCode
    }

    /// Maps any error from the core to its line(s) and exit code.
    init(_ error: any Error) {
        switch error {
        case let error as CLIFailure:
            self = error
        case let error as ConfigError:
            self.init(error.diagnostics.map(\.description), exitCode: Self.usageExitCode)
        case let error as BrokerError:
            let code = error.kind == .invalidInput ? Self.usageExitCode : Self.operationExitCode
            self.init(["error: \(error.message)"], exitCode: code)
        default:
            self.init(["error: \(error)"], exitCode: Self.operationExitCode)
        }
    }
}
