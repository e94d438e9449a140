import AsyncHTTPClient
import Foundation
import KeyBroker
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The KMS JSON 1.1 protocol over AsyncHTTPClient, signed with SigV4.
final class KMSClient: Sendable {
    let endpoint: URL
    let signer: SigV4Signer
    let credentials: any AWSCredentialProvider
    let retry: KMSRetryPolicy
    private let http: HTTPClient

    /// One client for every KMS keystore: no redirects (a KMS endpoint never redirects, and
    /// requests carry key material), a short connect timeout so that retries get a chance
    /// within the total deadline, and a read timeout (the request timeout stops counting once
    /// the headers arrived, so a stalled body would otherwise hang). It lives for the process.
    static let sharedHTTP = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(2), read: .seconds(10)),
            ignoreUncleanSSLShutdown: false
        )
    )

    init(
        endpoint: URL,
        region: String,
        credentials: any AWSCredentialProvider,
        retry: KMSRetryPolicy,
        http: HTTPClient = KMSClient.sharedHTTP
    ) {
        self.endpoint = endpoint
        self.signer = SigV4Signer(service: "kms", region: region)
        self.credentials = credentials
        self.retry = retry
        self.http = http
    }

    /// Calls `TrentService.<operation>` with retries.
    func call<Request, Response>(_ operation: KMSOperation<Request, Response>, _ request: Request) async throws(KMSError) -> Response {
        let body: Data
        do {
            body = try JSONEncoder().encode(request)
        } catch {
            throw KMSError(code: "EncodingFailed", message: "\(error)", status: nil, attempts: 0)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + retry.totalTimeout
        var attempt = 0
        while true {
            attempt += 1
            let remaining = deadline - clock.now
            let data: Data
            do {
                data = try await send(operation.name, body: body, timeout: min(retry.requestTimeout, remaining), attempt: attempt)
            } catch {
                guard error.isRetryable, attempt < retry.maxAttempts else { throw error }
                // Full jitter: sleep a random time up to the capped exponential backoff.
                let cap = min(retry.maxDelay, retry.baseDelay * (1 << (attempt - 1)))
                let sleep = Duration.milliseconds(Int.random(in: 0...max(Int(cap.milliseconds), 0)))
                guard clock.now + sleep < deadline else { throw error }
                do {
                    try await Task.sleep(for: sleep)
                } catch {
                    throw KMSError(code: "Cancelled", message: "KMS \(operation.name) was cancelled", status: nil, attempts: attempt)
                }
                continue
            }
            do {
                return try JSONDecoder().decode(Response.self, from: data)
            } catch {
                throw KMSError(
                    code: "InvalidResponse",
                    message: "KMS \(operation.name) answered with an unexpected body (\(error))",
                    status: 200,
                    attempts: attempt
                )
            }
        }
    }

    private func send(_ operation: String, body: Data, timeout: Duration, attempt: Int) async throws(KMSError) -> Data {
        guard timeout > .zero else {
            throw KMSError(code: "Timeout", message: "no time left for another attempt at KMS \(operation)", status: nil, attempts: attempt)
        }
        let creds: AWSCredentials
        do {
            // A shared credentials file is read for each request: off the cooperative pool.
            let provider = credentials
            creds = try await BlockingWork.io { () throws(AWSCredentialError) in try provider.credentials() }
        } catch {
            throw KMSError(code: "MissingCredentials", message: error.description, status: 403, attempts: attempt)
        }
        let host = endpoint.port.map { "\(endpoint.host ?? ""):\($0)" } ?? (endpoint.host ?? "")
        let headers = [
            ("Host", host), ("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "TrentService.\(operation)"),
        ]
        let path = endpoint.path.isEmpty ? "/" : endpoint.path
        let signed = signer.sign(method: "POST", path: path, headers: headers, body: body, credentials: creds, date: Date())
        var request = HTTPClientRequest(url: endpoint.absoluteString)
        request.method = .POST
        for (name, value) in headers + signed { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: body))
        let millis = Int64(timeout.milliseconds)
        do {
            let response = try await http.execute(request, timeout: .milliseconds(max(millis, 1)))
            let buffer: ByteBuffer
            do {
                buffer = try await response.body.collect(upTo: Self.maximumResponseBytes)
            } catch is NIOTooManyBytesError {
                // Not a transport failure: KMS answered, with something no KMS answer is.
                throw KMSError(
                    code: "InvalidResponse",
                    message:
                        "KMS \(operation) answered with a body larger than the \(Self.maximumResponseBytes / 1024) KiB limit; no KMS answer is that large, so the endpoint is not a KMS or is misbehaving",
                    status: Int(response.status.code),
                    attempts: attempt,
                    retryable: false
                )
            }
            let data = Data(buffer: buffer)
            guard (200..<300).contains(Int(response.status.code)) else {
                throw Self.parseError(
                    status: Int(response.status.code),
                    body: data,
                    headerType: response.headers.first(name: "x-amzn-ErrorType"),
                    attempts: attempt
                )
            }
            return data
        } catch let error as KMSError {
            throw error
        } catch {
            let timedOut = [HTTPClientError.deadlineExceeded, .connectTimeout, .readTimeout, .writeTimeout]
                .contains { (error as? HTTPClientError) == $0 }
            let code = timedOut ? "Timeout" : "ConnectionFailed"
            throw KMSError(code: code, message: "cannot reach KMS at \(endpoint.absoluteString): \(error)", status: nil, attempts: attempt)
        }
    }

    /// The largest answer read from KMS; its largest real answers (a data key pair) are a few KiB.
    static let maximumResponseBytes = 1 << 20

    /// Reads `{"__type": "prefix#Code:suffix", "message"|"Message": "…"}` and the
    /// `x-amzn-ErrorType` header, or the XML error document some endpoints send for
    /// authentication failures. The body's type wins over the header's; both go through
    /// ``errorCode(_:)``.
    static func parseError(status: Int, body: Data, headerType: String?, attempts: Int) -> KMSError {
        var code = headerType.flatMap(errorCode)
        var message: String?
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] {
            if let type = (object["__type"] as? String).flatMap(errorCode) { code = type }
            message = (object["message"] as? String) ?? (object["Message"] as? String)
        } else if let text = String(data: body, encoding: .utf8), text.contains("<") {
            code = xmlElement("Code", in: text).flatMap(errorCode) ?? code
            message = xmlElement("Message", in: text)
        }
        // The message goes into logs and answers: bounded, and with control characters escaped.
        let shown = message.map { DisplayText.escaped(String($0.prefix(1024))) }
        return KMSError(
            code: code ?? "HTTP\(status)",
            message: shown ?? "KMS answered HTTP \(status) without an error message",
            status: status,
            attempts: attempts
        )
    }

    /// The error code in an AWS JSON error type, which may carry a namespace before `#` and
    /// a URI after `:` (`com.amazon.coral.service#ThrottlingException:http://internal…`):
    /// the part between them, or `nil` when nothing usable is left (`#`, `:x`, white space).
    static func errorCode(_ raw: String) -> String? {
        var code = Substring(raw)
        if let hash = code.lastIndex(of: "#") { code = code[code.index(after: hash)...] }
        if let colon = code.firstIndex(of: ":") { code = code[..<colon] }
        let trimmed = code.trimmingCharacters(in: .whitespacesAndNewlines)
        // A code is a name: letters, digits, '.', '_' and '-', at most 128 of them.
        guard !trimmed.isEmpty, trimmed.count <= 128,
            trimmed.unicodeScalars.allSatisfy({
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0))
            })
        else { return nil }
        return trimmed
    }

    private static func xmlElement(_ name: String, in text: String) -> String? {
        guard let start = text.range(of: "<\(name)>"), let end = text.range(of: "</\(name)>", range: start.upperBound..<text.endIndex)
        else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }
}
