import Foundation
import GRDB
import KeyBroker

/// Reads one `key_configuration` row with the same strict type checks as ``SQLiteRow``: a
/// value of the wrong type is a ``StoreError/Kind/corruptRecord`` naming the organization
/// and the column, never a trap.
struct SQLiteKeyConfigurationRow {
    let row: Row
    let organization: OrganizationID

    /// The columns every query reads.
    static let columns = """
        type, key_alias, rotation, key_pair_spec, version, updated_at_us, updated_by, \
        last_error_code, last_error_message, last_error_at_us
        """

    func configuration() throws(StoreError) -> StoredKeyConfiguration {
        let columns = StoredValues.KeyConfigurationColumns(
            type: try text("type"),
            keyAlias: try optionalText("key_alias"),
            rotation: try text("rotation"),
            keyPairSpec: try optionalText("key_pair_spec"),
            version: try integer("version"),
            updatedAtMicroseconds: try integer("updated_at_us"),
            updatedBy: try text("updated_by"),
            lastErrorCode: try optionalText("last_error_code"),
            lastErrorMessage: try optionalText("last_error_message"),
            lastErrorAtMicroseconds: try optionalInteger("last_error_at_us")
        )
        return try StoredValues.keyConfiguration(columns, of: organization, corrupt: corrupt)
    }

    private func value(_ column: String) throws(StoreError) -> DatabaseValue {
        do {
            return try row.decode(DatabaseValue.self, forColumn: column)
        } catch {
            throw corrupt("column \(column) cannot be read")
        }
    }

    private func text(_ column: String) throws(StoreError) -> String {
        let value = try value(column)
        guard case .string(let text) = value.storage else { throw wrongType(column, value) }
        return text
    }

    private func optionalText(_ column: String) throws(StoreError) -> String? {
        let value = try value(column)
        if value.isNull { return nil }
        guard case .string(let text) = value.storage else { throw wrongType(column, value) }
        return text
    }

    private func integer(_ column: String) throws(StoreError) -> Int64 {
        let value = try value(column)
        guard case .int64(let number) = value.storage else { throw wrongType(column, value) }
        return number
    }

    private func optionalInteger(_ column: String) throws(StoreError) -> Int64? {
        let value = try value(column)
        if value.isNull { return nil }
        guard case .int64(let number) = value.storage else { throw wrongType(column, value) }
        return number
    }

    private func wrongType(_ column: String, _ value: DatabaseValue) -> StoreError {
        corrupt("column \(column) holds \(SQLiteRow.storageClass(value))")
    }

    private func corrupt(_ problem: String) -> StoreError {
        StoreError(
            .corruptRecord,
            "the key configuration of organization '\(organization)' cannot be read: \(problem); the row was altered or damaged, restore it from a backup"
        )
    }
}
