import Hummingbird
import KeyBroker

/// The outermost responder: answers `GET|HEAD /livez` and `/readyz` before anything else
/// (load balancers probe often, and a string comparison is cheaper than a route lookup; this
/// is measured in benchmarks/run), takes the runtime's snapshot for every other request, and
/// turns the router's "no route" into the API's error shape: `405` with `Allow` for a known
/// path called with a method it does not serve, `404` otherwise.
///
/// The one call on the encryption path, `GET /v1/orgs/{org}/public-key`, is also answered
/// here when it can be answered from memory by a token allowed to: the router, its
/// middleware chain and the organization's child context cost about a quarter of the
/// request (benchmarks/public-key; docs/performance.md). Anything else about such a
/// request — no token or a certificate, a refusal (with its audit record), a malformed id,
/// a miss — goes through the router as any request does, so the fast path only ever gives
/// the answer the router would.
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
        let snapshot = runtime.snapshot
        if request.method == .get, let answer = publicKeyFromMemory(request, snapshot: snapshot) {
            runtime.metrics.request(
                route: Self.publicKeyRoute,
                method: "GET",
                status: Int(answer.status.code),
                duration: ContinuousClock.now - start
            )
            return answer
        }
        var context = context
        context.takenSnapshot = snapshot
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

    /// The router's label of the public-key route, for the request metrics.
    static var publicKeyRoute: String { "/v1/orgs/{org}/public-key" }

    /// The current public-key answer of `/v1/orgs/{org}/public-key` when it is in memory and the
    /// request's bearer token may read it (`recording:encrypt` or `encryption-key:view` for the
    /// organization, as the route requires); `nil` sends the request through the router.
    private func publicKeyFromMemory(_ request: Request, snapshot: RuntimeSnapshot) -> Response? {
        let path = request.uri.path.utf8
        let prefix = "/v1/orgs/".utf8
        let suffix = "/public-key".utf8
        guard path.count > prefix.count + suffix.count, path.starts(with: prefix), path.reversed().starts(with: suffix.reversed())
        else { return nil }
        let raw = path.dropFirst(prefix.count).dropLast(suffix.count)
        guard !raw.contains(UInt8(ascii: "/")), let organization = OrganizationID(String(decoding: raw, as: UTF8.self)),
            let authorization = request.headers[.authorization],
            let principal = snapshot.authenticator.authenticate(authorization: authorization),
            principal.may(.encrypt, for: organization) || principal.may(.viewKeys, for: organization),
            let entry = runtime.publicKeys.lookup(organization, countingMisses: false)
        else { return nil }
        return PublicKeyResponses.current(entry, to: request, snapshot: snapshot)
    }
}
