import Foundation
import Hummingbird
import HummingbirdAuth
import KeyBroker

/// `/v1/status`, `/v1/orgs` and `/v1/admin/reload`: the server as a whole.
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
            .get("orgs", use: organizations)
        routes.group().add(middleware: RequirePermission<KeyBrokerRequestContext>([.editKeys], for: .everyOrganization, audit: audit))
            .post("admin/reload", use: reload)
        return routes
    }

    /// Keystores' and the store's health, the organizations' counts and one page of
    /// organizations: for a `"*"` caller those whose last rotation failed, for a scoped caller
    /// its own (and only the keystores they use, redacted). Nothing here reads every
    /// organization: counts come from the store's usage rows, pages from the failures.
    @Sendable func status(_ request: Request, _ context: KeyBrokerRequestContext) async throws -> StatusView {
        let principal = try context.requireIdentity()
        let broker = try context.snapshot.broker
        let parameters = try PageParameters(request)
        let time = runtime.now()
        let failures = scheduler.failuresByOrganization
        let corrupt = runtime.corrupt.reports
        let summary: StatusView.Summary
        let listed: (page: [OrganizationID], nextAfter: String?)
        var statuses: [OrganizationStatus] = []
        var tenantErrors: [OrganizationID: KeyConfigurationError] = [:]
        var storeWarnings: [String] = []
        do {
            if let scope = principal.organizations {
                // A scoped caller's organizations are few (its token lists them): each is read.
                var withPairs = 0
                var own: [OrganizationID: KeyPairRecord?] = [:]
                for organization in scope {
                    let current = try? await broker.store.current(for: organization)
                    own[organization] = current
                    if current != nil { withPairs += 1 }
                }
                listed = parameters.page(of: scope)
                for organization in listed.page {
                    let (policy, lastError) = try await broker.listedPolicy(for: organization)
                    statuses.append(broker.organizationStatus(organization, current: own[organization] ?? nil, policy: policy, at: time))
                    tenantErrors[organization] = lastError
                }
                summary = StatusView.Summary(
                    organizations: withPairs,
                    keystores: [],
                    rotationFailures: scope.filter { failures[$0] != nil }.count,
                    corruptKeyPairs: corrupt.reports.filter { $0.organization.map(scope.contains) ?? false }.count
                )
            } else {
                // A store outage is what status is read for: it answers without the counts, and
                // says what still works.
                let usage: [KeystoreUsage]
                do {
                    usage = try await broker.store.keystoreUsage()
                } catch {
                    usage = []
                    storeWarnings.append(
                        "the key-pair store cannot be read (\(error.message)): the counts below are missing; \(runtime.publicKeys.count) organizations' public keys are served from memory meanwhile (encryption goes on for them), the others answer 503 until the store is back"
                    )
                }
                listed = parameters.page(of: failures.keys)
                for organization in listed.page {
                    let current = try? await broker.store.current(for: organization)
                    // With the store down, the configuration's policy: status still answers.
                    let (policy, lastError) =
                        storeWarnings.isEmpty
                        ? try await broker.listedPolicy(for: organization) : (broker.config.policy(for: organization), nil)
                    statuses.append(broker.organizationStatus(organization, current: current, policy: policy, at: time))
                    tenantErrors[organization] = lastError
                }
                summary = StatusView.Summary(
                    organizations: usage.reduce(0) { $0 &+ $1.currentPairs },
                    keystores: usage.map(StatusView.KeystoreCount.init),
                    rotationFailures: failures.count,
                    corruptKeyPairs: corrupt.reports.count &+ corrupt.more
                )
            }
        } catch {
            throw support.mapped(error, for: principal)
        }
        // Health is observed, not configured: the monitor's latest, for the keystores of this
        // request's configuration only (a reload may have added or dropped some meanwhile).
        return StatusViewBuilder(scope: principal.organizations).build(
            at: time,
            organizations: statuses,
            nextAfter: listed.nextAfter,
            summary: summary,
            corrupt: corrupt.reports,
            keystores: runtime.monitor.keystores.filter { broker.keystores[$0.name] != nil },
            store: runtime.monitor.store,
            failures: failures,
            tenantErrors: tenantErrors,
            warnings: storeWarnings + runtime.listener.warnings(at: time)
        )
    }

    /// Every organization with a current pair, a page at a time by id, with its effective
    /// configuration; a scoped caller sees its own organizations.
    @Sendable func organizations(_ request: Request, _ context: KeyBrokerRequestContext) async throws -> OrganizationListView {
        let principal = try context.requireIdentity()
        let broker = try context.snapshot.broker
        let parameters = try PageParameters(request)
        let failures = scheduler.failuresByOrganization
        do {
            if let scope = principal.organizations {
                let listed = parameters.page(of: scope)
                var items: [OrganizationListView.Item] = []
                for organization in listed.page {
                    let current = try? await broker.store.current(for: organization)
                    let policy = try await broker.listedPolicy(for: organization).policy
                    items.append(
                        .init(
                            organization,
                            current: current,
                            policy: policy,
                            broker: broker,
                            failure: failures[organization],
                            redacted: true
                        )
                    )
                }
                return OrganizationListView(items: items, nextAfter: listed.nextAfter)
            }
            let page: CurrentPairs
            do {
                page = try await broker.store.currentPairs(.byOrganization(after: parameters.after?.rawValue), limit: parameters.limit)
            } catch {
                throw BrokerError.storage(error)
            }
            return try await OrganizationListView(broker: broker, pairs: page, failures: failures)
        } catch {
            throw support.mapped(error, for: principal)
        }
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
                defaultKeystoreChange: result.defaultsMoved.map {
                    ReloadView.DefaultKeystoreChange(from: $0.from, to: $0.to, currentPairs: $0.currentPairs)
                },
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
