import Foundation
import Hummingbird
import KeyBroker
import Logging
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
    /// The routes.
    public let api: KeyBrokerAPI
    /// The metrics.
    public let metrics: ServerMetrics
    let audit: AuditLog
    let logger: Logger

    /// Opens the store and the broker, ready to serve.
    /// - Parameters:
    ///   - loaded: the configuration read at start.
    ///   - source: reads the configuration again (reload).
    ///   - loadCandidate: parses candidate keystores sent to the test endpoint.
    ///   - store: the key-pair store.
    ///   - now: the clock (tests inject one).
    public init(
        loaded: LoadedConfig, source: @escaping BrokerRuntime.ConfigSource, loadCandidate: @escaping KeyBrokerAPI.CandidateLoader,
        store: any KeyPairStore, now: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) async throws {
        metrics = ServerMetrics()
        runtime = try await BrokerRuntime(loaded: loaded, source: source, store: store, metrics: metrics, now: now, logger: logger)
        let metrics = self.metrics
        audit = try AuditLog(loaded.config.audit, logger: logger, onFailure: { metrics.auditFailure() })
        scheduler = RotationScheduler(runtime: runtime, audit: audit, metrics: metrics, logger: logger)
        api = KeyBrokerAPI(runtime: runtime, scheduler: scheduler, audit: audit, metrics: metrics, loadCandidate: loadCandidate)
        self.logger = logger
    }

    /// The router: probes bare (fast), the rest with request metrics.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let measured = router.group().add(middleware: RequestMetricsMiddleware(metrics: metrics))
        for route in api.routes {
            let target = route.path == "/livez" || route.path == "/readyz" ? router.group() : measured
            target.on(RouterPath(route.path), method: route.method) { request, context in try await route.handler(request, context) }
        }
        return router
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
        let app = Application(
            responder: ProbesFirst(probes: api.probes, router: router().buildResponder()),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "keybroker"),
            services: [
                BackgroundLoop(name: "health") { [runtime] in
                    await runtime.monitor.checkAll(runtime.broker)
                    try? await Task.sleep(for: runtime.broker.config.server.healthCheckInterval)
                },
                BackgroundLoop(name: "rotation", once: true) { [scheduler] in await scheduler.run() },
                BackgroundLoop(name: "reload-on-sighup", once: true) { [self] in await reloadOnHangup(hangups) },
            ],
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? settings.port) },
            logger: logger)
        try await app.runService()
    }

    private func reloadOnHangup(_ hangups: UnixSignalsSequence) async {
        for await _ in hangups {
            do {
                let result = try await runtime.reload { [audit] in
                    do {
                        try await audit.record(.reload, actor: "SIGHUP", result: .ok)
                    } catch {
                        throw BrokerError.auditFailed(error)
                    }
                }
                scheduler.runSoon()
                for warning in result.warnings { logger.warning("\(warning)") }
                logger.notice("configuration reloaded", metadata: ["changedOrganizations": "\(result.changedOrganizations.map(\.rawValue))"])
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

/// A background task as a ServiceLifecycle service, ended by graceful shutdown.
struct BackgroundLoop: Service {
    let name: String
    let once: Bool
    let body: @Sendable () async -> Void

    init(name: String, once: Bool = false, body: @escaping @Sendable () async -> Void) {
        self.name = name
        self.once = once
        self.body = body
    }

    func run() async {
        await cancelWhenGracefulShutdown {
            if once {
                await body()
            } else {
                while !Task.isCancelled { await body() }
            }
        }
    }
}

/// Counts requests and their latency by route and status.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let clock = ContinuousClock()
        let start = clock.now
        let route = context.endpointPath ?? "unmatched"
        do {
            let response = try await next(request, context)
            metrics.request(route: route, method: request.method.rawValue, status: Int(response.status.code), duration: clock.now - start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.request(route: route, method: request.method.rawValue, status: Int(status), duration: clock.now - start)
            throw error
        }
    }
}

/// Answers `GET|HEAD /livez` and `/readyz` before the router: load balancers probe often,
/// and a string comparison is cheaper than a route lookup. Every other request goes to the
/// router, which serves the probes too (for in-process tests and the route table).
struct ProbesFirst<Router: HTTPResponder>: HTTPResponder where Router.Context == BasicRequestContext {
    let probes: Probes
    let router: Router

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        if request.method == .get || request.method == .head {
            switch request.uri.path {
            case "/livez": return probes.livez(request, context)
            case "/readyz": return try probes.readyz(request, context)
            default: break
            }
        }
        return try await router.respond(to: request, context: context)
    }
}
