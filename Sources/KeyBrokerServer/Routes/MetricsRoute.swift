import Hummingbird
import NIOCore

/// `GET /metrics`: the Prometheus text exposition of ``ServerMetrics``, without auth (bind
/// the server to a network that only the scraper reaches, or put the scraper behind it).
struct MetricsRoute: Sendable {
    let metrics: ServerMetrics

    func collection() -> RouteCollection<KeyBrokerRequestContext> {
        let routes = RouteCollection(context: KeyBrokerRequestContext.self)
        let metrics = self.metrics
        routes.get("metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.render()))
            )
        }
        return routes
    }
}
