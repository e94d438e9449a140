import Foundation
import HTTPTypes
import Hummingbird
import KeyBroker
import NIOCore

/// The routes of the admin and data API, with their permission checks. The route table is
/// what the router serves and what the OpenAPI document is checked against.
public struct KeyBrokerAPI: Sendable {
    /// One route.
    public struct Route: Sendable {
        public let method: HTTPRequest.Method
        public let path: String
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response
    }

    /// Loads a candidate keystore sent to `POST /v1/orgs/{org}/test`.
    public typealias CandidateLoader = @Sendable (_ text: String) throws(ConfigError) -> (settings: KeystoreSettings, keystore: any Keystore)

    let runtime: BrokerRuntime
    let scheduler: RotationScheduler
    let audit: AuditLog
    let metrics: ServerMetrics
    let loadCandidate: CandidateLoader
    /// The probes, also answered ahead of the router.
    let probes: Probes
    /// The per-organization cap on generations through the API.
    let generationLimiter = GenerationLimiter()

    init(runtime: BrokerRuntime, scheduler: RotationScheduler, audit: AuditLog, metrics: ServerMetrics, loadCandidate: @escaping CandidateLoader) {
        self.runtime = runtime
        self.scheduler = scheduler
        self.audit = audit
        self.metrics = metrics
        self.loadCandidate = loadCandidate
        probes = Probes(monitor: runtime.monitor, strict: { runtime.broker.config.server.strictReadiness })
    }

    private var maxBody: Int { runtime.broker.config.server.maxRequestBytes }

    /// Every route the server answers.
    public var routes: [Route] {
        [
            Route(method: .get, path: "/livez") { probes.livez($0, $1) },
            Route(method: .head, path: "/livez") { probes.livez($0, $1) },
            Route(method: .get, path: "/readyz") { try probes.readyz($0, $1) },
            Route(method: .head, path: "/readyz") { try probes.readyz($0, $1) },
            Route(method: .get, path: "/metrics") { _, _ in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
            },
            Route(method: .get, path: "/v1/status", handler: status),
            Route(method: .post, path: "/v1/admin/reload", handler: reload),
            Route(method: .get, path: "/v1/orgs/{org}", handler: organization),
            Route(method: .get, path: "/v1/orgs/{org}/public-key", handler: publicKey),
            Route(method: .get, path: "/v1/orgs/{org}/keypairs", handler: keyPairs),
            Route(method: .post, path: "/v1/orgs/{org}/keypairs", handler: generate),
            Route(method: .post, path: "/v1/orgs/{org}/test", handler: test),
            Route(method: .post, path: "/v1/orgs/{org}/unwrap", handler: unwrap),
        ]
    }

    // MARK: auth

    private func principal(_ request: Request) async throws -> Principal {
        guard let principal = runtime.authenticator.authenticate(authorization: request.headers[.authorization]) else {
            await audit.note(.access, actor: "anonymous", result: .unauthenticated)
            throw APIError.unauthenticated
        }
        return principal
    }

    /// Authenticates and checks one of `permissions` for `organization` (`nil`: every organization).
    private func authorize(
        _ request: Request, _ permissions: [Permission], for organization: OrganizationID?
    ) async throws -> Principal {
        let principal = try await principal(request)
        guard permissions.contains(where: { principal.may($0, for: organization) }) else {
            await audit.note(.access, actor: principal.name, organization: organization, result: .denied)
            let scope = organization.map { "for organization '\($0)'" } ?? "for every organization"
            throw APIError(
                .forbidden, "forbidden",
                "token '\(principal.name)' lacks \(permissions.map(\.rawValue).joined(separator: " or ")) \(scope)")
        }
        return principal
    }

    private func organizationParameter(_ context: BasicRequestContext) throws -> OrganizationID {
        let raw = context.parameters.get("org") ?? ""
        guard let id = OrganizationID(raw) else {
            throw APIError.badRequest(OrganizationID.invalidMessage(raw))
        }
        return id
    }

    private func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(data: try APIJSON.encoder.encode(value))))
    }

    /// The request body, at most `server.maxRequestBytes` (413 in the API's error shape above).
    private func collect(_ request: Request) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: maxBody)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "the request body is larger than \(maxBody) bytes (server.maxRequestBytes)")
        }
    }

    private func body<T: Decodable>(_ request: Request, as type: T.Type) async throws -> T {
        let buffer = try await collect(request)
        do {
            return try APIJSON.decoder.decode(T.self, from: Data(buffer: buffer))
        } catch {
            throw APIError.badRequest("the request body is not the expected JSON: \(Self.describe(error))")
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

    /// Maps an error for the response to `principal`; one that the API has no shape for is
    /// logged here, since the answer says only "internal error; see the server log". A caller
    /// scoped to some organizations gets the redacted form (see ``APIError/init(_:redacted:)``).
    private func mapped(_ error: any Error, for principal: Principal) -> any Error {
        let answer: any Error
        if let error = error as? BrokerError {
            answer = APIError(error, redacted: principal.organizations != nil)
            if error.kind == .corruptRecord || error.kind == .storageFailed || error.kind == .auditFailed {
                runtime.logger.error("request failed", metadata: ["error": "\(error.message)"])
            }
        } else {
            answer = APIError.from(error)
        }
        if let api = answer as? APIError, api.code == "internal" {
            runtime.logger.error("internal error answering a request: \(error)")
        }
        return answer
    }

    private func broker<T>(for principal: Principal, _ body: (Broker) async throws(BrokerError) -> T) async throws -> T {
        do {
            return try await body(runtime.broker)
        } catch {
            throw mapped(error, for: principal)
        }
    }

    /// Writes the audit record of an operation that succeeded, before its answer leaves: when
    /// the record cannot be written, the answer is refused (503) instead.
    private func audited(
        _ event: AuditLog.Event, _ principal: Principal, organization: OrganizationID?, keyPairID: UUID? = nil,
        result: AuditLog.Result
    ) async throws {
        do {
            try await audit.record(event, actor: principal.name, organization: organization, keyPairID: keyPairID, result: result)
        } catch {
            throw mapped(BrokerError.auditFailed(error), for: principal)
        }
    }

    // MARK: handlers

    @Sendable func status(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let principal = try await principal(request)
        guard principal.permissions.contains(.viewKeys) else {
            await audit.note(.access, actor: principal.name, result: .denied)
            throw APIError(.forbidden, "forbidden", "token '\(principal.name)' lacks encryption-key:view")
        }
        // A token scoped to some organizations sees the keystores and only its organizations.
        let scope = principal.organizations
        return try json(try await statusView(filter: scope.map { scope in { scope.contains($0) } }, principal: principal))
    }

    /// The status view; with a `filter` (a scoped caller) only its organizations, the keystores
    /// they use, and no field that could name a file or another organization.
    func statusView(filter: ((OrganizationID) -> Bool)?, principal: Principal) async throws -> StatusView {
        let broker = runtime.broker
        let scan = try await self.broker(for: principal) { b throws(BrokerError) in try await b.currentKeyPairs() }
        let failures = scheduler.failuresByOrganization
        let time = runtime.now()
        let redacted = filter != nil
        let organizations = broker.organizationStatuses(pairs: scan.records, at: time).filter { filter?($0.organization) ?? true }
        // A token scoped to some organizations sees only the keystores they use: the others'
        // errors name other customers' keys.
        let visible = filter.map { _ in
            Set(organizations.flatMap { [$0.policy.keystore] + ($0.current.map { [$0.keystoreName] } ?? []) })
        }
        let keystores = runtime.monitor.keystores.filter { visible?.contains($0.name) ?? true }.map {
            // A keystore shared with other organizations: its messages and details may name
            // their encryption contexts and the server's files. A scoped token gets the kind
            // and the backend's code.
            StatusView.Keystore(
                name: $0.name, type: $0.type, healthy: $0.healthy, since: $0.since, checkedAt: $0.checkedAt,
                detail: redacted ? ($0.healthy ? "healthy" : "unhealthy: \($0.lastError?.kind.description ?? "unknown")") : $0.detail,
                latencyMs: $0.latency.milliseconds,
                error: $0.healthy ? nil : $0.lastError.map { error in redacted ? KeystoreErrorView(redacting: error) : KeystoreErrorView(error) })
        }
        let views = organizations.map { status -> StatusView.Organization in
            let failure = failures[status.organization]
            return StatusView.Organization(
                organization: status.organization.rawValue, keystore: status.policy.keystore, rotation: status.policy.rotation.rawValue,
                keyPairSpec: status.policy.keyPairSpec.rawValue, currentKeyPair: status.current.map { KeyPairView($0, current: true) },
                nextRotation: status.nextRotation, rotationDue: status.rotationDue, keystoreChanged: status.keystoreChanged,
                fallbackInUse: status.current != nil && status.rotationDue && failure != nil,
                lastRotationError: failure.map { redacted ? $0.redactedError : $0.error },
                nextRotationAttempt: failure?.nextAttempt)
        }
        let corrupt = scan.corrupt.filter { pair in filter.map { allowed in pair.organization.map(allowed) ?? false } ?? true }
        let store = runtime.monitor.store
        return StatusView(
            checkedAt: time,
            store: StatusView.Store(
                usable: store.usable, checkedAt: store.checkedAt,
                error: store.usable ? nil : store.lastError.map { redacted ? $0.kind.description : $0.message }),
            keystores: keystores, organizations: views,
            corruptKeyPairs: corrupt.map { pair in
                StatusView.CorruptKeyPair(
                    id: pair.keyPairID, organization: pair.organization?.rawValue,
                    problem: redacted ? "the stored record is damaged; the operator must restore it" : pair.problem)
            })
    }

    @Sendable func reload(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let principal = try await authorize(request, [.editKeys], for: nil)
        do {
            let result = try await runtime.reload { [audit] in
                do {
                    try await audit.record(.reload, actor: principal.name, result: .ok)
                } catch {
                    throw BrokerError.auditFailed(error)
                }
            }
            scheduler.runSoon()
            return try json(ReloadView(
                reloaded: true, changedOrganizations: result.changedOrganizations.map(\.rawValue),
                diagnostics: result.warnings.map(DiagnosticView.init)))
        } catch let error as ReloadInProgress {
            throw APIError(.conflict, "reload_in_progress", error.description)
        } catch let error as ConfigError {
            await audit.note(.reload, actor: principal.name, result: .failed, error: error)
            throw APIError(error)
        } catch let error as BrokerError {
            await audit.note(.reload, actor: principal.name, result: .failed, error: error)
            throw mapped(error, for: principal)
        }
    }

    @Sendable func organization(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try organizationParameter(context)
        let principal = try await authorize(request, [.viewKeys], for: id)
        let broker = runtime.broker
        let policy = broker.policy(for: id)
        let current: KeyPairRecord?
        do {
            current = try await broker.currentKeyPair(for: id)
        } catch where error.kind == .notFound {
            current = nil
        } catch {
            throw mapped(error, for: principal)
        }
        let failure = scheduler.failuresByOrganization[id]
        return try json(OrganizationView(
            organization: id.rawValue, keystore: policy.keystore, keystoreType: broker.config.keystores[policy.keystore]?.type ?? "unknown",
            rotation: policy.rotation.rawValue, keyPairSpec: policy.keyPairSpec.rawValue,
            currentKeyPair: current.map { KeyPairView($0, current: true) }, nextRotation: broker.nextRotation(for: id, current: current),
            lastRotationError: failure.map { principal.organizations != nil ? $0.redactedError : $0.error }))
    }

    @Sendable func publicKey(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try organizationParameter(context)
        let principal = try await authorize(request, [.encrypt, .viewKeys], for: id)
        let record = try await broker(for: principal) { b throws(BrokerError) in try await b.currentKeyPair(for: id) }
        return try json(PublicKeyView(record))
    }

    @Sendable func keyPairs(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try organizationParameter(context)
        let principal = try await authorize(request, [.viewKeys], for: id)
        let limit = try request.uri.queryParameters["limit"].map { value -> Int in
            guard let number = Int(value), (1...Broker.maximumHistoryPage).contains(number) else {
                throw APIError.badRequest("limit must be a whole number from 1 to \(Broker.maximumHistoryPage)")
            }
            return number
        } ?? 50
        let offset = try request.uri.queryParameters["offset"].map { value -> Int in
            guard let number = Int(value), number >= 0 else { throw APIError.badRequest("offset must be a whole number of 0 or more") }
            return number
        } ?? 0
        let pairs = try await broker(for: principal) { b throws(BrokerError) in try await b.history(for: id, limit: limit + 1, offset: offset) }
        let page = KeyPairPage(
            items: pairs.prefix(limit).map { KeyPairView($0.record, current: $0.isCurrent) },
            nextOffset: pairs.count > limit ? offset + limit : nil)
        return try json(page)
    }

    @Sendable func generate(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try organizationParameter(context)
        let principal = try await authorize(request, [.editKeys], for: id)
        let broker = runtime.broker
        let limit = broker.config.server.generationsPerOrganizationPerMinute
        let (limiter, metrics, audit, now) = (generationLimiter, self.metrics, self.audit, runtime.now)
        do {
            // Concurrent requests for one organization share one generation; only a new
            // generation counts against the per-minute cap.
            let (record, joined) = try await broker.generateKeyPairJoining(
                for: id, reason: .manual, requestedBy: "token:\(principal.name)",
                admit: { () throws(BrokerError) in
                    if let wait = limiter.acquire(id, limit: limit, now: now()) {
                        metrics.generationRateLimited()
                        throw BrokerError.rateLimited(
                            retryAfter: wait,
                            "organization '\(id)' had \(limit) new key pairs in the last minute (server.limits.generationsPerOrganizationPerMinute); try again in \(wait) s")
                    }
                },
                beforeCommit: { record throws(BrokerError) in
                    // Synced before the pair is committed: every stored pair has its audit line.
                    do {
                        try await audit.record(.generate, actor: principal.name, organization: id, keyPairID: record.id, result: .pending, durable: true)
                    } catch {
                        throw BrokerError.auditFailed(error)
                    }
                })
            scheduler.clearFailure(for: id)
            if joined {
                try await audited(.generate, principal, organization: id, keyPairID: record.id, result: .joined)
            } else {
                await audit.note(.generate, actor: principal.name, organization: id, keyPairID: record.id, result: .ok)
            }
            return try json(KeyPairView(record, current: true), status: .created)
        } catch let error as BrokerError {
            await audit.note(.generate, actor: principal.name, organization: id, result: .failed, error: error)
            throw mapped(error, for: principal)
        }
    }

    @Sendable func test(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try organizationParameter(context)
        let principal = try await authorize(request, [.editKeys], for: id)
        let buffer = try await collect(request)
        var candidate: (settings: KeystoreSettings, keystore: any Keystore)?
        if buffer.readableBytes > 0 {
            // A candidate makes the server call a backend of the caller's choosing: only
            // operators (edit for every organization) may send one. What the candidate may ask
            // for (no paths, no endpoint, no environment) each plugin decides (PluginContext.Origin.api).
            guard principal.may(.editKeys, for: nil) else {
                await audit.note(.access, actor: principal.name, organization: id, result: .denied)
                throw APIError(
                    .forbidden, "forbidden",
                    "testing a candidate keystore needs encryption-key:edit for every organization (\"*\"); token '\(principal.name)' may test the configured keystore only (send no body)")
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any] else {
                throw APIError.badRequest("the body must be a JSON object {\"keystore\": {\"type\": …}}, or empty to test the configured keystore")
            }
            guard let keystore = object["keystore"] as? [String: Any], object.count == 1,
                let data = try? JSONSerialization.data(withJSONObject: keystore)
            else {
                throw APIError.badRequest("the body must hold exactly one field, 'keystore': the candidate keystore's settings as under 'keystores:'")
            }
            do {
                candidate = try loadCandidate(String(decoding: data, as: UTF8.self))
            } catch {
                throw APIError(error)
            }
        }
        let redacted = principal.organizations != nil
        let broker = runtime.broker
        // A test generates a key pair through the keystore as "change key now" does: it
        // counts against the same per-organization cap, and is audited before it runs.
        if let wait = generationLimiter.acquire(id, limit: broker.config.server.generationsPerOrganizationPerMinute, now: runtime.now()) {
            metrics.generationRateLimited()
            throw mapped(
                BrokerError.rateLimited(
                    retryAfter: wait,
                    "organization '\(id)' had \(broker.config.server.generationsPerOrganizationPerMinute) key-pair generations or tests in the last minute (server.limits.generationsPerOrganizationPerMinute); try again in \(wait) s"),
                for: principal)
        }
        try await audited(.test, principal, organization: id, result: .pending)
        do {
            let report = try await broker.test(organization: id, candidate: candidate)
            await audit.note(.test, actor: principal.name, organization: id, result: report.passed ? .passed : .failed)
            return try json(TestReportView(report, redacted: redacted))
        } catch let error as BrokerError {
            await audit.note(.test, actor: principal.name, organization: id, result: .failed, error: error)
            throw mapped(error, for: principal)
        }
    }

    @Sendable func unwrap(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = try organizationParameter(context)
        let principal = try await authorize(request, [.decrypt], for: id)
        let body = try await body(request, as: UnwrapRequest.self)
        guard let pairID = UUID(uuidString: body.keyPairId) else {
            throw APIError.badRequest("keyPairId must be a UUID, found '\(DisplayText.escaped(String(body.keyPairId.prefix(64))))'")
        }
        guard let wrapped = Data(base64Encoded: body.wrappedKey), !wrapped.isEmpty else {
            throw APIError.badRequest("wrappedKey must be the base64 RSA-OAEP-SHA256 ciphertext of the data key")
        }
        var dataKey: Data
        do {
            dataKey = try await runtime.broker.unwrapDataKey(for: id, keyPairID: pairID, wrappedDataKey: wrapped)
        } catch {
            await audit.note(.unwrap, actor: principal.name, organization: id, keyPairID: pairID, result: .failed, error: error)
            throw mapped(error, for: principal)
        }
        defer { PrivateKeyMaterial.wipe(&dataKey) }
        // The data key leaves only once its audit record is written.
        try await audited(.unwrap, principal, organization: id, keyPairID: pairID, result: .ok)
        return try json(UnwrapResponse(dataKey: dataKey.base64EncodedString()))
    }
}
