import Crypto
public import Foundation
public import Logging

/// Routes every key operation of every organization to the right keystore and store.
///
/// - Generation goes to the organization's *configured* keystore.
/// - The public key comes from the store alone, so encryption never needs a keystore
///   (invariant 1).
/// - Unwrapping goes to the keystore recorded *on the pair* (invariant 2).
public final class Broker: Sendable {
    /// The configuration in force.
    public let config: BrokerConfig
    /// One instance per configured keystore.
    public let keystores: [String: any Keystore]
    /// Where pairs live.
    public let store: any KeyPairStore
    let now: @Sendable () -> Date
    let logger: Logger
    /// Decrypted private keys, within the configured limits; `nil` when caching is off.
    public let cache: PrivateKeyCache?
    /// Joins concurrent generations for one organization.
    let generations: GenerationCoalescer
    /// Tenants' keystores (`tenantKeystores:`), built as they are used.
    public let tenantKeystores: TenantKeystores
    /// The revoked organizations (shared by every broker of the process).
    public let revocations: RevocationList

    /// The largest history page a caller may ask for.
    public static let maximumHistoryPage = 1000

    /// Opens a broker, first checking that every keystore that stored pairs still need is
    /// configured with the same type (invariant 3).
    /// - Parameters:
    ///   - loaded: the configuration and its keystores.
    ///   - store: the key-pair store.
    ///   - now: the clock (tests inject one).
    /// - Throws: ``ConfigError`` naming each missing keystore and the pairs per organization
    ///   that need it, or ``BrokerError`` when the store fails.
    public static func open(
        _ loaded: LoadedConfig,
        store: any KeyPairStore,
        now: @escaping @Sendable () -> Date = { Date() },
        cache: PrivateKeyCache? = nil,
        generations: GenerationCoalescer = GenerationCoalescer(),
        revocations: RevocationList? = nil,
        logger: Logger = Logger(label: "keybroker")
    ) async throws -> Broker {
        let problems: [ConfigDiagnostic]
        let revocationList: RevocationList
        do {
            // A store that cannot read what requests read is not opened on (a damaged table
            // would otherwise show only when a request touched it).
            try await store.check()
            problems = try await Self.referenceProblems(config: loaded.config, store: store)
            if let revocations {
                revocationList = revocations
            } else {
                revocationList = try await RevocationList.load(from: store)
            }
        } catch {
            throw BrokerError.storage(error)
        }
        guard problems.isEmpty else { throw ConfigError(problems) }
        return Broker(
            config: loaded.config,
            keystores: loaded.keystores,
            tenantKeystores: loaded.tenantKeystores,
            store: store,
            now: now,
            cache: cache,
            generations: generations,
            revocations: revocationList,
            logger: logger
        )
    }

    init(
        config: BrokerConfig,
        keystores: [String: any Keystore],
        tenantKeystores: TenantKeystores,
        store: any KeyPairStore,
        now: @escaping @Sendable () -> Date,
        cache: PrivateKeyCache?,
        generations: GenerationCoalescer,
        revocations: RevocationList = RevocationList(),
        logger: Logger
    ) {
        self.config = config
        self.keystores = keystores
        self.tenantKeystores = tenantKeystores
        self.store = store
        self.now = now
        self.cache = cache
        self.generations = generations
        self.revocations = revocations
        self.logger = logger
    }

    /// The findings for stored pairs whose keystore is missing from `config` or changed type.
    /// Reads the store's usage counts (a few rows at any size of history); only for a
    /// finding does it read which organizations' pairs are concerned.
    public static func referenceProblems(config: BrokerConfig, store: any KeyPairStore) async throws(StoreError) -> [ConfigDiagnostic] {
        let byKeystore = Dictionary(grouping: try await store.keystoreUsage(), by: \.keystoreName)
        var problems: [ConfigDiagnostic] = []
        for (name, rows) in byKeystore.sorted(by: { $0.key < $1.key }) {
            if let type = TenantKeystoreTemplate.type(ofInstanceName: name) {
                // A tenant's pairs need the template they were made from (and their stored key).
                guard config.tenantKeystores[type] == nil || rows.contains(where: { $0.keystoreType != type }) else { continue }
                let total = rows.reduce(0) { $0 &+ $1.pairs }
                let perOrganization = try await Self.perOrganization(store, name, types: rows.map(\.keystoreType).sorted())
                problems.append(
                    ConfigDiagnostic(
                        .error,
                        at: ConfigLocation(file: config.source, line: 1, column: 1),
                        "tenantKeystores.\(type) is not configured, but \(total) stored key pair(s) of tenants need it to decrypt (\(perOrganization)); put it back under 'tenantKeystores:' (it may offer nothing new) so their recordings stay readable"
                    )
                )
                continue
            }
            if let configured = config.keystores[name] {
                let mismatched = rows.filter { $0.keystoreType != configured.type }.sorted { $0.keystoreType < $1.keystoreType }
                if let stored = mismatched.first?.keystoreType {
                    let count = mismatched.reduce(0) { $0 &+ $1.pairs }
                    let perOrganization = try await Self.perOrganization(store, name, types: mismatched.map(\.keystoreType))
                    problems.append(
                        ConfigDiagnostic(
                            .error,
                            at: configured.location,
                            "keystore '\(name)' is now of type '\(configured.type)', but \(count) stored key pair(s) were wrapped by it as type '\(stored)' (\(perOrganization)); restore type '\(stored)', and give a new keystore a new name"
                        )
                    )
                }
            } else {
                let total = rows.reduce(0) { $0 &+ $1.pairs }
                let perOrganization = try await Self.perOrganization(store, name, types: rows.map(\.keystoreType).sorted())
                problems.append(
                    ConfigDiagnostic(
                        .error,
                        at: ConfigLocation(file: config.source, line: 1, column: 1),
                        "keystore '\(name)' is not configured, but \(total) stored key pair(s) need it to decrypt (\(perOrganization)); put it back under 'keystores:' (organizations need not use it) so their recordings stay readable"
                    )
                )
            }
        }
        return problems
    }

    /// "org-a: 2, org-b: 1": the first ten organizations whose pairs keystore `name` wrapped as
    /// one of `types`, and whether there are more.
    private static func perOrganization(_ store: any KeyPairStore, _ name: String, types: [String]) async throws(StoreError) -> String {
        var counts: [String: Int] = [:]
        for type in types {
            for row in try await store.organizationsUsing(keystore: name, type: type, limit: 11) {
                counts[row.organization, default: 0] &+= row.count
            }
        }
        let items = counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        return items.count > 10 ? items.prefix(10).joined(separator: ", ") + " and more" : items.joined(separator: ", ")
    }

    // MARK: organizations

    /// The settings of `organization` from the operator's file alone (`organizations:`, else
    /// `defaults`): what an organization without a configuration of its own gets.
    public func policy(for organization: OrganizationID) -> OrganizationPolicy {
        config.policy(for: organization)
    }

    /// The effective settings of `organization`: the operator's pin, else its own stored
    /// configuration, else `defaults` (one point read of the store).
    public func resolvedPolicy(for organization: OrganizationID) async throws(BrokerError) -> OrganizationPolicy {
        guard config.organizations[organization] == nil else { return config.policy(for: organization) }
        do {
            return config.policy(for: organization, stored: try await store.keyConfiguration(for: organization))
        } catch {
            throw BrokerError.storage(error)
        }
    }

    /// ``resolvedPolicy(for:)`` and the stored configuration's version it was read from (0:
    /// none), or `nil` for the operator's organizations.
    func resolvedPolicyAndVersion(for organization: OrganizationID) async throws(BrokerError) -> (OrganizationPolicy, Int?) {
        guard config.organizations[organization] == nil else { return (config.policy(for: organization), nil) }
        do {
            let stored = try await store.keyConfiguration(for: organization)
            return (config.policy(for: organization, stored: stored), stored?.version ?? 0)
        } catch {
            throw BrokerError.storage(error)
        }
    }

    /// The keystore that makes `organization`'s pairs under `policy`, with the context that
    /// binds them and the name and type stored on them.
    func keystore(
        for policy: OrganizationPolicy,
        of organization: OrganizationID
    ) throws(BrokerError) -> (keystore: any Keystore, context: EncryptionContext, name: String, type: String) {
        guard let type = TenantKeystoreTemplate.type(ofInstanceName: policy.keystore) else {
            let (keystore, settings) = try keystore(named: policy.keystore)
            return (keystore, settings.context(for: organization), settings.name, settings.type)
        }
        let template = try tenantTemplate(type)
        guard let alias = policy.keyAlias else {
            throw BrokerError(.invalidInput, "organization '\(organization)' chose keystore type '\(type)' without a keyAlias")
        }
        return (try tenantKeystore(template, keyAlias: alias), template.context(for: organization), template.instanceName, type)
    }

    /// The template of tenant keystore type `type`.
    func tenantTemplate(_ type: String) throws(BrokerError) -> TenantKeystoreTemplate {
        guard let template = config.tenantKeystores[type] else {
            let offered = config.tenantKeystores.keys.sorted()
            throw BrokerError(
                .invalidInput,
                offered.isEmpty
                    ? "this server offers no keystore types to tenants (the operator has no 'tenantKeystores:' section); ask the operator"
                    : "keystore type '\(type)' is not offered to tenants; offered: \(offered.joined(separator: ", ")), or default"
            )
        }
        return template
    }

    /// A tenant's keystore instance for `keyAlias` under `template`.
    func tenantKeystore(_ template: TenantKeystoreTemplate, keyAlias: String) throws(BrokerError) -> any Keystore {
        do {
            return try tenantKeystores.keystore(template, values: ["keyAlias": keyAlias])
        } catch {
            throw BrokerError(.invalidInput, error.diagnostics.map(\.message).joined(separator: "; "))
        }
    }

    func keystore(named name: String) throws(BrokerError) -> (any Keystore, KeystoreSettings) {
        guard let keystore = keystores[name], let settings = config.keystores[name] else {
            throw BrokerError(
                .invalidInput,
                "keystore '\(name)' is not configured; configured: \(keystores.keys.sorted().joined(separator: ", "))"
            )
        }
        return (keystore, settings)
    }

    // MARK: key pairs

    /// Creates a key pair through the organization's configured keystore and makes it
    /// current. On any failure the current pair stays as it was. While a generation for the
    /// organization runs, another call joins it and returns its pair.
    /// - Parameters:
    ///   - organization: whose pair.
    ///   - reason: why, for the history.
    ///   - requestedBy: who asked, for the history.
    ///   - beforeCommit: runs once the pair exists and before it is stored (the server writes
    ///     its audit record here); when it throws, nothing is stored.
    @discardableResult
    public func generateKeyPair(
        for organization: OrganizationID,
        reason: KeyPairReason,
        requestedBy: String,
        beforeCommit: @escaping @Sendable (KeyPairRecord) async throws(BrokerError) -> Void = { _ in }
    ) async throws(BrokerError) -> KeyPairRecord {
        try await generateKeyPairJoining(
            for: organization,
            reason: reason,
            requestedBy: requestedBy,
            beforeCommit: beforeCommit
        ).record
    }

    /// ``generateKeyPair(for:reason:requestedBy:beforeCommit:)``, also telling whether the
    /// call joined a generation that another caller started (its `beforeCommit` did not run).
    /// - Parameter admit: decides whether a new generation may start when none is running
    ///   (throw to refuse, e.g. ``BrokerError/rateLimited(retryAfter:_:)``); joining needs none.
    public func generateKeyPairJoining(
        for organization: OrganizationID,
        reason: KeyPairReason,
        requestedBy: String,
        admit: () throws(BrokerError) -> Void = {},
        beforeCommit: @escaping @Sendable (KeyPairRecord) async throws(BrokerError) -> Void = { _ in }
    ) async throws(BrokerError) -> (record: KeyPairRecord, joined: Bool) {
        try revocations.check(organization)
        return try await generations.generate(for: organization, admit: admit) { () throws(BrokerError) in
            try await self.makeKeyPair(for: organization, reason: reason, requestedBy: requestedBy, beforeCommit: beforeCommit)
        }
    }

    /// What a scheduled rotation did.
    public enum Rotation: Sendable {
        /// The organization has a new pair.
        case rotated(KeyPairRecord)
        /// Nothing stored: another writer replaced the pair that was due meanwhile (a "change
        /// key now" on another replica), so the rotation is done already.
        case replacedMeanwhile
        /// Nothing stored: this process no longer holds the rotation lease.
        case leaseLost
    }

    /// A scheduled rotation: a new pair replacing `due` (the current pair found due, `nil`
    /// when the organization had none), stored only while `fence` holds and `due` is still
    /// current, so that two replicas (or a replica and a "change key now") never make two new
    /// pairs for one due rotation.
    public func rotate(
        _ organization: OrganizationID,
        replacing due: UUID?,
        reason: KeyPairReason,
        fence: LeaseFence?,
        requestedBy: String,
        beforeCommit: @escaping @Sendable (KeyPairRecord) async throws(BrokerError) -> Void = { _ in }
    ) async throws(BrokerError) -> Rotation {
        try revocations.check(organization)
        do {
            let make: @Sendable () async throws(BrokerError) -> KeyPairRecord = { () throws(BrokerError) in
                try await self.makeKeyPair(
                    for: organization,
                    reason: reason,
                    requestedBy: requestedBy,
                    condition: InsertCondition(replacing: .some(due), fence: fence),
                    beforeCommit: beforeCommit
                )
            }
            // Not through the coalescer: a "change key now" must not join a conditioned
            // rotation and inherit its "not stored" (the conditions make a second pair for one
            // due rotation impossible anyway).
            return .rotated(try await make())
        } catch let error where error.insertOutcome == .currentChanged {
            return .replacedMeanwhile
        } catch let error where error.insertOutcome == .leaseLost {
            return .leaseLost
        }
    }

    private func makeKeyPair(
        for organization: OrganizationID,
        reason: KeyPairReason,
        requestedBy: String,
        condition: InsertCondition = .none,
        beforeCommit: (KeyPairRecord) async throws(BrokerError) -> Void
    ) async throws(BrokerError) -> KeyPairRecord {
        var attempts = 0
        var record: KeyPairRecord
        while true {
            attempts += 1
            let (policy, version) = try await resolvedPolicyAndVersion(for: organization)
            record = try await newKeyPair(for: organization, policy: policy, reason: reason, requestedBy: requestedBy)
            try await beforeCommit(record)
            let outcome: InsertOutcome
            do {
                // The operator's organizations have no stored configuration that could change.
                var condition = condition
                condition.configurationVersion = version
                condition.unlessRevoked = true
                outcome = try await store.insertCurrent(record, if: condition)
            } catch {
                throw BrokerError.storage(error)
            }
            if outcome == .stored { break }
            if outcome == .revoked { throw BrokerError.revoked(organization) }
            guard outcome == .configurationChanged else {
                logger.info(
                    "scheduled rotation not stored",
                    metadata: ["org": "\(organization)", "keyPair": "\(record.id)", "outcome": "\(outcome)"]
                )
                throw BrokerError.notStored(outcome, organization)
            }
            // The organization's configuration was saved while this pair was made under the
            // old one: the pair is dropped, and made again under the new one.
            guard attempts < 3 else {
                throw BrokerError(
                    .storageFailed,
                    "the key configuration of organization '\(organization)' kept changing while its key pair was made; try again"
                )
            }
        }
        logger.info(
            "generated key pair",
            metadata: ["org": "\(organization)", "keyPair": "\(record.id)", "keystore": "\(record.keystoreName)", "reason": "\(reason)"]
        )
        return record
    }

    /// A new pair for `organization` through the keystore `policy` names, not yet stored.
    func newKeyPair(
        for organization: OrganizationID,
        policy: OrganizationPolicy,
        reason: KeyPairReason,
        requestedBy: String
    ) async throws(BrokerError) -> KeyPairRecord {
        let chosen = try keystore(for: policy, of: organization)
        let generated: GeneratedKeyPair
        do {
            generated = try await chosen.keystore.generateKeyPair(policy.keyPairSpec, context: chosen.context)
        } catch {
            throw BrokerError.keystore(error, while: "generating a key pair for organization '\(organization)'")
        }
        return KeyPairRecord(
            id: UUID(),
            organization: organization,
            keystoreName: chosen.name,
            keystoreType: chosen.type,
            backendKeyReference: generated.wrapped.backendKeyReference,
            spec: policy.keyPairSpec,
            publicKeyDER: generated.publicKeyDER,
            wrappedPrivateKey: generated.wrapped.ciphertext,
            encryptionContext: chosen.context,
            createdAt: Self.storagePrecision(now()),
            reason: reason,
            requestedBy: requestedBy
        )
    }

    /// Stores keep microseconds; rounding here makes the returned record equal the stored one.
    public static func storagePrecision(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
    }

    /// The organization's current pair, from the store only (no keystore call).
    /// - Throws: ``BrokerError`` (`notFound`) when the organization has no pair yet.
    public func currentKeyPair(for organization: OrganizationID) async throws(BrokerError) -> KeyPairRecord {
        let record: KeyPairRecord?
        do {
            record = try await store.current(for: organization)
        } catch {
            throw BrokerError.storage(error)
        }
        guard let record else {
            throw BrokerError(
                .notFound,
                "organization '\(organization)' has no key pair yet; create one with: keybroker keys generate --org \(organization)"
            )
        }
        return record
    }

    /// The organization's pairs, newest first.
    public func history(
        for organization: OrganizationID,
        limit: Int = 100,
        offset: Int = 0
    ) async throws(BrokerError) -> [StoredKeyPair] {
        // One more than a page is allowed, so that a caller can tell whether another page follows.
        guard (1...Self.maximumHistoryPage + 1).contains(limit), offset >= 0 else {
            throw BrokerError(.invalidInput, "history pages hold 1 to \(Self.maximumHistoryPage) pairs from an offset of 0 or more")
        }
        do {
            return try await store.history(for: organization, limit: limit, offset: offset)
        } catch {
            throw BrokerError.storage(error)
        }
    }

    /// The pair `id` if it belongs to `organization`.
    /// - Throws: ``BrokerError`` (`notFound`) for an unknown pair or one of another organization
    ///   (the same answer, so that callers learn nothing about other organizations).
    public func keyPair(_ id: UUID, of organization: OrganizationID) async throws(BrokerError) -> StoredKeyPair {
        let stored: StoredKeyPair?
        do {
            stored = try await store.keyPair(id: id, of: organization)
        } catch {
            throw BrokerError.storage(error)
        }
        guard let stored, stored.record.organization == organization else {
            throw BrokerError(.notFound, "organization '\(organization)' has no key pair \(id.uuidString.lowercased())")
        }
        return stored
    }

    /// Unwraps a data key that was wrapped with one of the organization's public keys,
    /// through the keystore recorded on that pair.
    /// - Parameters:
    ///   - organization: the organization the caller acts for.
    ///   - keyPairID: the pair named in the recording's header.
    ///   - wrappedDataKey: the RSA-OAEP-SHA256 ciphertext.
    /// - Returns: the data key (32 bytes). The private key never leaves this call.
    /// - Throws: ``BrokerError`` (`invalidInput`, one message for every cause) when the
    ///   ciphertext does not decrypt to a 32-byte data key: the broker unwraps data keys, and
    ///   is no general decryption service for whatever was encrypted to an organization's key.
    public func unwrapDataKey(
        for organization: OrganizationID,
        keyPairID: UUID,
        wrappedDataKey: Data
    ) async throws(BrokerError) -> Data {
        // Before the cache: a revoked organization's keys are not used, cached or not.
        try revocations.check(organization)
        let privateKey: PrivateKeyMaterial
        if let cached = await cache?.cachedKey(for: keyPairID, of: organization) {
            // A hit needs no store read: the cache is keyed by organization and pair, so it
            // answers only what the store would (a pair of this organization), and reload
            // empties it.
            privateKey = cached
        } else {
            let record = try await keyPair(keyPairID, of: organization).record
            // An RSA ciphertext is exactly the modulus size: anything else is refused before
            // it costs a keystore call or a cache entry.
            guard wrappedDataKey.count == record.spec.bits / 8 else { throw Self.notADataKey(keyPairID) }
            if let cache {
                let revocations = self.revocations
                let load: @Sendable () async throws(BrokerError) -> PrivateKeyMaterial = { () throws(BrokerError) in
                    try await self.decryptPrivateKey(of: record)
                }
                privateKey = try await cache.key(
                    for: record.id,
                    of: organization,
                    keep: { !revocations.isRevoked(organization) },
                    load: load
                )
            } else {
                privateKey = try await decryptPrivateKey(of: record)
            }
        }
        // Again: a revocation that landed while the key was read or decrypted wins.
        try revocations.check(organization)
        guard wrappedDataKey.count == privateKey.spec.bits / 8 else { throw Self.notADataKey(keyPairID) }
        var dataKey: Data
        do {
            // Milliseconds of CPU: off the cooperative pool, which the probes share.
            dataKey = try await BlockingWork.cpu(.decryption) { () throws(KeyMaterialError) in try privateKey.unwrapDataKey(wrappedDataKey)
            }
        } catch {
            throw Self.notADataKey(keyPairID)
        }
        guard dataKey.count == Self.dataKeySize else {
            PrivateKeyMaterial.wipe(&dataKey)
            throw Self.notADataKey(keyPairID)
        }
        return dataKey
    }

    /// The size of a data key (AES-256), the only plaintext ``unwrapDataKey(for:keyPairID:wrappedDataKey:)`` returns.
    public static let dataKeySize = 32

    /// The one answer for a ciphertext that is not a data key wrapped with the pair, whatever
    /// the cause, so that the answer says nothing about what else it might hold.
    private static func notADataKey(_ keyPairID: UUID) -> BrokerError {
        BrokerError(
            .invalidInput,
            "wrappedKey is not a \(dataKeySize)-byte data key wrapped with key pair \(keyPairID.uuidString.lowercased()) (RSA-OAEP-SHA256); check that the recording names this pair and that its header is intact"
        )
    }

    /// The keystore that wrapped `record`: a configured one by name, or a tenant's, rebuilt
    /// from its template and the key recorded on the pair (so that old pairs decrypt after the
    /// tenant changed its key or type, and after a restart).
    func keystore(thatWrapped record: KeyPairRecord) throws(BrokerError) -> any Keystore {
        if let type = TenantKeystoreTemplate.type(ofInstanceName: record.keystoreName) {
            guard let template = config.tenantKeystores[type], record.keystoreType == type else {
                throw BrokerError(
                    .keystoreFailed,
                    "key pair \(record.id.uuidString.lowercased()) was wrapped by a tenant keystore of type '\(type)', which 'tenantKeystores:' no longer offers; put tenantKeystores.\(type) back"
                )
            }
            guard let key = record.backendKeyReference else {
                throw BrokerError.corruptRecord("key pair \(record.id.uuidString.lowercased()) of a tenant keystore names no key")
            }
            return try tenantKeystore(template, keyAlias: key)
        }
        guard let keystore = keystores[record.keystoreName] else {
            // Broker.open refuses such a configuration; this guards a store changed underneath.
            throw BrokerError(
                .keystoreFailed,
                "key pair \(record.id.uuidString.lowercased()) was wrapped by keystore '\(record.keystoreName)', which is not configured; add it back under 'keystores:'"
            )
        }
        return keystore
    }

    func decryptPrivateKey(of record: KeyPairRecord) async throws(BrokerError) -> PrivateKeyMaterial {
        let keystore = try keystore(thatWrapped: record)
        // The context comes from the database; a row whose context names another organization
        // (copied from another org's pair) must not unwrap for this one (invariant 5).
        guard record.encryptionContext.pairs.count == 1,
            record.encryptionContext.pairs.values.first == record.organization.rawValue
        else {
            throw BrokerError.corruptRecord(
                "key pair \(record.id.uuidString.lowercased()) of organization '\(record.organization)' carries encryption context \(record.encryptionContext), which binds it to another organization"
            )
        }
        let wrapped = WrappedPrivateKey(ciphertext: record.wrappedPrivateKey, backendKeyReference: record.backendKeyReference)
        let material: PrivateKeyMaterial
        do {
            material = try await keystore.decryptPrivateKey(wrapped, context: record.encryptionContext)
        } catch {
            let failure = BrokerError.keystore(error, while: "decrypting the private key of key pair \(record.id.uuidString.lowercased())")
            // Fail closed: a key its owner disabled or no longer lets KeyBroker use means that
            // the organization's keys must not be used from memory either.
            if error.kind == .denied || error.kind == .keyUnusable {
                await cache?.removeAll(of: record.organization)
            }
            // A tenant's own key failing is the tenant's to see, on its configuration.
            await recordTenantError(failure, for: record.organization, keystore: record.keystoreName)
            throw failure
        }
        // A stored public key that does not belong to the private key means the row was altered.
        guard material.spec == record.spec, material.publicKeyDER == record.publicKeyDER else {
            throw BrokerError.corruptRecord(
                "key pair \(record.id.uuidString.lowercased())'s stored public key does not match its private key; the database row was altered"
            )
        }
        return material
    }

    // MARK: rotation

    /// When the current pair is due for rotation under `policy`; `nil` for `never` or when
    /// there is no pair (then one is due at once).
    public func nextRotation(policy: OrganizationPolicy, current: KeyPairRecord?) -> Date? {
        guard let current else { return nil }
        return policy.rotation.nextRotation(after: current.createdAt)
    }

    /// Why an organization with `policy` and `current` needs a new pair at `time`: it has none
    /// (`initial`), its current pair comes from another keystore than the configured one
    /// (`config-change`), or its cadence came due (`scheduled`); `nil` when it needs none.
    /// The one rule that the scheduler and every status view apply.
    public func rotationReason(policy: OrganizationPolicy, current: KeyPairRecord?, at time: Date) -> KeyPairReason? {
        guard let current else { return .initial }
        if current.keystoreName != policy.keystore { return .configChange }
        return policy.rotation.isDue(created: current.createdAt, now: time) ? .scheduled : nil
    }

    /// Whether the organization needs a new pair at `now` (see ``rotationReason(policy:current:at:)``).
    public func rotationDue(for organization: OrganizationID, at now: Date) async throws(BrokerError) -> Bool {
        let current: KeyPairRecord?
        do {
            current = try await store.current(for: organization)
        } catch {
            throw BrokerError.storage(error)
        }
        return rotationReason(policy: try await resolvedPolicy(for: organization), current: current, at: now) != nil
    }
}
