import Foundation
public import Hummingbird
import NIOFoundationCompat

/// Encodes every JSON answer of the API: sorted keys, ISO 8601 dates, and
/// `Cache-Control: no-store` (answers carry tokens' views and, for unwraps, data keys).
public struct APIResponseEncoder: ResponseEncoder {
    public init() {}

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        let data = try APIJSON.encoder.encode(value)
        return Response(
            status: .ok,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(data: data))
        )
    }
}
