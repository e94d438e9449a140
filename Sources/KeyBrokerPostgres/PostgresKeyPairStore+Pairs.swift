public import Foundation
public import KeyBroker
import Logging
import NIOCore
import PostgresNIO
import Synchronization

extension PostgresKeyPairStore {
    // MARK: writing pairs

    /// Serializes the writers of one organization's current pair, to the commit.
    static func lockOrganization(_ organization: OrganizationID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(organization.rawValue), 0))", logger: logger)
    }

    /// Makes `record` its organization's current pair (the organization's lock is held).
    static func insert(_ record: KeyPairRecord, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "UPDATE key_pair SET is_current = false WHERE organization = \(record.organization.rawValue) AND is_current",
            logger: logger
        )
        let context = String(decoding: record.encryptionContext.canonicalBytes, as: UTF8.self)
        try await connection.query(
            """
            INSERT INTO key_pair (id, organization, keystore_name, keystore_type, backend_key_reference, spec, public_key,
                wrapped_private_key, encryption_context, created_at_us, reason, requested_by, is_current, rotation_class)
            VALUES (\(record.id), \(record.organization.rawValue), \(record.keystoreName), \(record.keystoreType),
                \(record.backendKeyReference), \(record.spec.rawValue), \(ByteBuffer(bytes: record.publicKeyDER)),
                \(ByteBuffer(bytes: record.wrappedPrivateKey)), \(context), \(StoredValues.microseconds(record.createdAt)),
                \(record.reason.rawValue), \(record.requestedBy), true,
                COALESCE((SELECT rotation FROM key_configuration WHERE organization = \(record.organization.rawValue)), ''))
            """,
            logger: logger
        )
    }

    public func insertCurrent(_ record: KeyPairRecord) async throws(StoreError) {
        _ = try await insertCurrent(record, if: .none)
    }

    public func insertCurrent(_ record: KeyPairRecord, if condition: InsertCondition) async throws(StoreError) -> InsertOutcome {
        let logger = self.logger
        return try await transaction("storing key pair \(record.id.uuidString.lowercased())") { connection -> InsertOutcome in
            try await Self.lockOrganization(record.organization, on: connection, logger: logger)
            if let fence = condition.fence, !(try await Self.holds(fence, on: connection, logger: logger)) { return .leaseLost }
            if condition.unlessRevoked, try await Self.isRevoked(record.organization, on: connection, logger: logger) { return .revoked }
            if let version = condition.configurationVersion,
                try await Self.storedVersion(of: record.organization, on: connection, logger: logger) != version
            {
                return .configurationChanged
            }
            if let replacing = condition.replacing {
                let rows = try await connection.query(
                    "SELECT id FROM key_pair WHERE organization = \(record.organization.rawValue) AND is_current",
                    logger: logger
                )
                var current: UUID?
                for try await (id) in rows.decode(UUID.self) { current = id }
                guard current == replacing else { return .currentChanged }
            }
            try await Self.insert(record, on: connection, logger: logger)
            _ = try await Self.recordChange(.currentPair, record.organization, on: connection, logger: logger)
            return .stored
        }
    }

    /// Whether the organization is revoked (its lock is held, so no revocation commits meanwhile).
    static func isRevoked(_ organization: OrganizationID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await !connection.query(
            "SELECT 1 FROM revocation WHERE organization = \(organization.rawValue)",
            logger: logger
        ).collect().isEmpty
    }

    /// The stored configuration's version, 0 when none.
    static func storedVersion(of organization: OrganizationID, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query(
            "SELECT version FROM key_configuration WHERE organization = \(organization.rawValue)",
            logger: logger
        )
        var version = 0
        for try await (value) in rows.decode(Int.self) { version = value }
        return version
    }

    // MARK: reading pairs

    public func current(for organization: OrganizationID) async throws(StoreError) -> KeyPairRecord? {
        let found = try await rows(
            "reading the current key pair of organization '\(organization)'",
            "SELECT \(unescaped: Self.columns) FROM key_pair WHERE organization = \(organization.rawValue) AND is_current"
        )
        return try found.first.map { row throws(StoreError) in try PostgresCells.keyPair(row).record }
    }

    public func keyPair(id: UUID, of organization: OrganizationID) async throws(StoreError) -> StoredKeyPair? {
        let found = try await rows(
            "reading key pair \(id.uuidString.lowercased())",
            "SELECT \(unescaped: Self.columns) FROM key_pair WHERE id = \(id) AND organization = \(organization.rawValue)"
        )
        return try found.first.map { row throws(StoreError) in try PostgresCells.keyPair(row) }
    }

    public func history(for organization: OrganizationID, limit: Int, offset: Int) async throws(StoreError) -> [StoredKeyPair] {
        let found = try await rows(
            "reading the key-pair history of organization '\(organization)'",
            """
            SELECT \(unescaped: Self.columns) FROM key_pair WHERE organization = \(organization.rawValue)
            ORDER BY created_at_us DESC, seq DESC LIMIT \(max(0, limit)) OFFSET \(max(0, offset))
            """
        )
        var pairs: [StoredKeyPair] = []
        for row in found { pairs.append(try PostgresCells.keyPair(row)) }
        return pairs
    }

    public func currentPairs(_ query: CurrentPairQuery, limit: Int) async throws(StoreError) -> CurrentPairs {
        let limit = max(0, min(limit, 100_000))
        let sql: PostgresQuery
        switch query {
        case .byOrganization(let after):
            sql = """
                SELECT \(unescaped: Self.columns) FROM key_pair
                WHERE is_current AND organization > \(after ?? "") ORDER BY organization LIMIT \(limit + 1)
                """
        case .wrappedBy(let keystore, let after):
            sql = """
                SELECT \(unescaped: Self.columns) FROM key_pair
                WHERE is_current AND keystore_name = \(keystore) AND organization > \(after ?? "")
                ORDER BY organization LIMIT \(limit + 1)
                """
        case .createdAtOrBefore(let threshold, let cadence, let after):
            sql = """
                SELECT \(unescaped: Self.columns) FROM key_pair
                WHERE is_current AND rotation_class = \(cadence?.rawValue ?? "")
                    AND created_at_us <= \(StoredValues.microseconds(threshold))
                    AND (created_at_us, organization) > (\(after?.createdAtMicroseconds ?? Int64.min), \(after?.organization ?? ""))
                ORDER BY created_at_us, organization LIMIT \(limit + 1)
                """
        }
        let found = try await rows("reading a page of current key pairs", sql)
        let page = found.prefix(limit)
        var records: [KeyPairRecord] = []
        var corrupt: [CorruptKeyPair] = []
        for row in page {
            do throws(StoreError) {
                records.append(try PostgresCells.keyPair(row).record)
            } catch {
                corrupt.append(PostgresCells.corruptReport(row, error))
            }
        }
        // The cursor is the last row's key, whatever else in it is damaged.
        guard found.count > limit, let last = page.last, let organization = try? PostgresCells(last, describing: "").text(1) else {
            return CurrentPairs(records: records, corrupt: corrupt, next: nil)
        }
        let next = query.continuing(
            afterOrganization: organization,
            createdAtMicroseconds: try? PostgresCells(last, describing: "").integer(9)
        )
        return CurrentPairs(records: records, corrupt: corrupt, next: next)
    }

    public func keystoreUsage() async throws(StoreError) -> [KeystoreUsage] {
        let found = try await rows(
            "reading which keystores the stored key pairs need",
            "SELECT keystore_name, keystore_type, pairs, current_pairs FROM keystore_use WHERE pairs > 0 ORDER BY keystore_name, keystore_type"
        )
        var usage: [KeystoreUsage] = []
        for row in found {
            let cells = PostgresCells(row, describing: "the keystore usage")
            usage.append(
                KeystoreUsage(
                    keystoreName: try cells.text(0),
                    keystoreType: try cells.text(1),
                    pairs: Int(clamping: try cells.integer(2)),
                    currentPairs: Int(clamping: try cells.integer(3))
                )
            )
        }
        return usage
    }

    public func organizationsUsing(
        keystore name: String,
        type: String,
        limit: Int
    ) async throws(StoreError) -> [KeystoreUsage.PerOrganization] {
        let found = try await rows(
            "reading which organizations keystore '\(name)' wrapped pairs for",
            """
            SELECT organization, COUNT(*) FROM key_pair WHERE keystore_name = \(name) AND keystore_type = \(type)
            GROUP BY organization ORDER BY organization LIMIT \(max(0, limit))
            """
        )
        var result: [KeystoreUsage.PerOrganization] = []
        for row in found {
            let cells = PostgresCells(row, describing: "the keystore usage")
            result.append(.init(organization: try cells.text(0), count: Int(clamping: try cells.integer(1))))
        }
        return result
    }

    // MARK: key configurations

    public func keyConfiguration(for organization: OrganizationID) async throws(StoreError) -> StoredKeyConfiguration? {
        let found = try await rows(
            "reading the key configuration of organization '\(organization)'",
            """
            SELECT type, key_alias, rotation, key_pair_spec, version, updated_at_us, updated_by,
                last_error_code, last_error_message, last_error_at_us
            FROM key_configuration WHERE organization = \(organization.rawValue)
            """
        )
        guard let row = found.first else { return nil }
        let cells = PostgresCells(row, describing: "the key configuration of organization '\(organization)'")
        let columns = StoredValues.KeyConfigurationColumns(
            type: try cells.text(0),
            keyAlias: try cells.optionalText(1),
            rotation: try cells.text(2),
            keyPairSpec: try cells.optionalText(3),
            version: try cells.integer(4),
            updatedAtMicroseconds: try cells.integer(5),
            updatedBy: try cells.text(6),
            lastErrorCode: try cells.optionalText(7),
            lastErrorMessage: try cells.optionalText(8),
            lastErrorAtMicroseconds: try cells.optionalInteger(9)
        )
        return try StoredValues.keyConfiguration(columns, of: organization, corrupt: cells.corrupt)
    }

    public func saveKeyConfiguration(
        _ configuration: TenantKeyConfiguration,
        for organization: OrganizationID,
        expectedVersion: Int?,
        updatedBy: String,
        at time: Date,
        newPair: KeyPairRecord
    ) async throws(StoreError) -> KeyConfigurationSave {
        let logger = self.logger
        return try await transaction("storing the key configuration of organization '\(organization)'") { connection in
            try await Self.lockOrganization(organization, on: connection, logger: logger)
            let stored = try await Self.storedVersion(of: organization, on: connection, logger: logger)
            if let expectedVersion, expectedVersion != stored { return .conflict(storedVersion: stored) }
            if try await Self.isRevoked(organization, on: connection, logger: logger) { return .revoked }
            let saved = StoredKeyConfiguration(
                organization: organization,
                configuration: configuration,
                version: stored + 1,
                updatedAt: Broker.storagePrecision(time),
                updatedBy: updatedBy,
                lastError: nil
            )
            try await connection.query(
                """
                INSERT INTO key_configuration (organization, type, key_alias, rotation, key_pair_spec, version, updated_at_us, updated_by)
                VALUES (\(organization.rawValue), \(configuration.type), \(configuration.keyAlias), \(configuration.rotation?.rawValue ?? ""),
                    \(configuration.keyPairSpec?.rawValue), \(saved.version), \(StoredValues.microseconds(saved.updatedAt)), \(updatedBy))
                ON CONFLICT (organization) DO UPDATE SET type = EXCLUDED.type, key_alias = EXCLUDED.key_alias,
                    rotation = EXCLUDED.rotation, key_pair_spec = EXCLUDED.key_pair_spec, version = EXCLUDED.version,
                    updated_at_us = EXCLUDED.updated_at_us, updated_by = EXCLUDED.updated_by,
                    last_error_code = NULL, last_error_message = NULL, last_error_at_us = NULL
                """,
                logger: logger
            )
            try await Self.insert(newPair, on: connection, logger: logger)
            _ = try await Self.recordChange(.keyConfiguration, organization, on: connection, logger: logger)
            return .saved(saved)
        }
    }

    public func recordKeyConfigurationError(_ error: KeyConfigurationError?, for organization: OrganizationID) async throws(StoreError) {
        _ = try await rows(
            "recording the last error of organization '\(organization)'",
            """
            UPDATE key_configuration SET last_error_code = \(error?.code), last_error_message = \(error.map { String($0.message.prefix(2000)) }),
                last_error_at_us = \(error.map { StoredValues.microseconds($0.at) }) WHERE organization = \(organization.rawValue)
            """
        )
    }

    // MARK: revocation

    public func revocation(of organization: OrganizationID) async throws(StoreError) -> Revocation? {
        let found = try await rows(
            "reading whether organization '\(organization)' is revoked",
            "SELECT organization, revoked_at_us, revoked_by FROM revocation WHERE organization = \(organization.rawValue)"
        )
        return found.first.map(Self.revocation) ?? nil
    }

    /// A revocation row; one whose details cannot be read still revokes (fail closed).
    static func revocation(_ row: PostgresRow) -> Revocation? {
        let cells = PostgresCells(row, describing: "a revocation")
        guard let organization = (try? cells.text(0)).flatMap(OrganizationID.init) else { return nil }
        let at = (try? cells.integer(1)).flatMap(StoredValues.date(microseconds:)) ?? Date(timeIntervalSince1970: 0)
        return Revocation(organization: organization, revokedAt: at, revokedBy: (try? cells.text(2)) ?? "?")
    }

    public func setRevocation(_ revocation: Revocation?, for organization: OrganizationID) async throws(StoreError) -> Bool {
        let logger = self.logger
        return try await transaction("changing the revocation of organization '\(organization)'") { connection in
            // Serialized with the organization's pair writers: none stores a pair after this commits.
            try await Self.lockOrganization(organization, on: connection, logger: logger)
            let changed: [PostgresRow]
            if let revocation {
                changed = try await connection.query(
                    """
                    INSERT INTO revocation (organization, revoked_at_us, revoked_by)
                    VALUES (\(organization.rawValue), \(StoredValues.microseconds(revocation.revokedAt)), \(revocation.revokedBy))
                    ON CONFLICT (organization) DO NOTHING RETURNING organization
                    """,
                    logger: logger
                ).collect()
            } else {
                changed = try await connection.query(
                    "DELETE FROM revocation WHERE organization = \(organization.rawValue) RETURNING organization",
                    logger: logger
                ).collect()
            }
            guard !changed.isEmpty else { return false }
            _ = try await Self.recordChange(.revocation, organization, on: connection, logger: logger)
            return true
        }
    }

    public func revokedOrganizations(after: String?, limit: Int) async throws(StoreError) -> RevocationPage {
        let limit = max(1, min(limit, 100_000))
        let found = try await rows(
            "reading the revoked organizations",
            """
            SELECT organization, revoked_at_us, revoked_by FROM revocation WHERE organization > \(after ?? "")
            ORDER BY organization LIMIT \(limit)
            """
        )
        let next = found.count == limit ? found.last.flatMap { try? PostgresCells($0, describing: "a revocation").text(0) } : nil
        return RevocationPage(revocations: found.compactMap(Self.revocation), next: next)
    }

    // MARK: health

    @discardableResult
    public func check() async throws(StoreError) -> [CorruptKeyPair] {
        // A page of the current-pair index, a different one each time (bounded at any size).
        let after = checkCursor.withLock { $0 }
        let found = try await rows(
            "checking the store",
            """
            SELECT \(unescaped: Self.columns) FROM key_pair WHERE is_current AND organization > \(after)
            ORDER BY organization LIMIT \(Self.checkPageSize)
            """
        )
        var corrupt: [CorruptKeyPair] = []
        for row in found {
            do throws(StoreError) {
                _ = try PostgresCells.keyPair(row)
            } catch {
                corrupt.append(PostgresCells.corruptReport(row, error))
            }
        }
        let last = found.count == Self.checkPageSize ? found.last.flatMap { try? PostgresCells($0, describing: "").text(1) } : nil
        checkCursor.withLock { $0 = last ?? "" }
        return corrupt
    }

    /// How many current pairs one ``check()`` reads.
    static let checkPageSize = 64
}
