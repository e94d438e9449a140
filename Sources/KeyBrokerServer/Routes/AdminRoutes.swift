import Foundation
import Hummingbird
import HummingbirdAuth
import KeyBroker

/// `/v1/status` and `/v1/admin/reload`: the server as a whole.
struct AdminRoutes: Sendable {
    let runtime: BrokerRuntime
    let scheduler: RotationScheduler
    let support: RouteSupport

    /// The routes, relative to `/v1`.
    func collection() -> RouteCollection<KeyBrokerRequestContext> {
        let routes = RouteCollection(context: KeyBrokerRequestContext.self)
        let audit = support.audit
        routes.group().add(middleware: RequirePermission<KeyBrokerRequestContext>([.viewKeys], for: .anyOrganization, audit: audit))
            .get("status", use: status)
        routes.group().add(middleware: RequirePermission<KeyBrokerRequestContext>([.editKeys], for: .everyOrganization, audit: audit))
            .post("admin/reload", use: reload)
        return routes
    }

    /// Keystores' and the store's health and the organizations' keys; a scoped token sees its
    /// own organizations and the keystores they use, redacted.
    @Sendable func status(_ request: Request, _ context: KeyBrokerRequestContext) async throws -> StatusView {
        let principal = try context.requireIdentity()
        let broker = try context.snapshot.broker
        let scan: CurrentPairs
        do {
            scan = try await broker.currentKeyPairs()
        } catch {
            throw support.mapped(error, for: principal)
        }
        let time = runtime.now()
        // Health is observed, not configured: the monitor's latest, for the keystores of this
        // request's configuration only (a reload may have added or dropped some meanwhile).
        return StatusViewBuilder(scope: principal.organizations).build(
            at: time,
            organizations: broker.organizationStatuses(pairs: scan.records, at: time),
            corrupt: scan.corrupt,
            keystores: runtime.monitor.keystores.filter { broker.keystores[$0.name] != nil },
            store: runtime.monitor.store,
            failures: scheduler.failuresByOrganization
        )
    }

    @Sendable func reload(_ request: Request, _ context: KeyBrokerRequestContext) async throws -> ReloadView {
        let principal = try context.requireIdentity()
        let audit = support.audit
        do {
            let result = try await runtime.reload(beforeSwap: audit.reload(by: principal.name))
            scheduler.runSoon()
            return ReloadView(
                reloaded: true,
                changedOrganizations: result.changedOrganizations.map(\.rawValue),
                diagnostics: result.warnings.map(DiagnosticView.init)
            )
        } catch let error as ReloadInProgress {
            throw APIError(.conflict, "reload_in_progress", error.description)
        } catch let error as ConfigError {
            await audit.note(.reload, actor: principal.name, result: .failed, error: error)
            throw APIError(error)
        } catch let error as BrokerError {
            await audit.note(.reload, actor: principal.name, result: .failed, error: error)
            throw support.mapped(error, for: principal)
        }
    }
}
