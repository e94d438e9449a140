public import Foundation
public import KeyBroker

/// `GET /v1/orgs`: one page of organizations, by id.
public struct OrganizationListView: Codable, Sendable {
    /// One organization and its effective configuration.
    public struct Item: Codable, Sendable {
        public let organization: String
        /// Where its configuration comes from: `operator` (`organizations:` in the file),
        /// `tenant` (its own, through the API) or `default` (`defaults:`).
        public let source: String
        public let keystore: String
        public let rotation: String
        public let keyPairSpec: String
        /// The tenant's own key, for a keystore it chose.
        public let keyAlias: String?
        public let currentKeyPair: KeyPairView?
        public let nextRotation: Date?
        public let lastRotationError: String?
    }

    public let items: [Item]
    /// Pass as `after` for the next page; absent on the last.
    public let nextAfter: String?
}

extension OrganizationListView.Item {
    /// The item of `organization` under `policy`, with `current` as its current pair;
    /// `failure` is the scheduler's last failed rotation of it.
    init(
        _ organization: OrganizationID,
        current: KeyPairRecord?,
        policy: OrganizationPolicy,
        broker: Broker,
        failure: RotationScheduler.Failure?,
        redacted: Bool
    ) {
        self.init(
            organization: organization.rawValue,
            source: policy.source.rawValue,
            keystore: policy.keystore,
            rotation: policy.rotation.rawValue,
            keyPairSpec: policy.keyPairSpec.rawValue,
            keyAlias: policy.keyAlias,
            currentKeyPair: current.map { KeyPairView($0, current: true) },
            nextRotation: broker.nextRotation(policy: policy, current: current),
            lastRotationError: failure.map { APIError.rotationError($0, redacted: redacted) }
        )
    }
}

extension OrganizationListView {
    /// The view of a page of current pairs, each organization's policy resolved (one read
    /// each); `failures` are the scheduler's (none in the CLI's embedded mode).
    public init(
        broker: Broker,
        pairs: CurrentPairs,
        failures: [OrganizationID: RotationScheduler.Failure] = [:],
        redacted: Bool = false
    ) async throws(BrokerError) {
        // The page's policies are point reads of the store: read a few at a time, not one after
        // the other (each read waits on the store's queue; a page of 100 in sequence waits 100 times).
        let policies = try await Self.policies(of: pairs.records.map(\.organization), broker: broker)
        var items: [Item] = []
        for (record, policy) in zip(pairs.records, policies) {
            items.append(
                Item(
                    record.organization,
                    current: record,
                    policy: policy,
                    broker: broker,
                    failure: failures[record.organization],
                    redacted: redacted
                )
            )
        }
        var nextAfter: String?
        if case .byOrganization(let after) = pairs.next { nextAfter = after }
        self.init(items: items, nextAfter: nextAfter)
    }

    /// The policies of `organizations`, in their order, at most 8 reads at once.
    static func policies(of organizations: [OrganizationID], broker: Broker) async throws(BrokerError) -> [OrganizationPolicy] {
        do {
            return try await withThrowingTaskGroup(of: (Int, OrganizationPolicy).self) { group in
                var policies = [OrganizationPolicy?](repeating: nil, count: organizations.count)
                var next = 0
                func addNext() {
                    guard next < organizations.count else { return }
                    let (index, organization) = (next, organizations[next])
                    next += 1
                    group.addTask { (index, try await broker.listedPolicy(for: organization).policy) }
                }
                for _ in 0..<8 { addNext() }
                while let (index, policy) = try await group.next() {
                    policies[index] = policy
                    addNext()
                }
                return policies.compactMap { $0 }
            }
        } catch let error as BrokerError {
            throw error
        } catch {
            throw BrokerError.storage(StoreError(.unavailable, "reading a page of organizations was cancelled"))
        }
    }
}
