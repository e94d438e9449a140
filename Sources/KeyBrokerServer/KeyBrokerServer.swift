public import Foundation
public import Hummingbird
import HummingbirdCore
public import KeyBroker
public import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// `keybroker serve`: the HTTP server with its background services — health checks,
/// rotation, reload on SIGHUP — shutting down gracefully on SIGTERM and SIGINT.
public struct KeyBrokerServer: Sendable {
    /// The broker in force.
    public let runtime: BrokerRuntime
    /// The rotation scheduler.
    public let scheduler: RotationScheduler
    /// The metrics.
    public let metrics: ServerMetrics
    /// Keeps this replica coherent with the others sharing the store.
    public let follower: ChangeFollower
    let audit: AuditLog
    let logger: Logger
    let probes: Probes
    let organizationRoutes: OrganizationRoutes
    let keyConfigurationRoutes: KeyConfigurationRoutes
    let adminRoutes: AdminRoutes

    /// Loads the candidate keystore of a `POST /v1/orgs/{org}/test` body: `body` is the JSON
    /// object as sent, the keystore under its `keystore` field (so that messages point into
    /// the body), e.g. `loader.loadCandidate(text: body, field: "keystore", …)`.
    public typealias CandidateLoader =
        @Sendable (_ body: String) throws(ConfigError) -> (settings: KeystoreSettings, keystore: any Keystore)

    /// Opens the store and the broker, ready to serve.
    /// - Parameters:
    ///   - loaded: the configuration read at start.
    ///   - source: reads the configuration again (reload).
    ///   - loadCandidate: parses candidate keystores sent to the test endpoint.
    ///   - store: the key-pair store.
    ///   - now: the clock (tests inject one).
    ///   - metrics: where the server's metrics go; pass the same to the configuration loader
    ///     (``ServerMetrics/factory``) so that keystores report theirs there too.
    public init(
        loaded: LoadedConfig,
        source: @escaping BrokerRuntime.ConfigSource,
        loadCandidate: @escaping CandidateLoader,
        store: any KeyPairStore,
        now: @escaping @Sendable () -> Date = { Date() },
        metrics: ServerMetrics = ServerMetrics(),
        logger: Logger
    ) async throws {
        self.metrics = metrics
        runtime = try await BrokerRuntime(loaded: loaded, source: source, store: store, metrics: metrics, now: now, logger: logger)
        audit = try AuditLog(
            loaded.config.audit,
            logger: logger,
            replica: loaded.config.server.instanceId,
            onFailure: { metrics.auditFailure() }
        )
        scheduler = RotationScheduler(runtime: runtime, audit: audit, metrics: metrics, logger: logger)
        follower = ChangeFollower(runtime: runtime, startingAfter: runtime.changesReadThrough, logger: logger)
        let support = RouteSupport(audit: audit, logger: logger)
        let runtime = self.runtime
        probes = Probes(
            monitor: runtime.monitor,
            strict: { runtime.broker.config.server.strictReadiness },
            publicKeysInMemory: { runtime.publicKeys.count }
        )
        let generationLimiter = GenerationLimiter()
        organizationRoutes = OrganizationRoutes(
            runtime: runtime,
            scheduler: scheduler,
            support: support,
            metrics: metrics,
            loadCandidate: loadCandidate,
            generationLimiter: generationLimiter
        )
        keyConfigurationRoutes = KeyConfigurationRoutes(
            runtime: runtime,
            scheduler: scheduler,
            support: support,
            metrics: metrics,
            generationLimiter: generationLimiter
        )
        adminRoutes = AdminRoutes(runtime: runtime, scheduler: scheduler, support: support)
        self.logger = logger
    }

    /// The router: the probes bare (fast), the rest with request metrics; `/v1` with token
    /// authentication, and `/v1/orgs/{org}` with the organization parsed into its context.
    /// Package-internal: its handlers read the snapshot ``responder()`` takes, so it serves
    /// only behind that (the tests compare its route table with the OpenAPI document).
    package func router() -> Router<KeyBrokerRequestContext> {
        let router = Router(context: KeyBrokerRequestContext.self)
        router.addRoutes(probes.collection())
        let measured = router.group().add(middleware: RequestMetricsMiddleware<KeyBrokerRequestContext>(metrics: metrics))
        measured.addRoutes(MetricsRoute(metrics: metrics).collection())
        let api = measured.group("v1").add(middleware: TokenAuthenticatorMiddleware())
        api.addRoutes(adminRoutes.collection())
        let organization = api.group("orgs/{org}", context: OrganizationRequestContext.self)
        organization.addRoutes(organizationRoutes.collection())
        organization.addRoutes(keyConfigurationRoutes.collection())
        return router
    }

    /// The responder the server runs: probes first, the runtime's snapshot for every other
    /// request, the router, and 404/405 in the API's error shape.
    public func responder() -> some HTTPResponder<KeyBrokerRequestContext> {
        let router = router()
        return KeyBrokerResponder(runtime: runtime, probes: probes, router: router.buildResponder(), routes: RouteIndex(router))
    }

    /// Serves until SIGTERM or SIGINT.
    /// - Parameter onListening: called with the bound port (the configured port may be 0).
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        // Trap SIGHUP first: its default action would end the process during a slow start.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let settings = runtime.broker.config.server
        // Readiness needs the store's answer; keystores are checked by the health loop right
        // after, so a slow KMS does not delay the listener.
        await runtime.monitor.checkStore(runtime.broker)
        if let tls = settings.tls, let expired = tls.expiredMessage(at: Date()) {
            throw TLSFileError("cannot serve: \(expired)")
        }
        // Plain HTTP on the network, a certificate near its end: said at start, as status says it.
        for warning in runtime.listener.warnings(at: Date()) { logger.warning("\(warning)") }
        let app = Application(
            responder: responder(),
            server: serverBuilder(settings),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "keybroker"),
            services: [
                BackgroundLoop(name: "health") { [runtime] in
                    let interval = runtime.broker.config.server.healthCheckInterval
                    await runtime.monitor.checkAll(runtime.broker, within: interval)
                    try? await Task.sleep(for: interval)
                },
                BackgroundLoop(name: "rotation", once: true) { [scheduler] in await scheduler.run() },
                BackgroundLoop(name: "rotation-lease", once: true) { [scheduler] in await scheduler.leader.run() },
                BackgroundLoop(name: "change-follower", once: true) { [follower] in await follower.run() },
                BackgroundLoop(name: "reload-on-sighup", once: true) { [self] in await reloadOnHangup(hangups) },
            ],
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? settings.port) },
            logger: logger
        )
        try await app.runService()
    }

    /// How long a connection may stay silent before it is closed, a TLS handshake included:
    /// longer than load balancers keep idle connections (AWS's default is 60 s), short enough
    /// that a connection verified under a client CA since replaced does not outlive it by much.
    static let idleTimeout = TimeAmount.seconds(300)

    /// HTTP/1.1, over TLS when `server.tls` is set at start. Each new connection takes the TLS
    /// context of the configuration in force, so SIGHUP renews the certificate, key and client
    /// CA without dropping open connections. Turning TLS on or off takes a restart (the reload
    /// says so).
    private func serverBuilder(_ settings: ServerSettings) -> HTTPServerBuilder {
        let http = HTTP1Channel.Configuration(idleTimeout: Self.idleTimeout)
        guard let initial = settings.tls else { return .http1(configuration: http) }
        return .reloadableTLS(configuration: http) { [listener = runtime.listener] in listener.tlsInUse ?? initial }
    }

    private func reloadOnHangup(_ hangups: UnixSignalsSequence) async {
        for await _ in hangups {
            do {
                let result = try await runtime.reload(beforeSwap: audit.reload(by: "SIGHUP"))
                scheduler.runSoon()
                for warning in result.warnings { logger.warning("\(warning)") }
                var metadata: Logger.Metadata = ["changedOrganizations": "\(result.changedOrganizations.map(\.rawValue))"]
                if let moved = result.defaultsMoved {
                    metadata["defaultKeystore"] = "\(moved.from) -> \(moved.to) (\(moved.currentPairs) current pairs)"
                }
                logger.notice("configuration reloaded", metadata: metadata)
            } catch let error as ConfigError {
                await audit.note(.reload, actor: "SIGHUP", result: .failed, error: error)
                for diagnostic in error.diagnostics {
                    logger.error("reload refused; the previous configuration stays in force: \(diagnostic)")
                }
            } catch {
                await audit.note(.reload, actor: "SIGHUP", result: .failed, error: error)
                logger.error("reload failed; the previous configuration stays in force: \(error)")
            }
        }
    }
}
