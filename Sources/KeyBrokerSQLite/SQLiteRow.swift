import Foundation
import GRDB
import KeyBroker

/// Reads one `key_pair` row with strict type checks.
///
/// SQLite stores any value in any column, and GRDB's non-throwing `row[...]` traps on a
/// value it cannot convert, while its fast paths silently convert (text to 0). Either would
/// let one edited row stop the server or mislead it, so every column is read as the storage
/// class it must have, and anything else is a ``StoreError/Kind/corruptRecord`` naming the
/// pair and the column.
struct SQLiteRow {
    let row: Row
    /// The id as stored, for messages (whatever its type).
    let idText: String

    init(_ row: Row) {
        self.row = row
        idText = Self.printable(row, "id")
    }

    func stored() throws(StoreError) -> StoredKeyPair {
        StoredKeyPair(record: try record(), isCurrent: try integer("is_current") == 1)
    }

    func record() throws(StoreError) -> KeyPairRecord {
        let columns = StoredValues.KeyPairColumns(
            id: try text("id"),
            organization: try text("organization"),
            keystoreName: try text("keystore_name"),
            keystoreType: try text("keystore_type"),
            backendKeyReference: try optionalText("backend_key_reference"),
            spec: try text("spec"),
            publicKey: try blob("public_key"),
            wrappedPrivateKey: try blob("wrapped_private_key"),
            encryptionContext: try text("encryption_context"),
            createdAtMicroseconds: try integer("created_at_us"),
            reason: try text("reason"),
            requestedBy: try text("requested_by")
        )
        return try StoredValues.keyPair(columns, corrupt: corrupt)
    }

    /// The report for a row whose ``record()`` failed.
    func corruptReport(_ error: StoreError) -> CorruptKeyPair {
        let organization = (try? text("organization")).flatMap(OrganizationID.init)
        return CorruptKeyPair(keyPairID: idText, organization: organization, problem: error.message)
    }

    // MARK: columns

    private func value(_ column: String) throws(StoreError) -> DatabaseValue {
        do {
            return try row.decode(DatabaseValue.self, forColumn: column)
        } catch {
            throw corrupt("column \(column) cannot be read (\(error))")
        }
    }

    private func text(_ column: String) throws(StoreError) -> String {
        guard case .string(let text) = try value(column).storage else { throw wrongType(column, expected: "text") }
        return text
    }

    private func optionalText(_ column: String) throws(StoreError) -> String? {
        let value = try value(column)
        if value.isNull { return nil }
        guard case .string(let text) = value.storage else { throw wrongType(column, expected: "text or NULL") }
        return text
    }

    private func integer(_ column: String) throws(StoreError) -> Int64 {
        guard case .int64(let number) = try value(column).storage else { throw wrongType(column, expected: "an integer") }
        return number
    }

    private func blob(_ column: String) throws(StoreError) -> Data {
        guard case .blob(let data) = try value(column).storage else { throw wrongType(column, expected: "a blob") }
        return data
    }

    private func wrongType(_ column: String, expected: String) -> StoreError {
        let found = (try? value(column)).map(Self.storageClass) ?? "nothing"
        return corrupt("column \(column) holds \(found), not \(expected)")
    }

    private func corrupt(_ problem: String) -> StoreError {
        StoreError(
            .corruptRecord,
            "key pair \(idText) cannot be read: \(problem); the row was altered or damaged, restore it from a backup",
            keyPairID: idText
        )
    }

    // MARK: conversions

    static func storageClass(_ value: DatabaseValue) -> String {
        switch value.storage {
        case .null: "NULL"
        case .int64: "an integer"
        case .double: "a real number"
        case .string: "text"
        case .blob: "a blob"
        }
    }

    /// A column's value as text for messages and reports, whatever its type (escaped, at
    /// most 128 characters).
    static func printable(_ row: Row, _ column: String) -> String {
        guard let value = try? row.decode(DatabaseValue.self, forColumn: column) else { return "?" }
        let text: String
        switch value.storage {
        case .null: text = "NULL"
        case .int64(let number): text = String(number)
        case .double(let number): text = String(number)
        case .string(let string): text = string
        case .blob(let data): text = "<\(data.count)-byte blob>"
        }
        return String(DisplayText.escaped(text).prefix(128))
    }

    /// The stored form of a time: whole microseconds since 1970.
    static func microseconds(_ date: Date) -> Int64 { StoredValues.microseconds(date) }

    /// The time of a stored value, or `nil` outside 1970-9999.
    static func date(microseconds: Int64) -> Date? { StoredValues.date(microseconds: microseconds) }
}
