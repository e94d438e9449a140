public import Foundation

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
                    return KeystoreStatus(
                        name: name,
                        type: settings[name]?.type ?? keystore.type,
                        health: health.measured(clock.now - start)
                    )
                }
            }
            var results: [KeystoreStatus] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.name < $1.name }
        }
        let time = now()
        let pairs = try await currentKeyPairs()
        return BrokerStatus(
            checkedAt: time,
            keystores: health,
            organizations: organizationStatuses(pairs: pairs.records, at: time),
            corruptKeyPairs: pairs.corrupt
        )
    }

    /// Every organization with settings or a current pair among `pairs`, sorted, as of `time`.
    public func organizationStatuses(pairs: [KeyPairRecord], at time: Date) -> [OrganizationStatus] {
        let byOrganization = Dictionary(pairs.map { ($0.organization, $0) }, uniquingKeysWith: { first, _ in first })
        return Set(config.organizations.keys).union(byOrganization.keys).sorted().map { id in
            let current = byOrganization[id]
            return OrganizationStatus(
                organization: id,
                policy: policy(for: id),
                current: current,
                nextRotation: nextRotation(for: id, current: current),
                rotationReason: rotationReason(for: id, current: current, at: time)
            )
        }
    }
}
