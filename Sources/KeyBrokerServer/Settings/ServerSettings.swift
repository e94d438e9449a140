import Foundation
public import KeyBroker

/// `server:`.
public struct ServerSettings: ConfigSection {
    public static let key = "server"
    public static let defaultValue = ServerSettings()

    /// The host to listen on. Loopback by default: a new deployment is not reachable from
    /// the network until an operator says so.
    public var host = "127.0.0.1"
    /// The TCP port.
    public var port = 8080
    /// Whether an unhealthy keystore makes `/readyz` fail (503) instead of `degraded` (200).
    public var strictReadiness = false
    /// How often keystores and the store are checked in the background.
    public var healthCheckInterval: Duration = .seconds(30)
    /// The largest request body accepted (413 above).
    public var maxRequestBytes = 64 * 1024
    /// How many key pairs the API may generate for one organization per minute (429 above);
    /// concurrent requests for one organization share one generation and count once.
    public var generationsPerOrganizationPerMinute = 6
    /// This replica's name in audit records, logs and the rotation lease (default: the host name).
    public var instanceId = ServerSettings.defaultInstanceId
    /// How long the rotation lease runs unless renewed (renewed every third of it): a leader
    /// that dies is replaced within twice this.
    public var rotationLease: Duration = .seconds(15)
    /// TLS for the listener (`server.tls`); `nil`: plain HTTP, which only loopback allows
    /// unless ``allowPlaintext`` is set.
    public var tls: TLSSettings?
    /// How long clients may keep a public-key answer (`Cache-Control: private, max-age=N`);
    /// zero: `no-store`. A client may encrypt with the previous pair for this long after a
    /// rotation, which is safe: every old pair stays decryptable.
    public var publicKeyMaxAge: Duration = .seconds(60)
    /// The bounds of the in-memory public-key answers (read at start).
    public var publicKeyCache = PublicKeyCache.Limits.default
    /// Whether plain HTTP on a non-loopback address was asked for in writing
    /// (`server.allowPlaintext: true`): warned about at start and in status.
    public var allowPlaintext = false

    /// Whether the listener speaks plain HTTP where the network can reach it.
    public var plaintextOnNetwork: Bool { tls == nil && !Self.isLoopback(host) }

    /// Whether `host` names a loopback address only: `localhost`, 127.0.0.0/8 or `::1`.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.first == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// The host name, or `keybroker` when it has none.
    public static var defaultInstanceId: String {
        let name = ProcessInfo.processInfo.hostName
        return name.isEmpty ? "keybroker" : name
    }
}

extension ServerSettings {
    public static func read(_ node: ConfigNode, context: PluginContext) -> ServerSettings {
        guard let mapping = node.mapping() else { return .defaultValue }
        defer { mapping.reportUnknownKeys() }
        var settings = ServerSettings.defaultValue
        if let readiness = mapping["readiness"]?.mapping() {
            settings.strictReadiness = readiness["strict"]?.bool() ?? false
            readiness.reportUnknownKeys()
        }
        if let value = mapping["healthCheckInterval"]?.duration(in: .seconds(1)...(.seconds(3600))) {
            settings.healthCheckInterval = value
        }
        if let value = mapping["instanceId"]?.nonEmptyString() {
            if value.count <= 128, value.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\"" }) {
                settings.instanceId = value
            } else {
                mapping["instanceId"]?.error(
                    "'server.instanceId' must be 1 to 128 printable ASCII characters without spaces or quotes, e.g. keybroker-1"
                )
            }
        }
        if let value = mapping["rotationLease"]?.duration(in: .seconds(3)...(.seconds(600))) { settings.rotationLease = value }
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
        if let value = mapping["allowPlaintext"]?.bool() { settings.allowPlaintext = value }
        if let value = mapping["publicKeyMaxAge"]?.duration(in: .zero...(.seconds(86400))) { settings.publicKeyMaxAge = value }
        if let cache = mapping["publicKeyCache"]?.mapping() {
            if let value = cache["maxEntries"]?.integer(in: 0...10_000_000) { settings.publicKeyCache.maxEntries = value }
            if let value = cache["maxBytes"]?.integer(in: 0...(16 * 1024 * 1024 * 1024)) { settings.publicKeyCache.maxBytes = value }
            cache.reportUnknownKeys()
        }
        // An offline command may run as a user that cannot read the server's key, and needs
        // none of it; `serve` and `config validate` read and check the files.
        if let tlsNode = mapping["tls"], context.purpose == .serve { settings.tls = readTLS(tlsNode, context: context) }
        if settings.tls == nil, !isLoopback(settings.host), !settings.allowPlaintext, mapping["tls"] == nil {
            (mapping["listen"] ?? node).error(
                "'server.listen' is \(settings.host):\(settings.port), reachable from the network, but 'server.tls' is not set: tokens and unwrapped data keys would cross the network in the clear. Set server.tls { certificate, privateKey } (see docs/security.md), listen on 127.0.0.1, or write server.allowPlaintext: true if a TLS proxy on this host terminates TLS"
            )
        }
        return settings
    }

    private static func readTLS(_ node: ConfigNode, context: PluginContext) -> TLSSettings? {
        guard let mapping = node.mapping() else { return nil }
        defer { mapping.reportUnknownKeys() }
        let certificate = mapping.required("certificate", example: "/etc/keybroker/tls/server.pem")?.nonEmptyString()
        let keyNode = mapping.required("privateKey", example: "/etc/keybroker/tls/server.key")
        let privateKey = keyNode?.nonEmptyString()
        let clientCA = mapping["clientCA"]?.nonEmptyString()
        guard let certificate, let privateKey else { return nil }
        let settings: TLSSettings
        do {
            settings = try TLSSettings(
                certificate: context.resolvePath(certificate),
                privateKey: context.resolvePath(privateKey),
                clientCA: clientCA.map(context.resolvePath)
            )
        } catch {
            node.error("'server.tls': \(error)")
            return nil
        }
        // A warning, not an error: a reload that revokes a token must not wait for a renewal.
        // `serve` refuses to start with it (every client would refuse it anyway).
        if let expired = settings.expiredMessage(at: Date()) { node.warning("'server.tls': \(expired)") }
        return settings
    }

    private static func readListen(_ node: ConfigNode?) -> (String, Int)? {
        guard let listenNode = node, let listen = listenNode.nonEmptyString() else { return nil }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            listenNode.error(
                "'server.listen' must be HOST:PORT with a port from 0 (any free port) to 65535 (e.g. 127.0.0.1:8080), found '\(listen)'"
            )
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
}
