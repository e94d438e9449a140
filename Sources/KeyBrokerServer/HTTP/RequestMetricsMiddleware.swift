import Hummingbird

/// Counts requests and their latency by route template and status.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The route label of requests no route matched (404, 405), counted by ``KeyBrokerResponder``.
    static var unmatchedRoute: String { "unmatched" }

    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let clock = ContinuousClock()
        let start = clock.now
        let route = context.endpointPath ?? Self.unmatchedRoute
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
