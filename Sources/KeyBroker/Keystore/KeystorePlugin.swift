import Foundation
import Logging

/// A keystore backend type that can build named instances from configuration.
///
/// Adding a backend means a folder under `Plugins/` with a type conforming to this
/// protocol, and one `register` line where the executable builds its registry.
public protocol KeystorePlugin: Sendable {
    /// The `type:` value that selects this plugin (`aws-kms-symmetric`).
    static var type: String { get }

    /// Whether instances keep private keys unwrapped (then `config validate` warns about
    /// every organization that uses one).
    static var storesPlaintextPrivateKeys: Bool { get }

    /// Builds an instance from its settings.
    ///
    /// Read every supported key through `settings`, even optional ones: keys that were
    /// never read are reported as unknown. Record problems on the settings (they carry
    /// `file:line:column`) rather than throwing, so that all of them reach the operator
    /// at once. Do no I/O here: `config validate` builds keystores too, and must change
    /// nothing.
    /// - Parameters:
    ///   - name: the instance name (`keystores.<name>`).
    ///   - settings: the instance's keys, without `type`.
    ///   - context: what the plugin may need from its surroundings.
    /// - Returns: the instance, or `nil` when `settings` recorded an error.
    static func make(name: String, settings: ConfigMapping, context: PluginContext) -> (any Keystore)?
}

extension KeystorePlugin {
    public static var storesPlaintextPrivateKeys: Bool { false }
}

/// What a plugin may use from its surroundings when it builds an instance.
public struct PluginContext: Sendable {
    /// The directory of the configuration file; relative paths in it resolve against it.
    public let baseDirectory: URL
    /// The process environment (or a test's stand-in).
    public let environment: [String: String]
    /// Where the instance should log.
    public let logger: Logger

    /// Creates a context.
    public init(baseDirectory: URL, environment: [String: String], logger: Logger) {
        self.baseDirectory = baseDirectory
        self.environment = environment
        self.logger = logger
    }

    /// Resolves a path from the configuration: absolute as written, relative against the
    /// configuration file's directory (so the result does not depend on the working directory).
    public func resolvePath(_ path: String) -> URL {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardizedFileURL }
        return baseDirectory.appendingPathComponent(path).standardizedFileURL
    }
}
