public import Foundation
public import KeyBroker

/// `GET /v1/orgs`: one page of organizations, by id.
public struct OrganizationListView: Codable, Sendable {
    /// One organization and its effective configuration.
    public struct Item: Codable, Sendable {
        public let organization: String
        /// Where its configuration comes from: `operator` (`organizations:` in the file) or
        /// `default` (`defaults:`).
        public let source: String
        public let keystore: String
        public let rotation: String
        public let keyPairSpec: String
        public let currentKeyPair: KeyPairView?
        public let nextRotation: Date?
        public let lastRotationError: String?
    }

    public let items: [Item]
    /// Pass as `after` for the next page; absent on the last.
    public let nextAfter: String?
}

extension OrganizationListView.Item {
    /// The item of `organization` with `current` as its current pair, under `broker`'s
    /// configuration; `failure` is the scheduler's last failed rotation of it.
    init(_ organization: OrganizationID, current: KeyPairRecord?, broker: Broker, failure: RotationScheduler.Failure?, redacted: Bool) {
        let policy = broker.policy(for: organization)
        self.init(
            organization: organization.rawValue,
            source: broker.config.organizations[organization] == nil ? "default" : "operator",
            keystore: policy.keystore,
            rotation: policy.rotation.rawValue,
            keyPairSpec: policy.keyPairSpec.rawValue,
            currentKeyPair: current.map { KeyPairView($0, current: true) },
            nextRotation: broker.nextRotation(for: organization, current: current),
            lastRotationError: failure.map { APIError.rotationError($0, redacted: redacted) }
        )
    }
}

extension OrganizationListView {
    /// The view of a page of current pairs (the CLI's embedded mode: no scheduler, no failures).
    public init(broker: Broker, pairs: CurrentPairs) {
        var nextAfter: String?
        if case .byOrganization(let after) = pairs.next { nextAfter = after }
        self.init(
            items: pairs.records.map { Item($0.organization, current: $0, broker: broker, failure: nil, redacted: false) },
            nextAfter: nextAfter
        )
    }
}
