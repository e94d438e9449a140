public import CoreMetrics
public import Foundation
public import Logging
import Yams

/// Reads YAML configuration files into a ``LoadedConfig``, reporting every problem at once
/// with `file:line:column`.
public struct ConfigLoader: Sendable {
    /// The plugins that keystore entries may name.
    public let registry: KeystoreRegistry
    /// The top-level sections other layers read (the server's), besides the core's.
    public let sections: [any ConfigSection.Type]
    /// The variables `${VAR}` reads.
    public let environment: [String: String]
    /// Passed on to keystore instances.
    public let logger: Logger
    /// Passed on to keystore instances, for their own metrics.
    public let metrics: any MetricsFactory
    /// What configurations are loaded for (``PluginContext/Purpose``).
    public let purpose: PluginContext.Purpose

    /// Creates a loader.
    public init(
        registry: KeystoreRegistry,
        sections: [any ConfigSection.Type] = [],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "keybroker.config"),
        metrics: any MetricsFactory = NOOPMetricsHandler.instance,
        purpose: PluginContext.Purpose = .serve
    ) {
        self.purpose = purpose
        self.registry = registry
        self.sections = sections
        self.environment = environment
        self.logger = logger
        self.metrics = metrics
    }

    /// Loads and validates a configuration file. Does no I/O beyond reading the file:
    /// keystores open their backends on first use.
    public func load(path: String) throws(ConfigError) -> LoadedConfig {
        let (root, diagnostics) = try parse(path: path)
        guard let mapping = root.mapping() else { throw ConfigError(diagnostics.sorted) }
        let reader = SectionReader(
            registry: registry,
            context: pluginContext(for: path, origin: .configurationFile),
            diagnostics: diagnostics
        )
        let result = reader.read(root: mapping, source: path, sections: sections)
        guard diagnostics.errorCount == 0, let (config, keystores) = result else {
            throw ConfigError(diagnostics.sorted)
        }
        let loader = self
        let tenantKeystores = TenantKeystores { template, values throws(ConfigError) in
            try loader.tenantKeystore(template, values: values, relativeTo: path)
        }
        return LoadedConfig(config: config, keystores: keystores, warnings: diagnostics.sorted, tenantKeystores: tenantKeystores)
    }

    /// Builds a tenant's keystore: the template as the operator wrote it (its `${…}` read
    /// from the environment, as in the file), with the tenant's own `values` added.
    /// - Throws: ``ConfigError`` whose findings name the tenant's keys (`keyAlias`).
    public func tenantKeystore(
        _ template: TenantKeystoreTemplate,
        values: [String: String],
        relativeTo configPath: String
    ) throws(ConfigError) -> any Keystore {
        let parsed: Yams.Node?
        do {
            parsed = try Yams.compose(yaml: template.yaml)
        } catch {
            throw ConfigError(at: template.location, "the tenantKeystores.\(template.type) template cannot be read back: \(error)")
        }
        guard let parsed, case .mapping(var mapping) = parsed else {
            throw ConfigError(at: template.location, "the tenantKeystores.\(template.type) template is not a mapping")
        }
        mapping[Yams.Node("type")] = Yams.Node(template.type)
        for (key, value) in values where template.tenantKeys.contains(key) {
            // The operator's `${VAR}` in the template are read from the environment; a
            // tenant's value never is: `$$` is a literal `$`, so `${AWS_SECRET_ACCESS_KEY}` in
            // a keyAlias stays that text (and is refused as no ARN) instead of being resolved,
            // and the answer does not even say whether such a variable is set.
            mapping[Yams.Node(key)] = Yams.Node(value.replacingOccurrences(of: "$", with: "$$"), Tag(.str))
        }
        let diagnostics = ConfigDiagnostics()
        let root = ConfigNode(
            node: .mapping(mapping),
            file: "tenant settings",
            path: "",
            environment: environment,
            diagnostics: diagnostics
        )
        let reader = SectionReader(
            registry: registry,
            context: pluginContext(for: configPath, origin: .configurationFile),
            diagnostics: diagnostics
        )
        guard let keystoreMapping = root.mapping(),
            let built = reader.keystore(name: template.instanceName, mapping: keystoreMapping),
            diagnostics.errorCount == 0
        else {
            throw ConfigError(diagnostics.sorted)
        }
        return built.keystore
    }

    /// Loads a candidate keystore for `keybroker test --candidate`: a file holding one
    /// mapping as it would stand under `keystores:` (with an optional `name:`).
    public func loadCandidate(path: String) throws(ConfigError) -> (settings: KeystoreSettings, keystore: any Keystore) {
        let (root, diagnostics) = try parse(path: path)
        return try candidate(root: root, diagnostics: diagnostics, path: path, origin: .configurationFile)
    }

    /// Loads a candidate keystore from text (JSON is YAML), as sent to `POST /v1/orgs/{org}/test`.
    /// Its plugin sees ``PluginContext/Origin/api`` and refuses what a caller may not ask of
    /// the server; `${…}` references are refused.
    /// - Parameters:
    ///   - text: one keystore mapping, or a mapping that holds it under `field`.
    ///   - field: the key the keystore is under (`keystore` in a test's body), or `nil` when
    ///     `text` is the keystore itself. Messages then point into `text` as sent.
    ///   - source: a name for the text in messages (`request body`).
    ///   - relativeTo: the configuration file whose directory relative paths resolve against.
    public func loadCandidate(
        text: String,
        field: String? = nil,
        source: String,
        relativeTo configPath: String
    ) throws(ConfigError) -> (settings: KeystoreSettings, keystore: any Keystore) {
        var (root, diagnostics) = try parse(text: text, file: source, environment: nil)
        if let field {
            guard let wrapper = root.mapping() else { throw ConfigError(diagnostics.sorted) }
            defer { wrapper.reportUnknownKeys() }
            guard let keystore = wrapper.required(field, example: "{ type: aws-kms-symmetric, … }") else {
                throw ConfigError(diagnostics.sorted)
            }
            root = keystore
        }
        return try candidate(root: root, diagnostics: diagnostics, path: configPath, origin: .api)
    }

    private func candidate(
        root: ConfigNode,
        diagnostics: ConfigDiagnostics,
        path: String,
        origin: PluginContext.Origin
    ) throws(ConfigError) -> (settings: KeystoreSettings, keystore: any Keystore) {
        guard let mapping = root.mapping() else { throw ConfigError(diagnostics.sorted) }
        var name = "candidate"
        if let nameNode = mapping["name"], let value = nameNode.nonEmptyString() {
            if OrganizationID.isValid(value) {
                name = value
            } else {
                nameNode.error("keystore name '\(ConfigNode.printable(value))' is not allowed; allowed: \(OrganizationID.allowedForm)")
            }
        }
        let reader = SectionReader(registry: registry, context: pluginContext(for: path, origin: origin), diagnostics: diagnostics)
        let result = reader.keystore(name: name, mapping: mapping)
        guard diagnostics.errorCount == 0, let result else { throw ConfigError(diagnostics.sorted) }
        return result
    }

    private func pluginContext(for path: String, origin: PluginContext.Origin) -> PluginContext {
        let base = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
        return PluginContext(
            baseDirectory: base,
            environment: environment,
            logger: logger,
            origin: origin,
            metrics: metrics,
            purpose: purpose
        )
    }

    private func parse(path: String) throws(ConfigError) -> (ConfigNode, ConfigDiagnostics) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read as UTF-8 text" : "does not exist"
            throw ConfigError(
                at: nil,
                "configuration file '\(path)' \(reason); pass --config PATH (the embedded default is config/keybroker.yaml)"
            )
        }
        return try parse(text: text, file: path, environment: environment)
    }

    private func parse(
        text: String,
        file path: String,
        environment: [String: String]?
    ) throws(ConfigError) -> (ConfigNode, ConfigDiagnostics) {
        let node: Yams.Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError([Self.diagnostic(for: error, file: path)])
        }
        guard let node else {
            throw ConfigError(at: ConfigLocation(file: path, line: 1, column: 1), "the configuration file is empty")
        }
        let diagnostics = ConfigDiagnostics()
        return (ConfigNode(node: node, file: path, path: "", environment: environment, diagnostics: diagnostics), diagnostics)
    }

    static func diagnostic(for error: any Error, file: String) -> ConfigDiagnostic {
        guard let yamlError = error as? YamlError else {
            return ConfigDiagnostic(.error, at: ConfigLocation(file: file, line: 1, column: 1), "invalid YAML: \(error)")
        }
        func at(_ mark: Mark) -> ConfigLocation { ConfigLocation(file: file, line: mark.line, column: mark.column) }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text) at \($0.mark))" } ?? ""
            return ConfigDiagnostic(.error, at: at(mark), "invalid YAML: \(problem)\(detail)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigDiagnostic(
                .error,
                at: at(context.mark),
                "duplicate key '\(duplicates.first ?? "?")' in one mapping; each key may appear once"
            )
        default:
            return ConfigDiagnostic(.error, at: ConfigLocation(file: file, line: 1, column: 1), "invalid YAML: \(yamlError)")
        }
    }
}
