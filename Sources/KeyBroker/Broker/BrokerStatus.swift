import Foundation

/// A snapshot of every keystore's health and every known organization's keys.
public struct BrokerStatus: Sendable {
    /// When the snapshot was taken.
    public let checkedAt: Date
    /// Every configured keystore.
    public let keystores: [KeystoreStatus]
    /// Every organization with settings or key pairs.
    public let organizations: [OrganizationStatus]
    /// Current key pairs whose stored row cannot be read.
    public let corruptKeyPairs: [CorruptKeyPair]
}

/// One keystore in a ``BrokerStatus``.
public struct KeystoreStatus: Sendable {
    /// The instance name.
    public let name: String
    /// The plugin type.
    public let type: String
    /// The result of its health check.
    public let health: KeystoreHealth
}

/// One organization in a ``BrokerStatus``.
public struct OrganizationStatus: Sendable {
    /// The organization.
    public let organization: OrganizationID
    /// Its effective settings.
    public let policy: OrganizationPolicy
    /// Its current pair, if it has one.
    public let current: KeyPairRecord?
    /// When the current pair is due for rotation.
    public let nextRotation: Date?
    /// Why it needs a new pair now, if it does (see ``Broker/rotationReason(for:current:at:)``).
    public let rotationReason: KeyPairReason?

    /// Whether it needs a new pair now (none yet, cadence due, or its keystore changed).
    public var rotationDue: Bool { rotationReason != nil }
    /// Whether the current pair was wrapped by another keystore than the configured one.
    public var keystoreChanged: Bool { rotationReason == .configChange }
}

extension Broker {
    /// Checks every keystore (concurrently) and summarizes every known organization.
    public func status() async throws(BrokerError) -> BrokerStatus {
        let keystores = self.keystores
        let settings = config.keystores
        let health = await withTaskGroup(of: KeystoreStatus.self) { group in
            for (name, keystore) in keystores {
                group.addTask {
                    let clock = ContinuousClock()
                    let start = clock.now
                    let health = await keystore.checkHealth()
                    return KeystoreStatus(name: name, type: settings[name]?.type ?? keystore.type, health: health.measured(clock.now - start))
                }
            }
            var results: [KeystoreStatus] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.name < $1.name }
        }
        let time = now()
        let pairs = try await currentKeyPairs()
        return BrokerStatus(
            checkedAt: time, keystores: health, organizations: organizationStatuses(pairs: pairs.records, at: time),
            corruptKeyPairs: pairs.corrupt)
    }

    /// Every organization with settings or a current pair among `pairs`, sorted, as of `time`.
    public func organizationStatuses(pairs: [KeyPairRecord], at time: Date) -> [OrganizationStatus] {
        let byOrganization = Dictionary(pairs.map { ($0.organization, $0) }, uniquingKeysWith: { first, _ in first })
        return Set(config.organizations.keys).union(byOrganization.keys).sorted().map { id in
            let current = byOrganization[id]
            return OrganizationStatus(
                organization: id, policy: policy(for: id), current: current, nextRotation: nextRotation(for: id, current: current),
                rotationReason: rotationReason(for: id, current: current, at: time))
        }
    }
}
