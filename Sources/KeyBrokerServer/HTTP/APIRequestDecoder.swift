import Foundation
public import Hummingbird
import NIOCore
import NIOFoundationCompat

/// Decodes request bodies, refusing in the API's error shape: a body over the context's
/// limit (`server.maxRequestBytes`) is `413 body_too_large`, a body that is not the expected
/// JSON `400 bad_request` naming the field.
public struct APIRequestDecoder: RequestDecoder {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let buffer = try await Self.collect(request, upTo: context.maxUploadSize)
        do {
            return try APIJSON.decoder.decode(T.self, from: Data(buffer: buffer))
        } catch {
            throw APIError.badRequest("the request body is not the expected JSON: \(Self.describe(error))")
        }
    }

    /// The whole body, at most `limit` bytes.
    /// - Parameter limitName: what sets the limit, for the refusal.
    static func collect(_ request: Request, upTo limit: Int, limitName: String = "server.maxRequestBytes") async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "the request body is larger than \(limit) bytes (\(limitName))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: "malformed JSON"
        }
    }
}
