import Hummingbird

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
