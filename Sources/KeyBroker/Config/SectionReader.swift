import Foundation

/// Reads the sections of a configuration document, recording every finding.
struct SectionReader {
    let registry: KeystoreRegistry
    let context: PluginContext
    let diagnostics: ConfigDiagnostics

    private static let exampleKeystore = "{ type: local-file, path: ../data/master.key, createIfMissing: true }"

    func read(root: ConfigMapping, source: String) -> (BrokerConfig, [String: any Keystore])? {
        let server = root["server"].map(readServer) ?? .default
        let storage = root.required("storage", example: "{ sqlite: { path: ../data/keybroker.sqlite } }").flatMap(readStorage)
        let keystores = readKeystores(root.required("keystores", example: "{ local: \(Self.exampleKeystore) }"))
        // References are checked against every declared name, even of entries with errors,
        // so that one mistake in a keystore does not cascade into "unknown keystore" elsewhere.
        let names = keystores.declared
        let defaults = readDefaults(root["defaults"], keystores: names, rootNode: root.node)
        let organizations = root["organizations"].map { readOrganizations($0, keystoreNames: names) } ?? [:]
        let auth = root["auth"].map(readAuth) ?? AuthSettings(tokens: [])
        let scheduler = root["scheduler"].map(readScheduler) ?? .default
        let audit = root["audit"].map(readAudit) ?? .default
        let cache = root["privateKeyCache"].map(readCache) ?? .default
        root.reportUnknownKeys()

        if let defaults {
            warnAboutPlaintextKeystores(
                defaults: defaults, organizations: organizations, keystores: keystores.settings, root: root)
        }
        guard let storage, let defaults, diagnostics.errorCount == 0 else { return nil }
        let config = BrokerConfig(
            source: source, server: server, storage: storage, keystores: keystores.settings, defaults: defaults,
            organizations: organizations.mapValues(\.overrides), auth: auth, scheduler: scheduler, audit: audit,
            privateKeyCache: cache)
        return (config, keystores.instances)
    }

    // MARK: server and storage

    private func readServer(_ node: ConfigNode) -> ServerSettings {
        guard let mapping = node.mapping() else { return .default }
        defer { mapping.reportUnknownKeys() }
        var settings = ServerSettings.default
        if let readiness = mapping["readiness"]?.mapping() {
            settings.strictReadiness = readiness["strict"]?.bool() ?? false
            readiness.reportUnknownKeys()
        }
        if let value = mapping["healthCheckInterval"]?.duration(in: .seconds(1)...(.seconds(3600))) {
            settings.healthCheckInterval = value
        }
        if let value = mapping["maxRequestBytes"]?.integer(in: 1024...(16 * 1024 * 1024)) { settings.maxRequestBytes = value }
        if let limits = mapping["limits"]?.mapping() {
            if let value = limits["generationsPerOrganizationPerMinute"]?.integer(in: 1...1000) {
                settings.generationsPerOrganizationPerMinute = value
            }
            limits.reportUnknownKeys()
        }
        if let (host, port) = readListen(mapping["listen"]) {
            settings.host = host
            settings.port = port
        }
        return settings
    }

    private func readListen(_ node: ConfigNode?) -> (String, Int)? {
        guard let listenNode = node, let listen = listenNode.nonEmptyString() else { return nil }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            listenNode.error("'server.listen' must be HOST:PORT with a port from 0 (any free port) to 65535 (e.g. 127.0.0.1:8080), found '\(listen)'")
            return nil
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else {
            listenNode.error("'server.listen' needs a host before the port (127.0.0.1 for loopback, 0.0.0.0 for all interfaces)")
            return nil
        }
        return (host, port)
    }

    // MARK: scheduler, audit, cache

    private func readScheduler(_ node: ConfigNode) -> SchedulerSettings {
        var settings = SchedulerSettings.default
        guard let mapping = node.mapping() else { return settings }
        defer { mapping.reportUnknownKeys() }
        if let value = mapping["enabled"]?.bool() { settings.enabled = value }
        if let value = mapping["interval"]?.duration(in: .seconds(1)...(.seconds(86_400))) { settings.interval = value }
        if let value = mapping["concurrency"]?.integer(in: 1...64) { settings.concurrency = value }
        if let node = mapping["perKeystoreRate"], let text = node.string() {
            // At least one generation per 1000 s: a slower rate would stall rotation for days,
            // and the spacing it implies must fit the clock's arithmetic.
            if let rate = Double(text), rate >= SchedulerSettings.minimumRate, rate <= SchedulerSettings.maximumRate {
                settings.perKeystoreRate = rate
            } else {
                node.error(
                    "'\(node.path)' must be a number of generations per second from \(SchedulerSettings.minimumRate) (one every 1000 s) to \(Int(SchedulerSettings.maximumRate)), found '\(text)'")
            }
        }
        if let value = mapping["maxRetryDelay"]?.duration(in: .seconds(1)...(.seconds(86_400))) { settings.maxRetryDelay = value }
        return settings
    }

    private func readAudit(_ node: ConfigNode) -> AuditSettings {
        var settings = AuditSettings.default
        guard let mapping = node.mapping() else { return settings }
        defer { mapping.reportUnknownKeys() }
        if let destination = mapping["destination"]?.nonEmptyString() {
            settings.destination = destination == "stderr" ? .stderr : .file(context.resolvePath(destination))
        }
        if let policy = mapping["onFailure"]?.value(of: AuditSettings.FailurePolicy.self) { settings.onFailure = policy }
        return settings
    }

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
            postgres.error("PostgreSQL storage is not available in this build; use storage: { sqlite: { path: PATH } }")
            _ = mapping["sqlite"]
            return nil
        }
        guard let sqlite = mapping.required("sqlite", example: "{ path: ../data/keybroker.sqlite }")?.mapping() else {
            return nil
        }
        defer { sqlite.reportUnknownKeys() }
        let createIfMissing = sqlite["createIfMissing"]?.bool() ?? true
        guard let path = sqlite.required("path", example: "../data/keybroker.sqlite")?.nonEmptyString() else { return nil }
        return .sqlite(SQLiteStorageSettings(path: context.resolvePath(path), createIfMissing: createIfMissing))
    }

    // MARK: keystores

    private func readKeystores(_ node: ConfigNode?) -> (declared: Set<String>, settings: [String: KeystoreSettings], instances: [String: any Keystore]) {
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
            name: name, type: type, contextKey: contextKey, keyPairSpec: spec, location: mapping.node.location)
        return (settings, instance)
    }

    private func readContextKey(_ node: ConfigNode) -> String? {
        guard let key = node.nonEmptyString() else { return nil }
        let allowed = key.count <= 128
            && key.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.:/".unicodeScalars.contains($0)) }
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
                    "'defaults.keystore' is required when several keystores are configured; set it to one of: \(keystores.sorted().joined(separator: ", "))")
            }
        }
        let rotation = mapping?["rotation"]?.value(of: RotationCadence.self) ?? .default
        let spec = mapping?["keyPairSpec"]?.value(of: KeyPairSpec.self) ?? .default
        guard let keystore else { return nil }
        return OrganizationPolicy(keystore: keystore, rotation: rotation, keyPairSpec: spec)
    }

    private func readOrganizations(_ node: ConfigNode, keystoreNames: Set<String>) -> [OrganizationID: (overrides: OrganizationOverrides, node: ConfigNode)] {
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
        node.error("'\(node.path)' names keystore '\(name)', which is not under 'keystores'; \(known)\(Suggestion.phrase(for: name, among: Array(keystores)))")
        return false
    }

    private func warnAboutPlaintextKeystores(
        defaults: OrganizationPolicy, organizations: [OrganizationID: (overrides: OrganizationOverrides, node: ConfigNode)],
        keystores: [String: KeystoreSettings], root: ConfigMapping
    ) {
        func isPlaintext(_ name: String) -> Bool {
            keystores[name].flatMap { registry.plugin(for: $0.type) }?.storesPlaintextPrivateKeys ?? false
        }
        if isPlaintext(defaults.keystore) {
            let location = root["defaults"]?.location ?? keystores[defaults.keystore]?.location
            diagnostics.warning(
                "organizations without a keystore of their own use '\(defaults.keystore)', which stores private keys UNWRAPPED in the database; use it for development only",
                at: location)
        }
        for (id, entry) in organizations.sorted(by: { $0.key < $1.key }) {
            if let name = entry.overrides.keystore, isPlaintext(name) {
                entry.node.warning("organization '\(id)' uses keystore '\(name)', which stores its private keys UNWRAPPED in the database")
            }
        }
    }

    // MARK: auth

    private func readAuth(_ node: ConfigNode) -> AuthSettings {
        guard let mapping = node.mapping() else { return AuthSettings(tokens: []) }
        defer { mapping.reportUnknownKeys() }
        let tokens = mapping["tokens"]?.list() ?? []
        var names = Set<String>()
        var hashes = Set<String>()
        return AuthSettings(tokens: tokens.compactMap { tokenNode in
            guard let token = readToken(tokenNode) else { return nil }
            if !names.insert(token.name).inserted {
                tokenNode.error("token name '\(token.name)' is used twice; each token needs its own name for the audit log")
            }
            if DocumentedTokenHashes.all.contains(token.sha256) {
                tokenNode.warning(
                    "token '\(token.name)' has a sha256 printed in KeyBroker's documentation or examples: it is a placeholder, and for older examples anyone who read them holds the token. Replace it with one from: keybroker token create")
            }
            if !hashes.insert(token.sha256).inserted {
                tokenNode.error("token '\(token.name)' has the same sha256 as an earlier token; create a separate token (keybroker token create)")
            }
            return token
        })
    }

    private func readToken(_ node: ConfigNode) -> TokenSettings? {
        guard let mapping = node.mapping() else { return nil }
        defer { mapping.reportUnknownKeys() }
        let name = mapping.required("name", example: "ops")?.nonEmptyString()
        var hash: String?
        if let hashNode = mapping.required("sha256", example: "<64 hex digits: printf %s TOKEN | sha256sum>"),
            let value = hashNode.nonEmptyString()
        {
            if value.count == 64, value.allSatisfy(\.isHexDigit) {
                hash = value.lowercased()
            } else {
                hashNode.error("'\(hashNode.path)' must be the 64-hex-digit SHA-256 of the token, not the token itself")
            }
        }
        var permissions = Set<Permission>()
        let permissionsNode = mapping.required("permissions", example: "[encryption-key:view]")
        let permissionItems = permissionsNode?.list()
        for item in permissionItems ?? [] {
            if let permission = item.value(of: Permission.self) { permissions.insert(permission) }
        }
        if let permissionsNode, permissionItems?.isEmpty == true {
            permissionsNode.error("'\(permissionsNode.path)' is empty; a token needs at least one of: \(Permission.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var organizations: Set<OrganizationID> = []
        var everyOrganization = false
        let orgsNode = mapping.required("orgs", example: "[\"*\"] or a list of organization ids")
        let orgItems = orgsNode?.list()
        for item in orgItems ?? [] {
            guard let value = item.nonEmptyString() else { continue }
            if value == "*" {
                everyOrganization = true
            } else if let id = OrganizationID(value) {
                organizations.insert(id)
            } else {
                item.error("'\(ConfigNode.printable(value))' is not a valid organization id (or \"*\" for all); allowed: \(OrganizationID.allowedForm)")
            }
        }
        if let orgsNode, orgItems?.isEmpty == true {
            orgsNode.error("'\(orgsNode.path)' is empty; list organization ids, or [\"*\"] for all")
        } else if let orgsNode, everyOrganization, !organizations.isEmpty {
            orgsNode.error("'\(orgsNode.path)' mixes \"*\" with organization ids; write either [\"*\"] or the ids")
        }
        guard let name, let hash else { return nil }
        return TokenSettings(
            name: name, sha256: hash, permissions: permissions, organizations: everyOrganization ? nil : organizations)
    }
}
