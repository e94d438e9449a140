public import CoreMetrics
public import Foundation
public import Logging

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

    /// What the configuration is loaded for, which decides which files sections read.
    public enum Purpose: Sendable, Hashable {
        /// To serve, or to validate what serving would load: every file is read and checked
        /// (the server's TLS key, say).
        case serve
        /// For an offline command (`keys`, `org`, `encrypt`…), which may run as another user:
        /// files only the server needs are not read.
        case tool
    }

    /// The directory of the configuration file; relative paths in it resolve against it.
    public let baseDirectory: URL
    /// The process environment (or a test's stand-in); empty for ``Origin/api``.
    public let environment: [String: String]
    /// Where the instance should log.
    public let logger: Logger
    /// Where the settings came from.
    public let origin: Origin
    /// Where the instance reports its own metrics (a backend client's retries, say). The
    /// server passes its registry's factory; elsewhere they go nowhere.
    public let metrics: any MetricsFactory
    /// What the configuration is loaded for.
    public let purpose: Purpose

    /// Creates a context.
    public init(
        baseDirectory: URL,
        environment: [String: String],
        logger: Logger,
        origin: Origin = .configurationFile,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance,
        purpose: Purpose = .serve
    ) {
        self.purpose = purpose
        self.baseDirectory = baseDirectory
        self.environment = origin == .api ? [:] : environment
        self.logger = logger
        self.origin = origin
        // A candidate's instance lives for one test; its figures would only add label sets.
        self.metrics = origin == .api ? NOOPMetricsHandler.instance : metrics
    }

    /// Records an error when the settings came over the API and `node` is set: what it asks
    /// for is allowed in the operator's file only.
    /// - Returns: whether the node may be used.
    @discardableResult
    public func allowsFromFileOnly(_ node: ConfigNode?, because reason: String) -> Bool {
        guard origin == .api, let node else { return true }
        node.error(
            "'\(node.path)' is not allowed in a keystore sent over the API: \(reason); test such a keystore on the host with keybroker test --candidate FILE"
        )
        return false
    }

    /// Resolves a path from the configuration: absolute as written, relative against the
    /// configuration file's directory (so the result does not depend on the working directory).
    public func resolvePath(_ path: String) -> URL {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardizedFileURL }
        return baseDirectory.appendingPathComponent(path).standardizedFileURL
    }
}
