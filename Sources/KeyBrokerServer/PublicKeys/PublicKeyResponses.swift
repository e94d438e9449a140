import HTTPTypes
import Hummingbird
import KeyBroker
import NIOCore

/// Public-key answers with their validators: `ETag` (the pair id), `Cache-Control` from
/// `server.publicKeyMaxAge` for the current pair and "immutable" for a pair by id, and `304`
/// with no body for an `If-None-Match` that names the answer's ETag.
enum PublicKeyResponses {
    /// A year: what "never changes" is written as (RFC 9111 §5.2.2.1 recommends no more).
    static let immutable = "private, max-age=31536000, immutable"

    /// `Cache-Control` for the current pair's answer.
    static func cacheControl(maxAge: Duration) -> String {
        let seconds = maxAge.components.seconds
        return seconds <= 0 ? "no-store" : "private, max-age=\(seconds)"
    }

    /// The answer, or `304 Not Modified` when the request's `If-None-Match` names `etag`.
    static func respond(
        to request: Request,
        etag: String,
        cacheControl: String,
        body: () throws -> ByteBuffer
    ) rethrows -> Response {
        var headers: HTTPFields = [.eTag: etag, .cacheControl: cacheControl]
        if let condition = request.headers[.ifNoneMatch], matches(condition, etag: etag) {
            // No body and no Content-Length (RFC 9110 §8.6: a 304's would have to be the 200's).
            var response = Response(status: .notModified, headers: headers)
            response.headers[.contentLength] = nil
            return response
        }
        headers[.contentType] = "application/json"
        let bytes = try body()
        headers[.contentLength] = String(bytes.readableBytes)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: bytes))
    }

    /// The current pair's answer from its entry, with the snapshot's `Cache-Control`: the same
    /// for the router's route and for ``KeyBrokerResponder``'s answer from memory.
    static func current(_ entry: CachedPublicKey, to request: Request, snapshot: RuntimeSnapshot) -> Response {
        respond(to: request, etag: entry.etag, cacheControl: snapshot.publicKeyCacheControl) {
            entry.body(allocator: allocator)
        }
    }

    static let allocator = ByteBufferAllocator()

    /// Whether an `If-None-Match` field names `etag` (RFC 9110 §13.1.2: `*`, or a list of
    /// entity tags compared weakly, so `W/"x"` matches `"x"`).
    static func matches(_ field: String, etag: String) -> Bool {
        // The field's length is bounded by the HTTP parser (80 KiB of headers). Walked as
        // bytes: Foundation's trimming costs more than the rest of a 304.
        let tag = etag.utf8
        for candidate in field.utf8.split(separator: UInt8(ascii: ",")) {
            var start = candidate.startIndex
            var end = candidate.endIndex
            while start < end, candidate[start] == UInt8(ascii: " ") || candidate[start] == UInt8(ascii: "\t") {
                start = candidate.index(after: start)
            }
            while end > start {
                let last = candidate.index(before: end)
                guard candidate[last] == UInt8(ascii: " ") || candidate[last] == UInt8(ascii: "\t") else { break }
                end = last
            }
            var value = candidate[start..<end]
            if value.elementsEqual("*".utf8) { return true }
            if value.starts(with: "W/".utf8) { value = value.dropFirst(2) }
            if value.elementsEqual(tag) { return true }
        }
        return false
    }
}
