import Foundation
import Yams

/// Reads the sections of a configuration document, recording every finding.
struct SectionReader {
    let registry: KeystoreRegistry
    let context: PluginContext
    let diagnostics: ConfigDiagnostics

    private static let exampleKeystore = "{ type: local-file, path: ../data/master.key, createIfMissing: true }"

    func read(
        root: ConfigMapping,
        source: String,
        sections sectionTypes: [any ConfigSection.Type]
    ) -> (BrokerConfig, [String: any Keystore])? {
        let storage = root.required("storage", example: "{ sqlite: { path: ../data/keybroker.sqlite } }").flatMap(readStorage)
        let keystores = readKeystores(root.required("keystores", example: "{ local: \(Self.exampleKeystore) }"))
        // References are checked against every declared name, even of entries with errors,
        // so that one mistake in a keystore does not cascade into "unknown keystore" elsewhere.
        let names = keystores.declared
        let defaults = readDefaults(root["defaults"], keystores: names, rootNode: root.node)
        let organizations = root["organizations"].map { readOrganizations($0, keystoreNames: names) } ?? [:]
        let cache = root["privateKeyCache"].map(readCache) ?? .default
        let tenantKeystores = root["tenantKeystores"].map(readTenantKeystores) ?? [:]
        var sections = ConfigSections()
        for section in sectionTypes {
            if let node = root[section.key] { sections.set(section.read(node, context: context)) }
        }
        for section in sectionTypes { section.check(sections, node: root[section.key] ?? root.node) }
        root.reportUnknownKeys()

        if let defaults {
            warnAboutPlaintextKeystores(
                defaults: defaults,
                organizations: organizations,
                keystores: keystores.settings,
                root: root
            )
        }
        guard let storage, let defaults, diagnostics.errorCount == 0 else { return nil }
        let config = BrokerConfig(
            source: source,
            storage: storage,
            keystores: keystores.settings,
            defaults: defaults,
            organizations: organizations.mapValues(\.overrides),
            tenantKeystores: tenantKeystores,
            privateKeyCache: cache,
            sections: sections
        )
        return (config, keystores.instances)
    }

    // MARK: tenant keystores

    private func readTenantKeystores(_ node: ConfigNode) -> [String: TenantKeystoreTemplate] {
        guard let mapping = node.mapping() else { return [:] }
        var templates: [String: TenantKeystoreTemplate] = [:]
        for (type, keyNode, value) in mapping.allEntries() {
            guard let plugin = registry.plugin(for: type) else {
                keyNode.error(
                    "unknown keystore type '\(ConfigNode.printable(type))' under 'tenantKeystores'; known types: \(registry.types.joined(separator: ", "))\(Suggestion.phrase(for: type, among: registry.types))"
                )
                continue
            }
            guard !plugin.tenantKeys.isEmpty else {
                keyNode.error(
                    "keystore type '\(type)' cannot be offered to tenants: a tenant has nothing of its own to choose in it (offered: \(registry.types.filter { !(registry.plugin(for: $0)?.tenantKeys.isEmpty ?? true) }.joined(separator: ", ")))"
                )
                continue
            }
            guard case .mapping(var yamlMapping) = value.node, let template = value.mapping() else {
                value.error("'\(value.path)' must be a mapping of the keystore's platform-side settings, e.g. { region: eu-west-1 }")
                continue
            }
            var clean = true
            for key in ["type"] + plugin.tenantKeys where template[key] != nil {
                template[key]?.error(
                    key == "type"
                        ? "'\(value.path).type' is not needed: the key of the entry is the type"
                        : "'\(value.path).\(key)' is the tenant's to choose (through the API); remove it from the template"
                )
                clean = false
            }
            let yaml: String
            do {
                yaml = try Yams.serialize(node: .mapping(yamlMapping))
            } catch {
                value.error("'\(value.path)' cannot be kept as a template: \(error)")
                continue
            }
            // The template is checked now, with placeholder tenant values, so that a mistake in
            // it shows at load (file:line:column), not at the first tenant's save.
            yamlMapping[Yams.Node("type")] = Yams.Node(type)
            for (key, placeholder) in plugin.tenantPlaceholders(template: template) {
                yamlMapping[Yams.Node(key)] = Yams.Node(placeholder)
            }
            let checked = value.replacing(with: .mapping(yamlMapping))
            guard clean, let checkedMapping = checked.mapping(),
                let built = keystore(name: TenantKeystoreTemplate.instanceName(of: type), mapping: checkedMapping)
            else { continue }
            templates[type] = TenantKeystoreTemplate(
                type: type,
                tenantKeys: plugin.tenantKeys,
                contextKey: built.settings.contextKey,
                keyPairSpec: built.settings.keyPairSpec,
                location: value.location,
                yaml: yaml
            )
        }
        return templates
    }

    // MARK: cache and storage

    private func readCache(_ node: ConfigNode) -> PrivateKeyCachePolicy {
        var policy = PrivateKeyCachePolicy.default
        guard let mapping = node.mapping() else { return policy }
        defer { mapping.reportUnknownKeys() }
        if let value = mapping["maxAge"]?.duration(in: .zero...(.seconds(86_400))) { policy.maxAge = value }
        if let value = mapping["maxUses"]?.integer(in: 0...100_000_000) { policy.maxUses = value }
        if let value = mapping["maxEntries"]?.integer(in: 0...1_000_000) { policy.maxEntries = value }
        return policy
    }

    private func readStorage(_ node: ConfigNode) -> StorageSettings? {
        guard let mapping = node.mapping() else { return nil }
        defer { mapping.reportUnknownKeys() }
        if let postgres = mapping["postgres"] {
            if mapping["sqlite"] != nil {
                node.error("'storage' names both sqlite and postgres; keep the one this deployment uses")
                return nil
            }
            return readPostgres(postgres)
        }
        guard let sqlite = mapping.required("sqlite", example: "{ path: ../data/keybroker.sqlite }")?.mapping() else {
            return nil
        }
        defer { sqlite.reportUnknownKeys() }
        let createIfMissing = sqlite["createIfMissing"]?.bool() ?? true
        guard let path = sqlite.required("path", example: "../data/keybroker.sqlite")?.nonEmptyString() else { return nil }
        return .sqlite(SQLiteStorageSettings(path: context.resolvePath(path), createIfMissing: createIfMissing))
    }

    private func readPostgres(_ node: ConfigNode) -> StorageSettings? {
        guard let postgres = node.mapping() else { return nil }
        defer { postgres.reportUnknownKeys() }
        guard let urlNode = postgres.required("url", example: "${KEYBROKER_PG_URL}"), let url = urlNode.nonEmptyString() else {
            return nil
        }
        var settings: PostgresStorageSettings
        do {
            settings = try PostgresStorageSettings.parse(url: url, resolvePath: context.resolvePath)
        } catch {
            urlNode.error(error.message)
            return nil
        }
        if let value = postgres["maxConnections"]?.integer(in: 1...200) { settings.maxConnections = value }
        if let value = postgres["connectTimeout"]?.duration(in: .seconds(1)...(.seconds(300))) { settings.connectTimeout = value }
        if !settings.verifiesServer, !settings.isLoopback {
            urlNode.warning(
                "sslmode \(settings.tls.rawValue) does not check the certificate of \(settings.host): whoever is on the path can read the password and every row; use sslmode=verify-full (with sslrootcert=CA-FILE for a private CA)"
            )
        }
        if settings.password != nil, urlNode.isWrittenOut {
            urlNode.warning(
                "the PostgreSQL password is written in the file; read it from the environment instead: url: ${KEYBROKER_PG_URL}"
            )
        }
        return .postgres(settings)
    }

    // MARK: keystores

    private func readKeystores(
        _ node: ConfigNode?
    ) -> (declared: Set<String>, settings: [String: KeystoreSettings], instances: [String: any Keystore]) {
        guard let node, let mapping = node.mapping() else { return ([], [:], [:]) }
        var settings: [String: KeystoreSettings] = [:]
        var instances: [String: any Keystore] = [:]
        let entries = mapping.allEntries()
        if entries.isEmpty {
            node.error("'keystores' is empty; configure at least one, for example: local: \(Self.exampleKeystore)")
        }
        for (name, keyNode, value) in entries {
            guard OrganizationID.isValid(name) else {
                keyNode.error("keystore name '\(name)' is not allowed; allowed: \(OrganizationID.allowedForm)")
                continue
            }
            guard let entry = value.mapping(), let built = keystore(name: name, mapping: entry) else { continue }
            settings[name] = built.settings
            instances[name] = built.keystore
        }
        return (Set(entries.map(\.key).filter(OrganizationID.isValid)), settings, instances)
    }

    /// Reads one keystore entry: the keys the core owns, then the plugin's.
    func keystore(name: String, mapping: ConfigMapping) -> (settings: KeystoreSettings, keystore: any Keystore)? {
        let known = registry.types.joined(separator: ", ")
        guard let typeNode = mapping.required("type", example: "local-file (known types: \(known))"),
            let type = typeNode.nonEmptyString()
        else { return nil }
        guard let plugin = registry.plugin(for: type) else {
            typeNode.error("unknown keystore type '\(type)'; known types: \(known)\(Suggestion.phrase(for: type, among: registry.types))")
            return nil
        }
        // Only once the plugin is known can its keys be told from unknown ones.
        defer { mapping.reportUnknownKeys() }
        let contextKey = mapping["contextKey"].flatMap(readContextKey) ?? EncryptionContext.defaultContextKey
        let spec = mapping["keyPairSpec"]?.value(of: KeyPairSpec.self)
        let errorsBefore = diagnostics.errorCount
        let instance = plugin.make(name: name, settings: mapping, context: context)
        guard let instance, diagnostics.errorCount == errorsBefore else { return nil }
        let settings = KeystoreSettings(
            name: name,
            type: type,
            contextKey: contextKey,
            keyPairSpec: spec,
            location: mapping.node.location
        )
        return (settings, instance)
    }

    private func readContextKey(_ node: ConfigNode) -> String? {
        guard let key = node.nonEmptyString() else { return nil }
        let allowed =
            key.count <= 128
            && key.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.:/".unicodeScalars.contains($0))
            }
        guard allowed else {
            node.error("'\(node.path)' must be 1-128 characters of letters, digits, '-', '_', '.', ':' or '/', found '\(key)'")
            return nil
        }
        return key
    }

    // MARK: defaults and organizations

    private func readDefaults(_ node: ConfigNode?, keystores: Set<String>, rootNode: ConfigNode) -> OrganizationPolicy? {
        let mapping = node?.mapping()
        defer { mapping?.reportUnknownKeys() }
        let keystoreNode = mapping?["keystore"]
        var keystore = keystoreNode?.nonEmptyString()
        if let name = keystore, let keystoreNode, !checkReference(name, at: keystoreNode, keystores: keystores) {
            keystore = nil
        }
        if keystoreNode == nil {
            if keystores.count == 1 {
                keystore = keystores.first
            } else if keystores.count > 1 {
                (node ?? rootNode).error(
                    "'defaults.keystore' is required when several keystores are configured; set it to one of: \(keystores.sorted().joined(separator: ", "))"
                )
            }
        }
        let rotation = mapping?["rotation"]?.value(of: RotationCadence.self) ?? .default
        let spec = mapping?["keyPairSpec"]?.value(of: KeyPairSpec.self) ?? .default
        guard let keystore else { return nil }
        return OrganizationPolicy(keystore: keystore, rotation: rotation, keyPairSpec: spec)
    }

    private func readOrganizations(
        _ node: ConfigNode,
        keystoreNames: Set<String>
    ) -> [OrganizationID: (overrides: OrganizationOverrides, node: ConfigNode)] {
        guard let mapping = node.mapping() else { return [:] }
        var result: [OrganizationID: (OrganizationOverrides, ConfigNode)] = [:]
        for (key, keyNode, value) in mapping.allEntries() {
            guard let id = OrganizationID(key) else {
                keyNode.error(OrganizationID.invalidMessage(key))
                continue
            }
            if value.isNull {
                result[id] = (OrganizationOverrides(keystore: nil, rotation: nil, keyPairSpec: nil), value)
                continue
            }
            guard let entry = value.mapping() else { continue }
            defer { entry.reportUnknownKeys() }
            var keystore: String?
            if let keystoreNode = entry["keystore"], let name = keystoreNode.nonEmptyString(),
                checkReference(name, at: keystoreNode, keystores: keystoreNames)
            {
                keystore = name
            }
            let rotation = entry["rotation"]?.value(of: RotationCadence.self)
            let spec = entry["keyPairSpec"]?.value(of: KeyPairSpec.self)
            result[id] = (OrganizationOverrides(keystore: keystore, rotation: rotation, keyPairSpec: spec), value)
        }
        return result
    }

    private func checkReference(_ name: String, at node: ConfigNode, keystores: Set<String>) -> Bool {
        guard !keystores.contains(name) else { return true }
        let known = keystores.isEmpty ? "none are configured" : "configured keystores: \(keystores.sorted().joined(separator: ", "))"
        node.error(
            "'\(node.path)' names keystore '\(name)', which is not under 'keystores'; \(known)\(Suggestion.phrase(for: name, among: Array(keystores)))"
        )
        return false
    }

    private func warnAboutPlaintextKeystores(
        defaults: OrganizationPolicy,
        organizations: [OrganizationID: (overrides: OrganizationOverrides, node: ConfigNode)],
        keystores: [String: KeystoreSettings],
        root: ConfigMapping
    ) {
        func isPlaintext(_ name: String) -> Bool {
            keystores[name].flatMap { registry.plugin(for: $0.type) }?.storesPlaintextPrivateKeys ?? false
        }
        if isPlaintext(defaults.keystore) {
            let location = root["defaults"]?.location ?? keystores[defaults.keystore]?.location
            diagnostics.warning(
                "organizations without a keystore of their own use '\(defaults.keystore)', which stores private keys UNWRAPPED in the database; use it for development only",
                at: location
            )
        }
        for (id, entry) in organizations.sorted(by: { $0.key < $1.key }) {
            if let name = entry.overrides.keystore, isPlaintext(name) {
                entry.node.warning("organization '\(id)' uses keystore '\(name)', which stores its private keys UNWRAPPED in the database")
            }
        }
    }
}
