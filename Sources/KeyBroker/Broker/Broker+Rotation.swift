public import Foundation

extension Broker {
    /// Walks every organization that needs a new pair at `time`, a bounded page at a time, in
    /// three index ranges, so that a pass costs what is due and not what is stored:
    ///
    /// 1. the operator's organizations (`organizations:` in the file): each one's current pair
    ///    (a point read each: the file names them);
    /// 2. organizations following `defaults` whose current pair another keystore wrapped
    ///    (`defaults.keystore` changed): the current pairs of each other keystore that holds
    ///    any, by the store's usage counts;
    /// 3. organizations following `defaults` whose pair is older than the cadence allows:
    ///    current pairs created at or before ``RotationCadence/latestDueCreation(at:)``.
    ///
    /// - Parameters:
    ///   - time: when.
    ///   - pageSize: at most this many organizations are handed to `body` at once.
    ///   - body: gets each page's due organizations and the current rows it could not read;
    ///     returns whether to go on.
    public func forEachDueOrganization(
        at time: Date,
        pageSize: Int = 256,
        _ body: ([OrganizationStatus], [CorruptKeyPair]) async -> Bool
    ) async throws(BrokerError) {
        let pageSize = max(1, pageSize)
        do {
            // 1. The operator's organizations.
            let pinned = config.organizations.keys.sorted()
            var start = 0
            while start < pinned.count {
                let chunk = pinned[start..<min(pinned.count, start + pageSize)]
                start += chunk.count
                var due: [OrganizationStatus] = []
                var corrupt: [CorruptKeyPair] = []
                for organization in chunk {
                    do throws(StoreError) {
                        let current = try await store.current(for: organization)
                        let status = organizationStatus(organization, current: current, policy: policy(for: organization), at: time)
                        if status.rotationDue, !revocations.isRevoked(organization) { due.append(status) }
                    } catch  where error.kind == .corruptRecord {
                        corrupt.append(
                            CorruptKeyPair(keyPairID: error.keyPairID ?? "?", organization: organization, problem: error.message)
                        )
                    }
                }
                guard await body(due, corrupt) else { return }
            }
            // 2. Moved by a change of defaults.keystore.
            // (Tenants' own keystores never follow defaults.keystore: they are left out.)
            let others = try await store.keystoreUsage().filter {
                $0.currentPairs > 0 && $0.keystoreName != config.defaults.keystore
                    && TenantKeystoreTemplate.type(ofInstanceName: $0.keystoreName) == nil
            }
            for keystore in Set(others.map(\.keystoreName)).sorted() {
                guard try await walk(.wrappedBy(keystore: keystore, after: nil), pageSize: pageSize, at: time, body) else { return }
            }
            // 3. Due by the default cadence.
            if let threshold = config.defaults.rotation.latestDueCreation(at: time) {
                guard try await walk(.createdAtOrBefore(threshold, cadence: nil, after: nil), pageSize: pageSize, at: time, body) else {
                    return
                }
            }
            // 4. Due by a cadence a tenant chose (its configuration is read for each due one).
            for cadence in RotationCadence.allCases {
                guard let threshold = cadence.latestDueCreation(at: time) else { continue }
                guard try await walk(.createdAtOrBefore(threshold, cadence: cadence, after: nil), pageSize: pageSize, at: time, body)
                else { return }
            }
        } catch {
            throw BrokerError.storage(error)
        }
    }

    /// Pages through `query`, handing `body` the organizations following `defaults` that are due.
    private func walk(
        _ query: CurrentPairQuery,
        pageSize: Int,
        at time: Date,
        _ body: ([OrganizationStatus], [CorruptKeyPair]) async -> Bool
    ) async throws(StoreError) -> Bool {
        var query: CurrentPairQuery? = query
        while let current = query {
            let page = try await store.currentPairs(current, limit: pageSize)
            var due: [OrganizationStatus] = []
            var unreadable: [CorruptKeyPair] = []
            for record in page.records {
                // The operator's organizations were walked in full before.
                guard config.organizations[record.organization] == nil else { continue }
                let policy: OrganizationPolicy
                switch current {
                case .createdAtOrBefore(_, cadence: nil, _):
                    if record.keystoreName == config.defaults.keystore {
                        policy = self.policy(for: record.organization)
                    } else if TenantKeystoreTemplate.type(ofInstanceName: record.keystoreName) != nil {
                        // A tenant's own key on the default cadence.
                        guard let read = try await storedPolicy(of: record, into: &unreadable) else { continue }
                        policy = read
                    } else {
                        // Pairs of another keystore than the default were in the ranges by keystore.
                        continue
                    }
                case .createdAtOrBefore:
                    // A tenant's own cadence: its configuration says the rest (read for due ones only).
                    guard let read = try await storedPolicy(of: record, into: &unreadable) else { continue }
                    policy = read
                case .wrappedBy, .byOrganization:
                    // Organizations that chose a keystore of their own do not follow defaults.keystore.
                    guard TenantKeystoreTemplate.type(ofInstanceName: record.keystoreName) == nil else { continue }
                    guard let read = try await storedPolicy(of: record, into: &unreadable) else { continue }
                    policy = read
                }
                let status = organizationStatus(record.organization, current: record, policy: policy, at: time)
                // A revoked organization is not rotated (its pairs stay as they are until restored).
                if status.rotationDue, !revocations.isRevoked(record.organization) { due.append(status) }
            }
            let corrupt = page.corrupt.filter { $0.organization.map { config.organizations[$0] == nil } ?? true } + unreadable
            guard await body(due, corrupt) else { return false }
            query = page.next
        }
        return true
    }

    /// The policy of `record`'s organization with its stored configuration, or `nil` (and a
    /// report) when that configuration cannot be read: one damaged row must not stop a pass.
    private func storedPolicy(
        of record: KeyPairRecord,
        into unreadable: inout [CorruptKeyPair]
    ) async throws(StoreError) -> OrganizationPolicy? {
        do {
            return config.policy(for: record.organization, stored: try await store.keyConfiguration(for: record.organization))
        } catch  where !error.affectsWholeStore {
            unreadable.append(
                CorruptKeyPair(keyPairID: record.id.uuidString.lowercased(), organization: record.organization, problem: error.message)
            )
            return nil
        }
    }

    /// The status of one organization with `policy` and `current` as its current pair, at `time`.
    public func organizationStatus(
        _ organization: OrganizationID,
        current: KeyPairRecord?,
        policy: OrganizationPolicy,
        at time: Date
    ) -> OrganizationStatus {
        OrganizationStatus(
            organization: organization,
            policy: policy,
            current: current,
            nextRotation: nextRotation(policy: policy, current: current),
            rotationReason: rotationReason(policy: policy, current: current, at: time)
        )
    }
}
