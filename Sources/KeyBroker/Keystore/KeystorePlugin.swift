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
    /// Where a keystore's settings came from, which decides what they may ask of the server.
    public enum Origin: Sendable, Hashable {
        /// The operator's configuration file (or a candidate file given to the CLI on the host).
        case configurationFile
        /// A candidate sent over the HTTP API by a caller. Such settings must not make the
        /// server touch anything of the caller's choosing beyond the backend call itself: no
        /// file paths (a path is a file oracle), no file creation, no endpoint or credential
        /// profile (the server's own identity would sign requests to a host the caller picked),
        /// no environment references. Each plugin refuses what it reads that would.
        case api
    }

    /// The directory of the configuration file; relative paths in it resolve against it.
    public let baseDirectory: URL
    /// The process environment (or a test's stand-in); empty for ``Origin/api``.
    public let environment: [String: String]
    /// Where the instance should log.
    public let logger: Logger
    /// Where the settings came from.
    public let origin: Origin

    /// Creates a context.
    public init(baseDirectory: URL, environment: [String: String], logger: Logger, origin: Origin = .configurationFile) {
        self.baseDirectory = baseDirectory
        self.environment = origin == .api ? [:] : environment
        self.logger = logger
        self.origin = origin
    }

    /// Records an error when the settings came over the API and `node` is set: what it asks
    /// for is allowed in the operator's file only.
    /// - Returns: whether the node may be used.
    @discardableResult
    public func allowsFromFileOnly(_ node: ConfigNode?, because reason: String) -> Bool {
        guard origin == .api, let node else { return true }
        node.error("'\(node.path)' is not allowed in a keystore sent over the API: \(reason); test such a keystore on the host with keybroker test --candidate FILE")
        return false
    }

    /// Resolves a path from the configuration: absolute as written, relative against the
    /// configuration file's directory (so the result does not depend on the working directory).
    public func resolvePath(_ path: String) -> URL {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardizedFileURL }
        return baseDirectory.appendingPathComponent(path).standardizedFileURL
    }
}
