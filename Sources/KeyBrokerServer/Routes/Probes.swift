import Foundation
import Hummingbird
import KeyBroker
import NIOFoundationEssentialsCompat

/// `/livez` and `/readyz`: no auth, no backend call, pre-encoded bodies. State
/// comes from the ``HealthMonitor``'s background checks.
struct Probes: Sendable {
    let monitor: HealthMonitor
    let strict: @Sendable () -> Bool
    /// How many organizations' public keys are in memory (served while the store is down).
    let publicKeysInMemory: @Sendable () -> Int

    private static func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
    private static let live = body(#"{"status":"ok"}"#)
    private static let ok = body(#"{"status":"ok"}"#)
    private static let degraded = body(#"{"status":"degraded"}"#)
    private static let unavailable = body(#"{"status":"unavailable"}"#)
    private static let headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]

    /// The routes (also answered ahead of the router by ``KeyBrokerResponder``, as the
    /// server runs; the router serves them for in-process tests and the route table).
    func collection() -> RouteCollection<KeyBrokerRequestContext> {
        let routes = RouteCollection(context: KeyBrokerRequestContext.self)
        routes.get("livez") { request, context in livez(request, context) }
        routes.head("livez") { request, context in livez(request, context) }
        routes.get("readyz") { request, context in try readyz(request, context) }
        routes.head("readyz") { request, context in try readyz(request, context) }
        return routes
    }

    func livez(_ request: Request, _ context: some RequestContext) -> Response {
        Response(status: .ok, headers: Self.headers, body: .init(byteBuffer: Self.live))
    }

    enum Readiness: String { case ok, degraded, unavailable }

    func readiness() -> Readiness {
        let inputs = monitor.readinessInputs
        guard inputs.storeReachable else { return .unavailable }
        if inputs.keystoresHealthy { return .ok }
        return strict() ? .unavailable : .degraded
    }

    func readyz(_ request: Request, _ context: some RequestContext) throws -> Response {
        let state = readiness()
        let status: HTTPResponse.Status = state == .unavailable ? .serviceUnavailable : .ok
        let wantsDetail = (request.uri.query ?? "").split(separator: "&").contains { item in
            let pair = item.split(separator: "=", maxSplits: 1)
            return pair.first == "verbose" && (pair.count == 1 || ["1", "true"].contains(pair[1]))
        }
        guard wantsDetail else {
            let body = state == .ok ? Self.ok : state == .degraded ? Self.degraded : Self.unavailable
            return Response(status: status, headers: Self.headers, body: .init(byteBuffer: body))
        }
        let store = monitor.store
        let verbose = VerboseReadiness(
            status: state.rawValue,
            store: .init(
                reachable: store.usable,
                checkedAt: store.checkedAt,
                errorKind: store.usable ? nil : store.lastError?.kind.description,
                publicKeysInMemory: store.usable ? nil : publicKeysInMemory()
            ),
            keystores: monitor.keystores.map {
                .init(
                    name: $0.name,
                    type: $0.type,
                    healthy: $0.healthy,
                    since: $0.since,
                    errorKind: $0.healthy ? nil : $0.lastError?.kind.description,
                    backendCode: $0.healthy ? nil : $0.lastError?.backendCode
                )
            }
        )
        return Response(
            status: status,
            headers: Self.headers,
            body: .init(byteBuffer: ByteBuffer(data: try APIJSON.encoder.encode(verbose)))
        )
    }
}
