import Hummingbird

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
