import AsyncHTTPClient
import CoreMetrics
import Foundation
import KeyBroker
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// The KMS JSON 1.1 protocol over AsyncHTTPClient, signed with SigV4.
final class KMSClient: Sendable {
    let endpoint: URL
    let signer: SigV4Signer
    let credentials: any AWSCredentialProvider
    let retry: KMSRetryPolicy
    /// Shared by every call through this client, the scheduler's and the API's alike.
    let quota: KMSRetryQuota
    let breaker: KMSCircuitBreaker
    let limiter: KMSCallLimiter
    private let metrics: KMSClientMetrics
    private let http: HTTPClient

    /// One client for every KMS keystore: no redirects (a KMS endpoint never redirects, and
    /// requests carry key material), a short connect timeout so that retries get a chance
    /// within the total deadline, and a read timeout for a connection that goes silent. The
    /// deadline of a whole exchange, head and body, is ``call(_:_:)``'s. It lives for the process.
    static let sharedHTTP = makeClient(tls: nil)

    /// A client like ``sharedHTTP`` that trusts only `authorities` (`caFile:`, for an endpoint
    /// behind a private CA), one per distinct set of CA certificates for the process's life:
    /// they come from configuration files only, so there are as many as files ever loaded.
    static func http(trusting authorities: [NIOSSLCertificate]) -> HTTPClient {
        // Keyed by the certificates' DER; a set that cannot be serialized gets a key of its own
        // (its client is kept too: clients are never shut down, so none may be dropped).
        var key = authorities.compactMap { try? $0.toDERBytes() }
        if key.count != authorities.count { key.append(Array(UUID().uuidString.utf8)) }
        return privateCAClients.withLockedValue { clients in
            if let client = clients[key] { return client }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.trustRoots = .certificates(authorities)
            let client = makeClient(tls: tls)
            clients[key] = client
            return client
        }
    }

    /// A client with KMS's settings, and `tls` where it trusts other CAs than the system's.
    private static func makeClient(tls: TLSConfiguration?) -> HTTPClient {
        HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(
                tlsConfiguration: tls,
                redirectConfiguration: .disallow,
                timeout: .init(connect: .seconds(2), read: .seconds(10)),
                ignoreUncleanSSLShutdown: false
            )
        )
    }

    private static let privateCAClients = NIOLockedValueBox<[[[UInt8]]: HTTPClient]>([:])

    init(
        endpoint: URL,
        region: String,
        credentials: any AWSCredentialProvider,
        retry: KMSRetryPolicy,
        breaker: KMSCircuitBreaker.Settings = .default,
        concurrency: KMSCallLimiter.Settings = .default,
        metrics: KMSClientMetrics,
        http: HTTPClient = KMSClient.sharedHTTP
    ) {
        self.endpoint = endpoint
        self.signer = SigV4Signer(service: "kms", region: region)
        self.credentials = credentials
        self.retry = retry
        self.quota = KMSRetryQuota(capacity: retry.quota)
        self.breaker = KMSCircuitBreaker(settings: breaker)
        self.limiter = KMSCallLimiter(settings: concurrency)
        self.metrics = metrics
        self.http = http
    }

    deinit {
        // A client dropped with its breaker open (a reload, an evicted tenant keystore)
        // leaves the count of open breakers.
        if breaker.isOpen { metrics.breakersOpen.decrement() }
    }

    /// Calls `TrentService.<operation>`: through the breaker, within the limit of calls in
    /// flight, with retries the quota allows, and all of it — every attempt's connection,
    /// head and body, and the waits — within ``KMSRetryPolicy/totalTimeout``.
    func call<Request, Response>(_ operation: KMSOperation<Request, Response>, _ request: Request) async throws(KMSError) -> Response {
        let body: Data
        do {
            body = try JSONEncoder().encode(request)
        } catch {
            throw KMSError(code: "EncodingFailed", message: "\(error)", status: nil, attempts: 0)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + retry.totalTimeout
        let probing: Bool
        switch breaker.admit() {
        case .call: probing = false
        case .probe: probing = true
        case .rejected(let lastError, _, _):
            metrics.rejectedOpen.increment()
            // The same words for every call while it is open (tenants' errors are recorded once
            // per distinct message), and no status: KMS did not answer this call.
            throw KMSError(
                code: lastError.code,
                message:
                    "not called: KMS failed \(breaker.settings.failureThreshold) or more times in a row, so calls fail fast for \(breaker.settings.openFor.readable) at a time until a probe succeeds (circuitBreaker). Last failure: \(lastError.message)",
                status: nil,
                attempts: 0,
                retryable: false
            )
        }
        guard await limiter.acquire(waitingUntil: min(deadline, clock.now + limiter.settings.maxWait)) else {
            metrics.busy.increment()
            if probing { breaker.abandonProbe() }  // no answer either way: the next call probes
            throw KMSError(
                code: "KeystoreBusy",
                message:
                    "not called: \(limiter.settings.maxCalls) calls to this KMS key are in flight already and none finished within \(limiter.settings.maxWait.readable) (concurrency.maxCalls, concurrency.maxWait)",
                status: nil,
                attempts: 0,
                retryable: false
            )
        }
        metrics.inFlight.increment()
        defer {
            metrics.inFlight.decrement()
            limiter.release()
        }
        var attempt = 0
        var refund = 0
        while true {
            attempt += 1
            let data: Data
            do {
                data = try await exchange(operation.name, body: body, attempt: attempt, deadline: deadline)
            } catch {
                // Every outcome tells the breaker something, or gives its probe back: a probe
                // that recorded nothing would leave it half-open for good.
                if error.isRetryable {
                    record(breaker.recordFailure(error))
                } else if error.isAnswer {
                    record(breaker.recordSuccess())  // KMS answered (access denied, a bad ciphertext, …): it is up
                } else if probing {
                    breaker.abandonProbe()  // no word from KMS either way (cancelled, no time left)
                }
                guard error.isRetryable, !probing, attempt < retry.maxAttempts, !breaker.isOpen else { throw error }
                // Full jitter: sleep a random time up to the capped exponential backoff.
                let cap = min(retry.maxDelay, retry.baseDelay * (1 << min(attempt - 1, 20)))
                let sleep = Duration.milliseconds(Int.random(in: 0...max(Int(cap.milliseconds), 0)))
                guard clock.now + sleep < deadline else { throw error }
                guard quota.capacity > 0 else { throw error }  // retries.quota: 0 turns them off
                guard let cost = quota.acquireRetry(after: error) else {
                    metrics.quotaExhausted.increment()
                    throw error.annotated("not retried: the retry quota of this keystore is used up (retries.quota)")
                }
                refund += cost
                metrics.retries.increment()
                do {
                    try await Task.sleep(for: sleep)
                } catch {
                    quota.refund(cost)
                    throw KMSError(
                        code: "Cancelled",
                        message: "KMS \(operation.name) was cancelled",
                        status: nil,
                        attempts: attempt,
                        retryable: false
                    )
                }
                continue
            }
            record(breaker.recordSuccess())
            quota.recordSuccess(refunding: refund)
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

    private func record(_ transition: KMSCircuitBreaker.Transition?) {
        switch transition {
        case .opened:
            metrics.breakerOpened.increment()
            metrics.breakersOpen.increment()
        case .closed: metrics.breakersOpen.decrement()
        case nil: break
        }
    }

    /// One attempt, bounded by `requestTimeout` and the call's deadline from the first byte
    /// sent to the last byte read. AsyncHTTPClient's own deadline ends once the head has
    /// arrived, and its read timeout restarts with every byte, so a body trickled a byte a
    /// second would otherwise hold the caller for as long as the server likes.
    private func exchange(
        _ operation: String,
        body: Data,
        attempt: Int,
        deadline: ContinuousClock.Instant
    ) async throws(KMSError)
        -> Data
    {
        let now = ContinuousClock.now
        let requestDeadline = now + retry.requestTimeout
        let bound = min(deadline, requestDeadline)
        guard bound > now else {
            // KMS was not contacted: nothing for the breaker, no retry.
            throw KMSError(
                code: "Timeout",
                message: "no time left within totalTimeout (\(retry.totalTimeout.readable)) for another attempt at KMS \(operation)",
                status: nil,
                attempts: attempt,
                retryable: false
            )
        }
        // AsyncHTTPClient's own deadline (for the head) ends a little earlier, so that a failure
        // it knows more about — a refused connection it kept retrying until then — is
        // reported as what it is rather than as this bound's plain timeout.
        let headDeadline = bound - min(.milliseconds(100), (bound - now) / 10)
        let result = await Deadline.run(until: bound) { () async -> Result<Data, KMSError> in
            do throws(KMSError) {
                return .success(try await self.send(operation, body: body, timeout: headDeadline - .now, attempt: attempt))
            } catch {
                return .failure(error)
            }
        }
        guard let result else {
            if Task.isCancelled {
                // The caller gave up (a health check's own deadline, a client gone): not a
                // failure of KMS, so neither the breaker nor the quota hears of it.
                throw KMSError(
                    code: "Cancelled",
                    message: "KMS \(operation) was cancelled",
                    status: nil,
                    attempts: attempt,
                    retryable: false
                )
            }
            let limit =
                requestDeadline <= deadline
                ? "requestTimeout (\(retry.requestTimeout.readable))" : "totalTimeout (\(retry.totalTimeout.readable))"
            throw KMSError(
                code: "Timeout",
                message: "KMS at \(endpoint.absoluteString) did not finish answering \(operation) within \(limit)",
                status: nil,
                attempts: attempt
            )
        }
        return try result.get()
    }

    /// One HTTP exchange; ``exchange(_:body:attempt:deadline:)`` bounds it and has checked
    /// that time is left.
    private func send(_ operation: String, body: Data, timeout: Duration, attempt: Int) async throws(KMSError) -> Data {
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
            // A certificate that does not verify stays so on a retry: said at once, with what to set.
            // (Other TLS failures, a reset mid-handshake say, stay retryable connection failures.)
            if Self.isCertificateRejection(error) {
                throw KMSError(
                    code: "TLSCertificateRejected",
                    message: "the TLS certificate of KMS at \(endpoint.absoluteString) was refused: \(error)",
                    status: nil,
                    attempts: attempt,
                    retryable: false
                )
            }
            let timedOut = [HTTPClientError.deadlineExceeded, .connectTimeout, .readTimeout, .writeTimeout]
                .contains { (error as? HTTPClientError) == $0 }
            let code = timedOut ? "Timeout" : "ConnectionFailed"
            throw KMSError(code: code, message: "cannot reach KMS at \(endpoint.absoluteString): \(error)", status: nil, attempts: attempt)
        }
    }

    /// Whether `error` says the endpoint's certificate did not verify (chain or host name).
    static func isCertificateRejection(_ error: any Error) -> Bool {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname { return true }
        return String(describing: error).contains("CERTIFICATE_VERIFY_FAILED")
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
