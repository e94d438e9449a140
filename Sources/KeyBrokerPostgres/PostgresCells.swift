import Foundation
import KeyBroker
import NIOCore
import PostgresNIO

/// Reads the cells of one row by position, each as the type its column has; a cell that does
/// not decode is a ``StoreError/Kind/corruptRecord`` naming the row, never a crash.
struct PostgresCells {
    let row: PostgresRandomAccessRow
    let describing: String
    let keyPairID: String?

    init(_ row: PostgresRow, describing: String, keyPairID: String? = nil) {
        self.row = row.makeRandomAccess()
        self.describing = describing
        self.keyPairID = keyPairID
    }

    private func decode<T: PostgresDecodable>(_ index: Int, _ type: T.Type) throws(StoreError) -> T {
        guard index < row.count else { throw corrupt("column \(index + 1) is missing") }
        do {
            return try row[index].decode(T.self)
        } catch {
            throw corrupt("column \(row[index].columnName) does not hold \(T.self)")
        }
    }

    func text(_ index: Int) throws(StoreError) -> String { try decode(index, String.self) }
    func optionalText(_ index: Int) throws(StoreError) -> String? { try decode(index, String?.self) }
    func integer(_ index: Int) throws(StoreError) -> Int64 { try decode(index, Int64.self) }
    func optionalInteger(_ index: Int) throws(StoreError) -> Int64? { try decode(index, Int64?.self) }
    func bool(_ index: Int) throws(StoreError) -> Bool { try decode(index, Bool.self) }
    func uuid(_ index: Int) throws(StoreError) -> UUID { try decode(index, UUID.self) }
    func bytes(_ index: Int) throws(StoreError) -> Data {
        let buffer = try decode(index, ByteBuffer.self)
        return Data(buffer.readableBytesView)
    }

    func corrupt(_ problem: String) -> StoreError {
        StoreError(
            .corruptRecord,
            "\(describing) cannot be read: \(problem); the row was altered or damaged, restore it from a backup",
            keyPairID: keyPairID
        )
    }

    /// A `key_pair` row read with ``PostgresKeyPairStore/columns``.
    static func keyPair(_ row: PostgresRow) throws(StoreError) -> StoredKeyPair {
        let id = (try? PostgresCells(row, describing: "a key pair").uuid(0))?.uuidString.lowercased() ?? "?"
        let cells = PostgresCells(row, describing: "key pair \(id)", keyPairID: id)
        let columns = StoredValues.KeyPairColumns(
            id: id,
            organization: try cells.text(1),
            keystoreName: try cells.text(2),
            keystoreType: try cells.text(3),
            backendKeyReference: try cells.optionalText(4),
            spec: try cells.text(5),
            publicKey: try cells.bytes(6),
            wrappedPrivateKey: try cells.bytes(7),
            encryptionContext: try cells.text(8),
            createdAtMicroseconds: try cells.integer(9),
            reason: try cells.text(10),
            requestedBy: try cells.text(11)
        )
        let record = try StoredValues.keyPair(columns, corrupt: cells.corrupt)
        return StoredKeyPair(record: record, isCurrent: try cells.bool(12))
    }

    /// The report for a row that ``keyPair(_:)`` refused.
    static func corruptReport(_ row: PostgresRow, _ error: StoreError) -> CorruptKeyPair {
        let cells = PostgresCells(row, describing: "a key pair")
        return CorruptKeyPair(
            keyPairID: error.keyPairID ?? "?",
            organization: (try? cells.text(1)).flatMap(OrganizationID.init),
            problem: error.message
        )
    }
}
