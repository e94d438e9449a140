import Hummingbird
import NIOCore

/// The outermost responder: answers `GET|HEAD /livez` and `/readyz` before anything else
/// (load balancers probe often, and a string comparison is cheaper than a route lookup; this
/// is measured in benchmarks/run), takes the runtime's snapshot for every other request, and
/// turns the router's "no route" into the API's error shape: `405` with `Allow` for a known
/// path called with a method it does not serve, `404` otherwise.
struct KeyBrokerResponder<Router: HTTPResponder>: HTTPResponder where Router.Context == KeyBrokerRequestContext {
    let runtime: BrokerRuntime
    let probes: Probes
    let router: Router
    let routes: RouteIndex

    func respond(to request: Request, context: KeyBrokerRequestContext) async throws -> Response {
        if request.method == .get || request.method == .head {
            switch request.uri.path {
            case "/livez": return probes.livez(request, context)
            case "/readyz": return try probes.readyz(request, context)
            default: break
            }
        }
        let start = ContinuousClock.now
        var context = context
        context.takenSnapshot = runtime.snapshot
        let response = try await router.respond(to: request, context: context)
        // Hummingbird's router marks a request that matched no route (path and method). Such
        // requests never reach the router's middleware, so they are counted here.
        guard context.endpointPath == "NotFound" else { return response }
        let unmatched = try routes.unmatched(request).response(from: request, context: context)
        runtime.metrics.request(
            route: RequestMetricsMiddleware<KeyBrokerRequestContext>.unmatchedRoute,
            method: request.method.rawValue,
            status: Int(unmatched.status.code),
            duration: ContinuousClock.now - start
        )
        return unmatched
    }
}

/// The served routes by path, for telling "no such path" (404) from "no such method" (405).
struct RouteIndex: Sendable {
    private let routes: [(components: [RouterPath.Element], method: HTTPRequest.Method)]

    init<Context>(_ router: Hummingbird.Router<Context>) {
        routes = router.routes.map { ($0.path.components, $0.method) }
    }

    /// The error for a request no route matched.
    func unmatched(_ request: Request) -> APIError {
        let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: true)
        let methods = Set(
            routes.filter { route in
                route.components.count == segments.count && zip(route.components, segments).allSatisfy { $0 ~= $1 }
            }.map(\.method.rawValue)
        )
        guard methods.isEmpty else {
            let allow = methods.sorted().joined(separator: ", ")
            return APIError(
                .methodNotAllowed,
                "method_not_allowed",
                "\(request.method.rawValue) is not served at this path; it serves \(allow)",
                headers: [.allow: allow]
            )
        }
        return APIError(
            .notFound,
            "not_found",
            "no such route: \(request.method.rawValue) \(request.uri.path.prefix(200)); the routes are in docs/openapi.yaml"
        )
    }
}
