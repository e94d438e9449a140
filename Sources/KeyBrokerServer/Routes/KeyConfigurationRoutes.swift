import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import KeyBroker
import NIOCore
import NIOFoundationEssentialsCompat

/// `/v1/orgs/{org}/key-configuration`: an organization's administrator configures its own
/// keystore — edit, test (nothing saved), save (tested first, then stored with a new pair) —
/// and reads KMS's errors on it. `encryption-key:view` reads, `encryption-key:edit` changes.
struct KeyConfigurationRoutes: Sendable {
    let runtime: BrokerRuntime
    let scheduler: RotationScheduler
    let support: RouteSupport
    let metrics: ServerMetrics
    let generationLimiter: GenerationLimiter

    /// The routes, relative to `/v1/orgs/{org}`.
    func collection() -> RouteCollection<OrganizationRequestContext> {
        let routes = RouteCollection(context: OrganizationRequestContext.self)
        let audit = support.audit
        routes.group().add(middleware: RequirePermission<OrganizationRequestContext>([.viewKeys], for: .organization, audit: audit))
            .get("key-configuration", use: read)
        routes.group().add(middleware: RequirePermission<OrganizationRequestContext>([.editKeys], for: .organization, audit: audit))
            .put("key-configuration", use: save)
            .delete("key-configuration", use: reset)
            .post("key-configuration/test", use: test)
        return routes
    }

    @Sendable func read(_ request: Request, _ context: OrganizationRequestContext) async throws -> EditedResponse<KeyConfigurationView> {
        let principal = try context.requireIdentity()
        let broker = context.snapshot.broker
        let id = context.organizationID
        do {
            let view = KeyConfigurationView(id, stored: try await broker.keyConfiguration(for: id), broker: broker)
            return EditedResponse(headers: [.eTag: "\"\(view.version)\""], response: view)
        } catch {
            throw support.mapped(error, for: principal)
        }
    }

    /// Tests a configuration for the organization without saving anything.
    @Sendable func test(_ request: Request, _ context: OrganizationRequestContext) async throws -> TestReportView {
        let principal = try context.requireIdentity()
        let broker = context.snapshot.broker
        let id = context.organizationID
        let configuration = try await request.decode(as: KeyConfigurationRequest.self, context: context).configuration()
        try refuseIfPinned(id, broker)
        do {
            try broker.validate(configuration)
            try admit(id, broker)
            try await support.audited(.test, principal, organization: id, result: .pending)
            let report = try await broker.test(organization: id, policy: broker.policy(for: id, trying: configuration))
            await support.audit.note(.test, actor: principal.name, organization: id, result: report.passed ? .passed : .failed)
            return TestReportView(report, errors: errorDetail(configuration, principal))
        } catch let error as BrokerError {
            await support.audit.note(.test, actor: principal.name, organization: id, result: .failed, error: error)
            throw support.mapped(error, for: principal)
        }
    }

    /// Tests, then stores the configuration with a new pair made through it.
    @Sendable func save(_ request: Request, _ context: OrganizationRequestContext) async throws -> KeyConfigurationSavedView {
        let configuration = try await request.decode(as: KeyConfigurationRequest.self, context: context).configuration()
        return try await change(to: configuration, request, context)
    }

    /// Back to the platform's default: a new pair from the default keystore.
    @Sendable func reset(_ request: Request, _ context: OrganizationRequestContext) async throws -> KeyConfigurationSavedView {
        try await change(to: .platformDefault, request, context)
    }

    private func change(
        to configuration: TenantKeyConfiguration,
        _ request: Request,
        _ context: OrganizationRequestContext
    ) async throws -> KeyConfigurationSavedView {
        let principal = try context.requireIdentity()
        let broker = context.snapshot.broker
        let id = context.organizationID
        let expectedVersion = try Self.expectedVersion(request)
        try refuseIfPinned(id, broker)
        let audit = support.audit
        do {
            try broker.validate(configuration)
            let old = try await broker.keyConfiguration(for: id)
            let change = TenantKeyConfiguration.change(from: old?.configuration, to: configuration)
            try admit(id, broker)
            // Before the test calls the tenant's key: a change that cannot be audited does not start.
            do {
                try await audit.record(.configure, actor: principal.name, organization: id, result: .pending, change: change)
            } catch {
                throw BrokerError.auditFailed(error)
            }
            let outcome = try await broker.setKeyConfiguration(
                configuration,
                for: id,
                expectedVersion: expectedVersion,
                by: "token:\(principal.name)",
                beforeCommit: audit.pendingGeneration(by: principal.name, for: id, event: .configure, change: change)
            )
            switch outcome {
            case .saved(let stored, let report, let pair):
                scheduler.clearFailure(for: id)
                await audit.note(.configure, actor: principal.name, organization: id, keyPairID: pair.id, result: .ok, change: change)
                return KeyConfigurationSavedView(
                    configuration: KeyConfigurationView(id, stored: stored, broker: broker),
                    test: TestReportView(report, errors: errorDetail(configuration, principal)),
                    keyPair: KeyPairView(pair, current: true)
                )
            case .testFailed(let report):
                await audit.note(.configure, actor: principal.name, organization: id, result: .failed, change: change)
                throw TestFailed(report: TestReportView(report, errors: errorDetail(configuration, principal)))
            case .conflict(let version):
                await audit.note(.configure, actor: principal.name, organization: id, result: .failed, change: change)
                throw Self.conflict(version)
            case .pinnedByOperator(let file):
                throw Self.pinned(id, file: file)
            }
        } catch let error as BrokerError {
            await audit.note(.configure, actor: principal.name, organization: id, result: .failed, error: error)
            throw support.mapped(error, for: principal)
        }
    }

    /// Tests and saves count against the organization's generation cap, as "change key now" does.
    private func admit(_ organization: OrganizationID, _ broker: Broker) throws(BrokerError) {
        try generationLimiter.admit(
            organization,
            limit: broker.config.server.generationsPerOrganizationPerMinute,
            now: runtime.now(),
            metrics: metrics
        )
    }

    private func refuseIfPinned(_ organization: OrganizationID, _ broker: Broker) throws {
        if broker.config.organizations[organization] != nil { throw Self.pinned(organization, file: broker.config.source) }
    }

    /// A tenant's own key's errors are the tenant's to read; the platform's keystore's are not.
    private func errorDetail(_ configuration: TenantKeyConfiguration, _ principal: Principal) -> TestReportView.ErrorDetail {
        guard principal.seesRedacted else { return .full }
        return configuration.type == TenantKeyConfiguration.defaultType ? .redacted : .tenantsOwnKey
    }

    /// `If-Match: "3"` (or `3`); `nil` without the header. Weak tags (`W/"3"`) and `*` are not
    /// versions: a change must name the one it was made from.
    static func expectedVersion(_ request: Request) throws -> Int? {
        guard let value = request.headers[.ifMatch] else { return nil }
        var text = Substring(value.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = text.dropFirst().dropLast() }
        // Digits only: `Int` alone would also take `+3` and `-0`.
        guard (1...9).contains(text.utf8.count), text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let version = Int(text)
        else {
            throw APIError.badRequest(
                "If-Match must be the configuration's version as GET answers it in ETag (e.g. \"3\"), found '\(DisplayText.escaped(String(value.prefix(32))))'"
            )
        }
        return version
    }

    static func conflict(_ version: Int) -> APIError {
        APIError(
            .conflict,
            "version_conflict",
            "the key configuration changed since you read it (it is now version \(version)); read it again, redo the edit and send it with If-Match: \"\(version)\"",
            headers: [.eTag: "\"\(version)\""]
        )
    }

    static func pinned(_ organization: OrganizationID, file: String) -> APIError {
        APIError(
            .conflict,
            "operator_pinned",
            "organization '\(organization)' is configured by the operator under 'organizations:' in \(URL(fileURLWithPath: file).lastPathComponent), which wins over the API; ask the operator to remove it there to configure it here"
        )
    }
}

/// A failed test of a configuration to save: 422 with the report, nothing stored.
struct TestFailed: HTTPResponseError {
    let report: TestReportView

    var status: HTTPResponse.Status { .unprocessableContent }

    /// `{"error": {…}, "test": {…}}`: the one error shape, with the report beside it.
    struct Body: Encodable {
        let error: ErrorBody.Detail
        let test: TestReportView
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let step = report.steps.first { $0.outcome == "failed" }
        let backend = step?.backendError.flatMap { error in
            error.backendCode.map { ErrorBody.Backend(type: $0, message: error.backendMessage ?? "") }
        }
        let message =
            "the configuration was tested and not saved: step \(step?.name ?? "?") failed"
            + (step?.detail.map { ": \($0)" } ?? "")
        let detail = ErrorBody.Detail(code: "test_failed", message: message, backend: backend, diagnostics: nil)
        let body = Body(error: detail, test: report)
        return Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(data: try APIJSON.encoder.encode(body)))
        )
    }
}
