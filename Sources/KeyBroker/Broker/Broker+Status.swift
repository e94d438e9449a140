import Foundation

extension Broker {
    /// Checks every keystore (concurrently), and summarizes the organizations: how many use
    /// each keystore, and the first `limit` that need a new pair now (none yet, cadence due,
    /// keystore changed), with the current rows found unreadable on the way. It costs what is
    /// due, not what is stored.
    public func status(limit: Int = 100) async throws(BrokerError) -> BrokerStatus {
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
        let usage: [KeystoreUsage]
        do {
            usage = try await store.keystoreUsage()
        } catch {
            throw BrokerError.storage(error)
        }
        var due: [OrganizationStatus] = []
        var corrupt: [CorruptKeyPair] = []
        var more = false
        try await forEachDueOrganization(at: time, pageSize: limit + 1) { page, unreadable in
            corrupt += unreadable.prefix(max(0, limit - corrupt.count))
            due += page
            guard due.count <= limit else {
                more = true
                return false
            }
            return true
        }
        return BrokerStatus(
            checkedAt: time,
            keystores: health,
            usage: usage,
            due: Array(due.prefix(limit)),
            moreDue: more,
            corruptKeyPairs: corrupt
        )
    }
}
