import CSQLiteConfig
import GRDB

/// A cached statement run with its arguments bound through SQLite's C API: ingest's per-event inserts.
///
/// GRDB's `execute(arguments:)` boxes every argument into an array of existentials for each execution; for the
/// writer's three inserts an event that was more of its time (retain, release, malloc) than SQLite's own work.
/// For statements that return no rows, inside a transaction the caller holds, with no transaction observers:
/// GRDB is not told of each step, which only its observers would need.
struct BoundStatement {
    private let statement: Statement
    private let connection: OpaquePointer

    init(_ statement: Statement, in db: Database) {
        self.statement = statement
        connection = db.sqliteConnection!
    }

    private var handle: OpaquePointer { statement.sqliteStatement }

    func bind(_ value: Int64, at index: Int32) { sqlite3_bind_int64(handle, index, value) }
    func bind(_ value: Int, at index: Int32) { sqlite3_bind_int64(handle, index, Int64(value)) }
    func bind(_ value: Double, at index: Int32) { sqlite3_bind_double(handle, index, value) }
    func bind(_ value: Double?, at index: Int32) {
        if let value { sqlite3_bind_double(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }
    /// SQLite copies the text (`SQLITE_TRANSIENT`): the string need not outlive the call.
    func bind(_ value: String?, at index: Int32) {
        guard let value else { sqlite3_bind_null(handle, index); return }
        sqlite3_bind_text(handle, index, value, -1, Self.transient)
    }

    /// Runs the statement with what is bound, and makes it ready for the next run (its bindings stay until replaced).
    func run() throws {
        let code = sqlite3_step(handle)
        if code != SQLITE_DONE {
            let message = String(cString: sqlite3_errmsg(connection))
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
        }
        sqlite3_reset(handle)
    }

    /// Rows changed by the last run (an `INSERT OR IGNORE` that was ignored changed none).
    var changes: Int { Int(sqlite3_changes(connection)) }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
