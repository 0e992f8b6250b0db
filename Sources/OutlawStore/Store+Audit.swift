import Foundation
import GRDB

extension Store {
    /// The one way a row enters the audit table: chained to the current head in the caller's write transaction.
    /// SQLite has a single writer, so no other row can take the head between the read and the insert; the id is
    /// given explicitly because it is part of the hash (rows are never deleted, so head + 1 is what SQLite would pick).
    static func audit(_ db: Database, actor: String, action: AuditAction, subject: String?, detail: String? = nil) throws {
        let head = try Store.auditHeadRow(db)
        let id = (head.flatMap { AuditChain.integer($0[0]) } ?? 0) + 1
        // A head without a proper hash was tampered with; `verifyAudit` names it, the insert still goes on.
        let previous = head.flatMap { AuditChain.blob($0[1]) } ?? AuditChain.genesis
        let fields: [DatabaseValue] = [id.databaseValue, Date().timeIntervalSince1970.databaseValue,
                                       actor.databaseValue, action.rawValue.databaseValue, subject?.databaseValue ?? .null, detail?.databaseValue ?? .null]
        let values = fields + [previous.databaseValue, AuditChain.hash(previous: previous, fields: fields).databaseValue]
        typealias A = AuditColumns
        // A list interpolates as `(?, ?, …)`.
        try db.execute(literal: """
            INSERT INTO \(AuditTable.self) (\(A.id), \(A.at), \(A.actor), \(A.action), \(A.subject), \(A.detail), \(A.prevHash), \(A.hash))
            VALUES \(values)
            """)
    }

    /// The last row's id and hash, in that order.
    static func auditHeadRow(_ db: Database) throws -> Row? {
        try Row.fetchOne(db, SQLRequest<Row>(literal: """
            SELECT \(AuditColumns.id), \(AuditColumns.hash) FROM \(AuditTable.self) ORDER BY \(AuditColumns.id) DESC LIMIT 1
            """))
    }

    /// The last audit row's id and hash: what the daemon writes to the journal as the outside witness.
    public func auditHead() throws -> AuditHead? {
        try pool.read { db in
            try Store.auditHeadRow(db).map { row in
                AuditHead(id: AuditChain.integer(row[0]) ?? 0, hash: AuditChain.blob(row[1]) ?? Data())
            }
        }
    }

    /// Walks the whole chain in id order, recomputing each row's hash from its fields and the previous row's
    /// stored hash; stops at the first row that does not match. Reads one snapshot, so a concurrent insert is
    /// either wholly in or out.
    public func verifyAudit() throws -> AuditVerification {
        try pool.read { db in try Store.verifyAudit(db) }
    }

    /// `verifyAudit` in the caller's read (a backup copy's check reads its own file).
    static func verifyAudit(_ db: Database) throws -> AuditVerification {
        do {
            var previous = AuditChain.genesis
            var previousID: Int64?
            var rows = 0
            typealias A = AuditColumns
            // Read by position: the six chained fields in `AuditChain`'s order, then the two hashes.
            let cursor = try Row.fetchCursor(db, SQLRequest<Row>(literal: """
                SELECT \(A.id), \(A.at), \(A.actor), \(A.action), \(A.subject), \(A.detail), \(A.prevHash), \(A.hash)
                FROM \(AuditTable.self) ORDER BY \(A.id)
                """))
            while let row = try cursor.next() {
                let fields: [DatabaseValue] = (0..<6).map { row[$0] as DatabaseValue }
                let id = AuditChain.integer(fields[0]) ?? 0
                let linked = AuditChain.blob(row[6])
                let stored = AuditChain.blob(row[7]) ?? Data()
                if linked != previous {
                    let problem = previousID.map { "its previous hash is not row \($0)'s hash (row removed or reordered?)" }
                        ?? "it is the first row but its previous hash is not 32 zero bytes (rows removed before it?)"
                    return AuditVerification(rows: rows, head: nil, firstBad: AuditBreak(id: id, kind: .previousHash, problem: problem))
                }
                if AuditChain.hash(previous: previous, fields: fields) != stored {
                    return AuditVerification(rows: rows, head: nil,
                                             firstBad: AuditBreak(id: id, kind: .content, problem: "its content does not match its hash (edited?)"))
                }
                rows += 1
                previous = stored
                previousID = id
            }
            return AuditVerification(rows: rows, head: previousID.map { AuditHead(id: $0, hash: previous) }, firstBad: nil)
        }
    }

    /// Appends one line to the audit table.
    public func audit(actor: String, action: AuditAction, subject: String?, detail: String? = nil) throws {
        try pool.write { db in try Store.audit(db, actor: actor, action: action, subject: subject, detail: detail) }
    }

    public func auditEntries(limit: Int = 100) throws -> [AuditEntry] {
        try pool.read { db in
            try Row.fetchAll(db, SQLRequest<Row>(literal: "SELECT * FROM \(AuditTable.self) ORDER BY \(AuditColumns.id) DESC LIMIT \(limit)")).map { row in
                AuditEntry(id: row[AuditColumns.id], at: Date(timeIntervalSince1970: row[AuditColumns.at]), actor: row[AuditColumns.actor],
                           action: row[AuditColumns.action], subject: row[AuditColumns.subject], detail: row[AuditColumns.detail])
            }
        }
    }
}

/// The audit table's hash chain. Each row's `hash` is SHA-256 over
///
///     prev ‖ enc(id) ‖ enc(at) ‖ enc(actor) ‖ enc(action) ‖ enc(subject) ‖ enc(detail)
///
/// where `prev` is the `hash` of the row before it (by id), or 32 zero bytes for the first row, and `enc` is a
/// column's value as SQLite stores it, tagged and self-delimiting so no two different rows encode alike:
/// - NULL: the byte 0x00
/// - INTEGER: 0x01, then the 64-bit two's-complement value, big-endian (8 bytes)
/// - REAL: 0x02, then the IEEE 754 binary64 bit pattern, big-endian (8 bytes)
/// - TEXT: 0x03, then the UTF-8 byte count as an unsigned 32-bit big-endian number, then the bytes
/// - BLOB: 0x04, then the byte count as for TEXT, then the bytes
///
/// `prev_hash` repeats `prev` in the row, so a removed row shows at the row after it. An auditor can recompute
/// the chain without outlawd, e.g. in Python:
///
///     import hashlib, sqlite3, struct
///     def enc(v):
///         if v is None: return b"\0"
///         if isinstance(v, int): return b"\1" + struct.pack(">q", v)
///         if isinstance(v, float): return b"\2" + struct.pack(">d", v)
///         b = v.encode() if isinstance(v, str) else v
///         return (b"\3" if isinstance(v, str) else b"\4") + struct.pack(">I", len(b)) + b
///     prev = bytes(32)
///     for row in sqlite3.connect(path).execute(
///             "SELECT id, at, actor, action, subject, detail, hash FROM audit ORDER BY id"):
///         assert hashlib.sha256(prev + b"".join(map(enc, row[:6]))).digest() == row[6], row[0]
///         prev = row[6]
public enum AuditChain {
    /// What the first row chains to.
    public static let genesis = Data(count: 32)

    /// A row's hash: its fields (id, at, actor, action, subject, detail) chained to the hash of the row before.
    public static func hash(previous: Data, fields: [DatabaseValue]) -> Data {
        var bytes = previous
        for field in fields { encode(field, into: &bytes) }
        return LibCrypto.sha256(bytes)
    }

    static func encode(_ value: DatabaseValue, into bytes: inout Data) {
        func bigEndian(_ n: UInt64) { withUnsafeBytes(of: n.bigEndian) { bytes.append(contentsOf: $0) } }
        func counted(_ tag: UInt8, _ data: Data) {
            bytes.append(tag)
            withUnsafeBytes(of: UInt32(data.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(data)
        }
        switch value.storage {
        case .null: bytes.append(0)
        case .int64(let n):
            bytes.append(1)
            bigEndian(UInt64(bitPattern: n))
        case .double(let x):
            bytes.append(2)
            bigEndian(x.bitPattern)
        case .string(let s): counted(3, Data(s.utf8))
        case .blob(let d): counted(4, d)
        }
    }

    /// A stored value only when it has the expected type: a tampered row must be reported, never trap.
    static func blob(_ value: DatabaseValue) -> Data? {
        if case .blob(let data) = value.storage { return data }
        return nil
    }

    static func integer(_ value: DatabaseValue) -> Int64? {
        if case .int64(let n) = value.storage { return n }
        return nil
    }

    /// Fills `prev_hash` and `hash` for rows written before the chain existed (migration v4), in id order.
    static func backfill(_ db: Database) throws {
        var previous = genesis
        let rows = try Row.fetchAll(db, sql: "SELECT id, at, actor, action, subject, detail FROM audit ORDER BY id")
        for row in rows {
            let fields: [DatabaseValue] = (0..<6).map { row[$0] }
            let digest = hash(previous: previous, fields: fields)
            try db.execute(sql: "UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", arguments: [previous, digest, fields[0]])
            previous = digest
        }
    }
}

/// The newest audit row's id and hash.
public struct AuditHead: Sendable, Equatable {
    public let id: Int64
    public let hash: Data

    /// The hash as lower-case hex, as the journal and `outlawctl audit verify` show it.
    public var hex: String { hash.map { String(format: "%02x", $0) }.joined() }
}

/// The first audit row that breaks the chain, and how.
public struct AuditBreak: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The row's fields do not hash to its stored hash: it was edited (or its hash was).
        case content
        /// The row does not point at the row before it: a row was removed, or rows reordered.
        case previousHash = "previous_hash"
    }

    public let id: Int64
    public let kind: Kind
    /// Why, in words: "its content does not match its hash (edited?)".
    public let problem: String

    /// "row 17: its content does not match its hash (edited?)"
    public var description: String { "row \(id): \(problem)" }
}

/// The result of walking the audit chain: intact up to its head, or broken at `firstBad`.
public struct AuditVerification: Sendable, Equatable {
    /// Rows checked and found good (all of them when intact).
    public let rows: Int
    /// The newest row when the chain is intact.
    public let head: AuditHead?
    public let firstBad: AuditBreak?

    public var intact: Bool { firstBad == nil }
}

extension Secrets {
    /// SHA-256 of any bytes (the daemon's `daemon.start` audit row records its configuration's).
    public static func sha256(_ data: Data) -> Data { LibCrypto.sha256(data) }
}
