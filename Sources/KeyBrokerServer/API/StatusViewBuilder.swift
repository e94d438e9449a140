import Foundation
public import KeyBroker

/// Builds the one status view, for the server (`GET /v1/status`) and for the CLI's local mode
/// alike: the organizations of a scan, the keystores' health, the store's, and the scheduler's
/// failures, filtered and redacted for a caller scoped to some organizations.
struct StatusViewBuilder {
    /// The organizations the caller may see; `nil` for a `"*"` caller, who also sees every
    /// field unredacted.
    let scope: Set<OrganizationID>?

    /// - Parameters:
    ///   - organizations: one page of organizations (``Broker/organizationStatus(_:current:at:)``).
    ///   - nextAfter: the cursor of the next page.
    ///   - summary: the counts.
    ///   - corrupt: current rows found unreadable.
    ///   - keystores: each keystore's last known health.
    ///   - store: the store's health, when a monitor watches it.
    ///   - failures: the scheduler's failed rotations.
    ///   - tenantErrors: the listed organizations' last errors through their own keystores.
    func build(
        at time: Date,
        organizations: [OrganizationStatus],
        nextAfter: String?,
        summary: StatusView.Summary,
        corrupt: [CorruptKeyPair],
        keystores: [HealthMonitor.KeystoreState],
        store: HealthMonitor.StoreState?,
        failures: [OrganizationID: RotationScheduler.Failure],
        tenantErrors: [OrganizationID: KeyConfigurationError] = [:],
        warnings: [String] = []
    ) -> StatusView {
        let redacted = scope != nil
        let organizations = organizations.filter { scope?.contains($0.organization) ?? true }
        // A scoped caller sees only the keystores its organizations use: the others' errors
        // name other customers' keys.
        let visible = scope.map { _ in
            Set(organizations.flatMap { [$0.policy.keystore] + ($0.current.map { [$0.keystoreName] } ?? []) })
        }
        let keystoreViews = keystores.filter { visible?.contains($0.name) ?? true }.map { state in
            // A keystore shared with other organizations: its messages and details may name
            // their encryption contexts and the server's files. A scoped caller gets the kind
            // and the backend's code.
            StatusView.Keystore(
                name: state.name,
                type: state.type,
                healthy: state.healthy,
                since: state.since,
                checkedAt: state.checkedAt,
                detail: redacted
                    ? (state.healthy ? "healthy" : "unhealthy: \(state.lastError?.kind.description ?? "unknown")") : state.detail,
                latencyMs: state.latency.milliseconds,
                error: state.healthy ? nil : state.lastError.map { redacted ? KeystoreErrorView(redacting: $0) : KeystoreErrorView($0) }
            )
        }
        let organizationViews = organizations.map { status -> StatusView.Organization in
            let failure = failures[status.organization]
            return StatusView.Organization(
                organization: status.organization.rawValue,
                keystore: status.policy.keystore,
                rotation: status.policy.rotation.rawValue,
                keyPairSpec: status.policy.keyPairSpec.rawValue,
                currentKeyPair: status.current.map { KeyPairView($0, current: true) },
                nextRotation: status.nextRotation,
                rotationDue: status.rotationDue,
                keystoreChanged: status.keystoreChanged,
                fallbackInUse: status.current != nil && status.rotationDue && failure != nil,
                lastRotationError: failure.map { APIError.rotationError($0, redacted: redacted) },
                nextRotationAttempt: failure?.nextAttempt,
                keyConfigurationError: tenantErrors[status.organization]
            )
        }
        let corruptViews = corrupt.filter { pair in scope.map { allowed in pair.organization.map(allowed.contains) ?? false } ?? true }.map
        {
            StatusView.CorruptKeyPair(
                id: $0.keyPairID,
                organization: $0.organization?.rawValue,
                problem: redacted ? "the stored record is damaged; the operator must restore it" : $0.problem
            )
        }
        let storeView = store.map { store in
            StatusView.Store(
                usable: store.usable,
                checkedAt: store.checkedAt,
                error: store.usable ? nil : store.lastError.map { redacted ? $0.kind.description : $0.message }
            )
        }
        return StatusView(
            checkedAt: time,
            store: storeView,
            keystores: keystoreViews,
            summary: summary,
            organizations: organizationViews,
            nextAfter: nextAfter,
            corruptKeyPairs: corruptViews,
            warnings: redacted ? [] : warnings
        )
    }
}

extension StatusView {
    /// The view of a broker status taken now (the CLI's embedded mode): every keystore checked
    /// just now, no store monitor, no scheduler; the organizations listed are those due for a
    /// new pair, which a running server's next pass would make.
    public init(_ status: BrokerStatus) {
        let keystores = status.keystores.map { keystore in
            HealthMonitor.KeystoreState(
                name: keystore.name,
                type: keystore.type,
                healthy: keystore.health.isHealthy,
                since: status.checkedAt,
                checkedAt: status.checkedAt,
                detail: keystore.health.detail,
                latency: keystore.health.latency,
                lastError: keystore.health.error
            )
        }
        let summary = StatusView.Summary(
            organizations: status.usage.reduce(0) { $0 &+ $1.currentPairs },
            keystores: status.usage.map(StatusView.KeystoreCount.init),
            rotationFailures: 0,
            corruptKeyPairs: status.corruptKeyPairs.count
        )
        self = StatusViewBuilder(scope: nil).build(
            at: status.checkedAt,
            organizations: status.due,
            nextAfter: nil,
            summary: summary,
            corrupt: status.corruptKeyPairs,
            keystores: keystores,
            store: nil,
            failures: [:]
        )
    }
}

extension StatusView.KeystoreCount {
    init(_ usage: KeystoreUsage) {
        self.init(name: usage.keystoreName, type: usage.keystoreType, organizations: usage.currentPairs, pairs: usage.pairs)
    }
}
