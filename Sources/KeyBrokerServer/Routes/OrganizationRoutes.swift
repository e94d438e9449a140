import Foundation
import Hummingbird
import HummingbirdAuth
import KeyBroker
import NIOCore
import NIOFoundationEssentialsCompat

/// `/v1/orgs/{org}/…`: an organization's configuration, public key, key pairs, tests and
/// unwraps. The organization comes parsed in ``OrganizationRequestContext``; each route
/// declares its permission once, with ``RequirePermission``.
struct OrganizationRoutes: Sendable {
    let runtime: BrokerRuntime
    let scheduler: RotationScheduler
    let support: RouteSupport
    let metrics: ServerMetrics
    let loadCandidate: KeyBrokerServer.CandidateLoader
    let generationLimiter: GenerationLimiter

    /// The largest candidate a test accepts: a keystore's settings are a few hundred bytes.
    static let maximumCandidateBytes = 16 * 1024

    /// The routes, relative to `/v1/orgs/{org}`.
    func collection() -> RouteCollection<OrganizationRequestContext> {
        let routes = RouteCollection(context: OrganizationRequestContext.self)
        let audit = support.audit
        routes.group().add(middleware: RequirePermission<OrganizationRequestContext>([.viewKeys], for: .organization, audit: audit))
            .get(use: organization)
            .get("keypairs", use: keyPairs)
        routes.group().add(
            middleware: RequirePermission<OrganizationRequestContext>([.encrypt, .viewKeys], for: .organization, audit: audit)
        )
        .get("public-key", use: publicKey)
        .get("keypairs/{id}", use: keyPairPublicKey)
        routes.group().add(middleware: RequirePermission<OrganizationRequestContext>([.editKeys], for: .organization, audit: audit))
            .post("keypairs", use: generate)
            .post("test", use: test)
            .post("revoke", use: revoke)
            .post("restore", use: restore)
        routes.group().add(middleware: RequirePermission<OrganizationRequestContext>([.decrypt], for: .organization, audit: audit))
            .post("unwrap", use: unwrap)
        return routes
    }

    // MARK: reads

    @Sendable func organization(_ request: Request, _ context: OrganizationRequestContext) async throws -> OrganizationView {
        let principal = try context.requireIdentity()
        let broker = context.snapshot.broker
        let id = context.organizationID
        let policy: OrganizationPolicy
        let current: KeyPairRecord?
        let revocation: Revocation?
        do {
            policy = try await broker.resolvedPolicy(for: id)
            current = try await broker.store.current(for: id)
            revocation = try await broker.revocation(of: id)
        } catch let error as StoreError {
            throw support.mapped(BrokerError.storage(error), for: principal)
        } catch {
            throw support.mapped(error, for: principal)
        }
        let failure = scheduler.failuresByOrganization[id]
        return OrganizationView(
            organization: id.rawValue,
            keystore: policy.keystore,
            keystoreType: broker.config.keystores[policy.keystore]?.type
                ?? TenantKeystoreTemplate.type(ofInstanceName: policy.keystore) ?? "unknown",
            rotation: policy.rotation.rawValue,
            keyPairSpec: policy.keyPairSpec.rawValue,
            currentKeyPair: current.map { KeyPairView($0, current: true) },
            nextRotation: broker.nextRotation(policy: policy, current: current),
            lastRotationError: failure.map { APIError.rotationError($0, redacted: principal.seesRedacted) },
            revoked: revocation.map { RevocationView(id, revocation: $0, changed: nil) }
        )
    }

    // MARK: revocation

    /// The kill switch: from the answer on, no private key of the organization is used on
    /// this replica; the others follow within a second. The audit record comes first.
    @Sendable func revoke(_ request: Request, _ context: OrganizationRequestContext) async throws -> RevocationView {
        try await changeRevocation(context, revoke: true)
    }

    /// Lifting a revocation needs edit for every organization: the revocation may be the
    /// answer to the organization's own credentials being stolen, so its own token must not lift it.
    @Sendable func restore(_ request: Request, _ context: OrganizationRequestContext) async throws -> RevocationView {
        let principal = try context.requireIdentity()
        guard principal.may(.editKeys, for: nil) else {
            await support.audit.note(.access, actor: principal.name, organization: context.organizationID, result: .denied)
            throw APIError(
                .forbidden,
                "forbidden",
                "restoring a revoked organization needs encryption-key:edit for every organization (\"*\"), which token '\(principal.name)' lacks: a revocation may answer the organization's own credentials being stolen; ask the platform's operator"
            )
        }
        return try await changeRevocation(context, revoke: false)
    }

    private func changeRevocation(_ context: OrganizationRequestContext, revoke: Bool) async throws -> RevocationView {
        let principal = try context.requireIdentity()
        let id = context.organizationID
        let broker = context.snapshot.broker
        let actor = "token:\(principal.name)"
        let audit = support.audit
        let event: AuditLog.Event = revoke ? .revoke : .restore
        let record: () async throws(BrokerError) -> Void = { () throws(BrokerError) in
            do {
                try await audit.record(event, actor: principal.name, organization: id, result: .ok, durable: true)
            } catch {
                throw BrokerError.auditFailed(error)
            }
        }
        do {
            let changed =
                revoke
                ? try await broker.revoke(id, by: actor, beforeCommit: record)
                : try await broker.restore(id, by: actor, beforeCommit: record)
            return RevocationView(id, revocation: try await broker.revocation(of: id), changed: changed)
        } catch {
            await audit.note(event, actor: principal.name, organization: id, result: .failed, error: error)
            throw support.mapped(error, for: principal)
        }
    }

    /// The current pair's answer, from memory when it is there (no store read, no encoding):
    /// the one call on the encryption path. A miss reads the store and keeps the answer.
    @Sendable func publicKey(_ request: Request, _ context: OrganizationRequestContext) async throws -> Response {
        let principal = try context.requireIdentity()
        let organization = context.organizationID
        let cache = runtime.publicKeys
        let entry: CachedPublicKey
        if let hit = cache.lookup(organization) {
            entry = hit
        } else {
            do {
                entry = try await cache.fill(organization, from: context.snapshot.broker).entry
            } catch {
                throw support.mapped(error, for: principal)
            }
        }
        return PublicKeyResponses.current(entry, to: request, snapshot: context.snapshot)
    }

    /// One pair's public key by id, current or not (a recording names its pair): a pair's key
    /// never changes, so its answer may be kept for good.
    @Sendable func keyPairPublicKey(_ request: Request, _ context: OrganizationRequestContext) async throws -> Response {
        let principal = try context.requireIdentity()
        let raw = context.parameters.get("id") ?? ""
        guard raw.utf8.count == 36, let id = UUID(uuidString: raw) else {
            throw APIError.badRequest(
                "the key pair id must be a UUID such as 47adc79c-d1d9-40d4-b2d8-75826f3f8cd6, found '\(DisplayText.escaped(String(raw.prefix(64))))'"
            )
        }
        let view: KeyPairPublicKeyView
        do {
            view = try KeyPairPublicKeyView(try await context.snapshot.broker.keyPair(id, of: context.organizationID).record)
        } catch {
            throw support.mapped(error, for: principal)
        }
        // Encoded only for a 200: a 304 sends no body.
        return try PublicKeyResponses.respond(to: request, etag: "\"\(view.id)\"", cacheControl: PublicKeyResponses.immutable) {
            PublicKeyResponses.allocator.buffer(bytes: try APIJSON.encoder.encode(view))
        }
    }

    @Sendable func keyPairs(_ request: Request, _ context: OrganizationRequestContext) async throws -> KeyPairPage {
        let principal = try context.requireIdentity()
        let limit =
            try request.uri.queryParameters["limit"].map { value -> Int in
                guard let number = Int(value), (1...Broker.maximumHistoryPage).contains(number) else {
                    throw APIError.badRequest("limit must be a whole number from 1 to \(Broker.maximumHistoryPage)")
                }
                return number
            } ?? 50
        let offset =
            try request.uri.queryParameters["offset"].map { value -> Int in
                guard let number = Int(value), number >= 0 else { throw APIError.badRequest("offset must be a whole number of 0 or more") }
                return number
            } ?? 0
        let pairs: [StoredKeyPair]
        do {
            pairs = try await context.snapshot.broker.history(for: context.organizationID, limit: limit + 1, offset: offset)
        } catch {
            throw support.mapped(error, for: principal)
        }
        return KeyPairPage(
            items: pairs.prefix(limit).map { KeyPairView($0.record, current: $0.isCurrent) },
            nextOffset: pairs.count > limit ? offset + limit : nil
        )
    }

    // MARK: key operations

    @Sendable func generate(_ request: Request, _ context: OrganizationRequestContext) async throws -> EditedResponse<KeyPairView> {
        let principal = try context.requireIdentity()
        let id = context.organizationID
        let broker = context.snapshot.broker
        let limit = broker.config.server.generationsPerOrganizationPerMinute
        let (limiter, metrics, audit, now) = (generationLimiter, self.metrics, support.audit, runtime.now)
        do {
            // Concurrent requests for one organization share one generation; only a new
            // generation counts against the per-minute cap.
            let (record, joined) = try await broker.generateKeyPairJoining(
                for: id,
                reason: .manual,
                requestedBy: "token:\(principal.name)",
                admit: { () throws(BrokerError) in try limiter.admit(id, limit: limit, now: now(), metrics: metrics) },
                beforeCommit: audit.pendingGeneration(by: principal.name, for: id)
            )
            scheduler.clearFailure(for: id)
            if joined {
                try await support.audited(.generate, principal, organization: id, keyPairID: record.id, result: .joined)
            } else {
                await audit.note(.generate, actor: principal.name, organization: id, keyPairID: record.id, result: .ok)
            }
            return EditedResponse(status: .created, response: KeyPairView(record, current: true))
        } catch let error as BrokerError {
            await audit.note(.generate, actor: principal.name, organization: id, result: .failed, error: error)
            throw support.mapped(error, for: principal)
        }
    }

    @Sendable func test(_ request: Request, _ context: OrganizationRequestContext) async throws -> TestReportView {
        let principal = try context.requireIdentity()
        let id = context.organizationID
        let broker = context.snapshot.broker
        let candidate = try await candidate(in: request, context: context, principal: principal)
        // A test generates a key pair through the keystore as "change key now" does: it
        // counts against the same per-organization cap, and is audited before it runs.
        let limit = broker.config.server.generationsPerOrganizationPerMinute
        do {
            try generationLimiter.admit(id, limit: limit, now: runtime.now(), metrics: metrics)
        } catch {
            throw support.mapped(error, for: principal)
        }
        try await support.audited(.test, principal, organization: id, result: .pending)
        do {
            let report = try await broker.test(organization: id, candidate: candidate)
            await support.audit.note(.test, actor: principal.name, organization: id, result: report.passed ? .passed : .failed)
            return TestReportView(report, redacted: principal.seesRedacted)
        } catch {
            await support.audit.note(.test, actor: principal.name, organization: id, result: .failed, error: error)
            throw support.mapped(error, for: principal)
        }
    }

    /// The candidate keystore of a test's body, or `nil` for an empty body (the configured one).
    private func candidate(
        in request: Request,
        context: OrganizationRequestContext,
        principal: Principal
    ) async throws -> (settings: KeystoreSettings, keystore: any Keystore)? {
        let buffer = try await APIRequestDecoder.collect(
            request,
            upTo: min(context.maxUploadSize, Self.maximumCandidateBytes),
            limitName: "the largest candidate keystore a test accepts"
        )
        guard buffer.readableBytes > 0 else { return nil }
        // A candidate makes the server call a backend of the caller's choosing: only operators
        // (edit for every organization) may send one. What it may ask for (no paths, no
        // endpoint, no environment) each plugin decides (PluginContext.Origin.api).
        guard principal.may(.editKeys, for: nil) else {
            await support.audit.note(.access, actor: principal.name, organization: context.organizationID, result: .denied)
            throw APIError(
                .forbidden,
                "forbidden",
                "testing a candidate keystore needs encryption-key:edit for every organization (\"*\"); token '\(principal.name)' may test the configured keystore only (send no body)"
            )
        }
        let body = Data(buffer: buffer)
        let loadCandidate = self.loadCandidate
        // Parsing is CPU work proportional to the body: off the event loops.
        let loaded = await BlockingWork.cpu { () -> Result<(settings: KeystoreSettings, keystore: any Keystore), APIError> in
            // The shape is checked as JSON (YAML, which the loader reads, would also take other
            // forms); the text is then loaded as sent, so that messages point into it.
            guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                return .failure(
                    .badRequest("the body must be a JSON object {\"keystore\": {\"type\": …}}, or empty to test the configured keystore")
                )
            }
            guard let keystore = object["keystore"] as? [String: Any], object.count == 1 else {
                return .failure(
                    .badRequest("the body must hold exactly one field, 'keystore': the candidate keystore's settings as under 'keystores:'")
                )
            }
            if let problem = Self.candidateTypeProblem(keystore) { return .failure(.badRequest(problem)) }
            do throws(ConfigError) {
                return .success(try loadCandidate(String(decoding: body, as: UTF8.self)))
            } catch {
                return .failure(APIError(error))
            }
        }
        return try loaded.get()
    }

    /// The settings every keystore has that are text.
    static let candidateTextSettings = ["type", "name", "contextKey", "keyPairSpec"]

    /// What of a candidate's JSON the YAML reader would take more loosely than the JSON says:
    /// a `null` (YAML's reader takes it as absent) anywhere, or a number or boolean where a
    /// keystore's text setting goes (YAML reads `5` and `"5"` alike). `nil` when neither.
    static func candidateTypeProblem(_ keystore: [String: Any]) -> String? {
        func firstNull(in value: Any, at path: String) -> String? {
            switch value {
            case is NSNull: return path
            case let mapping as [String: Any]:
                for key in mapping.keys.sorted() {
                    if let found = firstNull(in: mapping[key] as Any, at: "\(path).\(key)") { return found }
                }
                return nil
            case let list as [Any]:
                for (index, item) in list.enumerated() {
                    if let found = firstNull(in: item, at: "\(path)[\(index)]") { return found }
                }
                return nil
            default: return nil
            }
        }
        if let path = firstNull(in: keystore, at: "keystore") {
            return "'\(DisplayText.escaped(String(path.prefix(200))))' is null; leave a setting out instead of sending null"
        }
        for key in candidateTextSettings where keystore[key].map({ !($0 is String) }) ?? false {
            return "'keystore.\(key)' must be a JSON string"
        }
        return nil
    }

    @Sendable func unwrap(_ request: Request, _ context: OrganizationRequestContext) async throws -> UnwrapResponse {
        let principal = try context.requireIdentity()
        let id = context.organizationID
        let body = try await request.decode(as: UnwrapRequest.self, context: context)
        guard let pairID = UUID(uuidString: body.keyPairId) else {
            throw APIError.badRequest("keyPairId must be a UUID, found '\(DisplayText.escaped(String(body.keyPairId.prefix(64))))'")
        }
        guard let wrapped = Data(base64Encoded: body.wrappedKey), !wrapped.isEmpty else {
            throw APIError.badRequest("wrappedKey must be the base64 RSA-OAEP-SHA256 ciphertext of the data key")
        }
        var dataKey: Data
        do {
            dataKey = try await context.snapshot.broker.unwrapDataKey(for: id, keyPairID: pairID, wrappedDataKey: wrapped)
        } catch {
            await support.audit.note(.unwrap, actor: principal.name, organization: id, keyPairID: pairID, result: .failed, error: error)
            throw support.mapped(error, for: principal)
        }
        defer { PrivateKeyMaterial.wipe(&dataKey) }
        // The data key leaves only once its audit record is written.
        try await support.audited(.unwrap, principal, organization: id, keyPairID: pairID, result: .ok)
        return UnwrapResponse(dataKey: dataKey.base64EncodedString())
    }
}
