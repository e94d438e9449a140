public import Foundation

/// What every store checks of the values it read back before they become a record: the
/// same checks and messages whatever the database (each store first reads its columns with
/// the types they must have). A value that does not pass is a
/// ``StoreError/Kind/corruptRecord`` naming the pair and the column — never a crash.
public enum StoredValues {
    /// The columns of a `key_pair` row, as read.
    public struct KeyPairColumns: Sendable {
        public var id: String
        public var organization: String
        public var keystoreName: String
        public var keystoreType: String
        public var backendKeyReference: String?
        public var spec: String
        public var publicKey: Data
        public var wrappedPrivateKey: Data
        public var encryptionContext: String
        public var createdAtMicroseconds: Int64
        public var reason: String
        public var requestedBy: String

        public init(
            id: String,
            organization: String,
            keystoreName: String,
            keystoreType: String,
            backendKeyReference: String?,
            spec: String,
            publicKey: Data,
            wrappedPrivateKey: Data,
            encryptionContext: String,
            createdAtMicroseconds: Int64,
            reason: String,
            requestedBy: String
        ) {
            self.id = id
            self.organization = organization
            self.keystoreName = keystoreName
            self.keystoreType = keystoreType
            self.backendKeyReference = backendKeyReference
            self.spec = spec
            self.publicKey = publicKey
            self.wrappedPrivateKey = wrappedPrivateKey
            self.encryptionContext = encryptionContext
            self.createdAtMicroseconds = createdAtMicroseconds
            self.reason = reason
            self.requestedBy = requestedBy
        }
    }

    /// The record of `columns`.
    /// - Parameter corrupt: makes the error for a problem (it names the pair as the store
    ///   printed its id).
    public static func keyPair(_ columns: KeyPairColumns, corrupt: (String) -> StoreError) throws(StoreError) -> KeyPairRecord {
        guard let id = UUID(uuidString: columns.id) else {
            throw corrupt("column id holds '\(DisplayText.escaped(String(columns.id.prefix(64))))', not a UUID")
        }
        guard let organization = OrganizationID(columns.organization) else {
            throw corrupt("column organization holds \(OrganizationID.invalidMessage(String(columns.organization.prefix(160))))")
        }
        guard let spec = KeyPairSpec(rawValue: columns.spec) else {
            throw corrupt(
                "column spec holds '\(DisplayText.escaped(String(columns.spec.prefix(64))))', not one of \(KeyPairSpec.allowedValues)"
            )
        }
        guard let reason = KeyPairReason(rawValue: columns.reason) else {
            throw corrupt(
                "column reason holds '\(DisplayText.escaped(String(columns.reason.prefix(64))))', not one of \(KeyPairReason.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard let context = EncryptionContext(canonicalBytes: Data(columns.encryptionContext.utf8)) else {
            throw corrupt("column encryption_context does not hold a JSON object of strings")
        }
        guard let createdAt = date(microseconds: columns.createdAtMicroseconds) else {
            throw corrupt("column created_at_us holds \(columns.createdAtMicroseconds) µs, outside the years 1970-9999")
        }
        return KeyPairRecord(
            id: id,
            organization: organization,
            keystoreName: columns.keystoreName,
            keystoreType: columns.keystoreType,
            backendKeyReference: columns.backendKeyReference,
            spec: spec,
            publicKeyDER: columns.publicKey,
            wrappedPrivateKey: columns.wrappedPrivateKey,
            encryptionContext: context,
            createdAt: createdAt,
            reason: reason,
            requestedBy: columns.requestedBy
        )
    }

    /// The columns of a `key_configuration` row, as read.
    public struct KeyConfigurationColumns: Sendable {
        public var type: String
        public var keyAlias: String?
        public var rotation: String
        public var keyPairSpec: String?
        public var version: Int64
        public var updatedAtMicroseconds: Int64
        public var updatedBy: String
        public var lastErrorCode: String?
        public var lastErrorMessage: String?
        public var lastErrorAtMicroseconds: Int64?

        public init(
            type: String,
            keyAlias: String?,
            rotation: String,
            keyPairSpec: String?,
            version: Int64,
            updatedAtMicroseconds: Int64,
            updatedBy: String,
            lastErrorCode: String?,
            lastErrorMessage: String?,
            lastErrorAtMicroseconds: Int64?
        ) {
            self.type = type
            self.keyAlias = keyAlias
            self.rotation = rotation
            self.keyPairSpec = keyPairSpec
            self.version = version
            self.updatedAtMicroseconds = updatedAtMicroseconds
            self.updatedBy = updatedBy
            self.lastErrorCode = lastErrorCode
            self.lastErrorMessage = lastErrorMessage
            self.lastErrorAtMicroseconds = lastErrorAtMicroseconds
        }
    }

    /// The organization's stored configuration of `columns`.
    public static func keyConfiguration(
        _ columns: KeyConfigurationColumns,
        of organization: OrganizationID,
        corrupt: (String) -> StoreError
    ) throws(StoreError) -> StoredKeyConfiguration {
        var rotation: RotationCadence?
        if !columns.rotation.isEmpty {
            guard let value = RotationCadence(rawValue: columns.rotation) else {
                throw corrupt("column rotation holds '\(DisplayText.escaped(String(columns.rotation.prefix(32))))'")
            }
            rotation = value
        }
        var spec: KeyPairSpec?
        if let specText = columns.keyPairSpec {
            guard let value = KeyPairSpec(rawValue: specText) else {
                throw corrupt("column key_pair_spec holds '\(DisplayText.escaped(String(specText.prefix(32))))'")
            }
            spec = value
        }
        guard let updatedAt = date(microseconds: columns.updatedAtMicroseconds), columns.version > 0,
            columns.version < Int64(Int32.max)
        else {
            throw corrupt("columns version or updated_at_us are out of range")
        }
        let lastError = columns.lastErrorCode.map { code in
            KeyConfigurationError(
                code: code,
                message: columns.lastErrorMessage ?? "",
                at: columns.lastErrorAtMicroseconds.flatMap(date(microseconds:)) ?? updatedAt
            )
        }
        return StoredKeyConfiguration(
            organization: organization,
            configuration: TenantKeyConfiguration(type: columns.type, keyAlias: columns.keyAlias, rotation: rotation, keyPairSpec: spec),
            version: Int(columns.version),
            updatedAt: updatedAt,
            updatedBy: columns.updatedBy,
            lastError: lastError
        )
    }

    /// The stored form of a time: whole microseconds since 1970.
    public static func microseconds(_ date: Date) -> Int64 {
        Int64(exactly: (date.timeIntervalSince1970 * 1_000_000).rounded()) ?? 0
    }

    /// The time of a stored value, or `nil` outside 1970-9999 (no arithmetic can trap on it).
    public static func date(microseconds: Int64) -> Date? {
        guard (0...253_402_300_799_000_000).contains(microseconds) else { return nil }
        return Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }
}
