import Foundation
import GRDB

extension Store {
    static func audit(_ db: Database, actor: String, action: String, subject: String?, detail: String? = nil) throws {
        try db.execute(sql: "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
                       arguments: [Date().timeIntervalSince1970, actor, action, subject, detail])
    }

    /// Appends one line to the audit table.
    public func audit(actor: String, action: String, subject: String?, detail: String? = nil) throws {
        try pool.write { db in try Store.audit(db, actor: actor, action: action, subject: subject, detail: detail) }
    }

    public func auditEntries(limit: Int = 100) throws -> [AuditEntry] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                AuditEntry(id: row["id"], at: Date(timeIntervalSince1970: row["at"]), actor: row["actor"],
                           action: row["action"], subject: row["subject"], detail: row["detail"])
            }
        }
    }
}
