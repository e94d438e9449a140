import HTTPTypes
import Hummingbird
import KeyBroker
import NIOCore

/// Public-key answers with their validators: `ETag` (the pair id), `Cache-Control` from
/// `server.publicKeyMaxAge` for the current pair and "immutable" for a pair by id, and `304`
/// with no body for an `If-None-Match` that names the answer's ETag.
enum PublicKeyResponses {
    /// A year: what "never changes" is written as (RFC 9111 §5.2.2.1 recommends no more).
    static let immutable = HTTPField(name: .cacheControl, value: "private, max-age=31536000, immutable")

    /// `Cache-Control` for the current pair's answer (made once per configuration: a field
    /// checks its value's bytes when it is made).
    static func cacheControl(maxAge: Duration) -> HTTPField {
        let seconds = maxAge.components.seconds
        return HTTPField(name: .cacheControl, value: seconds <= 0 ? "no-store" : "private, max-age=\(seconds)")
    }

    /// The answer, or `304 Not Modified` when the request's `If-None-Match` names `etag`.
    static func respond(
        to request: Request,
        etag: String,
        cacheControl: HTTPField,
        body: () throws -> ByteBuffer
    ) rethrows -> Response {
        var headers = HTTPFields()
        headers.reserveCapacity(4)
        headers.append(HTTPField(name: .eTag, value: etag))
        headers.append(cacheControl)
        if let condition = request.headers[.ifNoneMatch], matches(condition, etag: etag) {
            // No body and no Content-Length (RFC 9110 §8.6: a 304's would have to be the 200's).
            var response = Response(status: .notModified, headers: headers)
            response.headers[.contentLength] = nil
            return response
        }
        headers.append(HTTPField(name: .contentType, value: "application/json"))
        let bytes = try body()
        headers.append(HTTPField(name: .contentLength, value: String(bytes.readableBytes)))
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
        // slices of its bytes, without splitting into an array or trimming with Foundation:
        // on a 304 the rest of the request costs little more than an allocation would.
        let bytes = field.utf8
        let tag = etag.utf8
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = bytes.startIndex
        while true {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
            var value = bytes[start..<end]
            while let first = value.first, isBlank(first) { value = value.dropFirst() }
            while let last = value.last, isBlank(last) { value = value.dropLast() }
            if value.elementsEqual("*".utf8) { return true }
            if value.starts(with: "W/".utf8) { value = value.dropFirst(2) }
            if value.elementsEqual(tag) { return true }
            guard end < bytes.endIndex else { return false }
            start = bytes.index(after: end)
        }
    }
}
