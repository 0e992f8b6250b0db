import Foundation
import GRDB
import OutlawProtocol

/// A validated batch waiting to be committed, with the device that sent it.
public struct IncomingBatch: Sendable {
    public let deviceID: Int64
    public let session: String
    public let batch: ValidatedBatch

    public init(deviceID: Int64, session: String, batch: ValidatedBatch) {
        self.deviceID = deviceID
        self.session = session
        self.batch = batch
    }
}

/// Filters for listing batches.
public struct BatchFilter: Sendable {
    public var state: String?
    public var device: String?
    public var user: String?
    public var limit: Int

    public init(state: String? = nil, device: String? = nil, user: String? = nil, limit: Int = 1000) {
        self.state = state
        self.device = device
        self.user = user
        self.limit = limit
    }
}

extension Store {
    /// Stores several batches in one transaction (group commit); every outcome holds only once this returns.
    public func commit(_ batches: [IncomingBatch], now: Date = Date()) throws -> [BatchOutcome] {
        try pool.write { db in
            try batches.map { incoming in
                var outcome = BatchOutcome.rejected(code: NackCode.unavailable.rawValue, message: "not stored")
                // A savepoint per batch: one batch's failure never takes the others' events with it.
                try db.inSavepoint {
                    outcome = try Store.insert(incoming, db: db, now: now)
                    if case .stored = outcome { return .commit }
                    return .rollback
                }
                return outcome
            }
        }
    }

    static func insert(_ incoming: IncomingBatch, db: Database, now: Date) throws -> BatchOutcome {
        let batch = incoming.batch
        let hash = Secrets.contentHash(batch.canonicalContent)
        if let existing = try Row.fetchOne(db, sql: "SELECT content_hash, event_count FROM batches WHERE device_id = ? AND batch_id = ?",
                                           arguments: [incoming.deviceID, batch.id]) {
            let storedHash: Data = existing["content_hash"]
            if storedHash == hash { return .duplicate(events: existing["event_count"]) }
            return .rejected(code: NackCode.idConflict.rawValue,
                             message: "batch \(batch.id) was already stored with different content")
        }
        guard let user = try Row.fetchOne(db, sql: "SELECT id, active FROM users WHERE name = ?", arguments: [batch.user]) else {
            return .rejected(code: NackCode.unknownUser.rawValue, message: "no user named \(batch.user)")
        }
        guard user["active"] as Bool else {
            return .rejected(code: NackCode.inactiveUser.rawValue, message: "user \(batch.user) is disabled")
        }
        let userID: Int64 = user["id"]
        let t = now.timeIntervalSince1970
        try db.execute(sql: """
            INSERT INTO batches (device_id, batch_id, user_id, license, content_hash, event_count, received_at, session)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [incoming.deviceID, batch.id, userID, batch.license, hash, batch.events.count, t, incoming.session])
        let batchRowID = db.lastInsertedRowID
        let statement = try db.cachedStatement(sql: """
            INSERT INTO events (batch_id, seq, type, tag, at, metrc_date, fields, user_id, license, state, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for event in batch.events {
            let state = event.type.isUploaded ? "queued" : "recorded"
            try statement.execute(arguments: [
                batchRowID, event.seq, event.type.rawValue, event.tag, event.at.text, event.at.localDate,
                JSONValue.object(event.fields).serialized(sortedKeys: true), userID, batch.license, state, t,
            ])
        }
        return .stored(events: batch.events.count)
    }

    /// The `status` of each id for one device; ids of other devices are unknown to it.
    public func batchStatuses(deviceID: Int64, ids: [String]) async throws -> [String: BatchSummary] {
        try await pool.read { db in
            var result: [String: BatchSummary] = [:]
            for id in Set(ids) {
                if let row = try Row.fetchOne(db, sql: Store.summarySQL + " WHERE b.device_id = ? AND b.batch_id = ?",
                                              arguments: [deviceID, id]) {
                    result[id] = try Store.summary(row, db: db)
                }
            }
            return result
        }
    }

    public func batches(_ filter: BatchFilter) throws -> [BatchSummary] {
        try pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let device = filter.device {
                conditions.append("d.name = ?")
                _ = arguments.append(contentsOf: [device])
            }
            if let user = filter.user {
                conditions.append("u.name = ?")
                _ = arguments.append(contentsOf: [user])
            }
            let whereSQL = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            let rows = try Row.fetchAll(db, sql: Store.summarySQL + whereSQL + " ORDER BY b.id", arguments: arguments)
            var out: [BatchSummary] = []
            for row in rows {
                let summary = try Store.summary(row, db: db)
                if let state = filter.state, summary.state != state { continue }
                out.append(summary)
                if out.count >= filter.limit { break }
            }
            return out
        }
    }

    /// One batch with all its events, for `outlawctl batch show`.
    public func batchDetail(device: String, id: String) throws -> (BatchSummary, [StoredEvent])? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: Store.summarySQL + " WHERE d.name = ? AND b.batch_id = ?",
                                             arguments: [device, id]) else { return nil }
            let summary = try Store.summary(row, db: db)
            let events = try Row.fetchAll(db, sql: """
                SELECT e.*, u.name AS user_name FROM events e JOIN users u ON u.id = e.user_id
                WHERE e.batch_id = ? ORDER BY e.seq
                """, arguments: [row["pk"] as Int64]).map(Store.storedEvent)
            return (summary, events)
        }
    }

    static let summarySQL = """
        SELECT b.id AS pk, b.batch_id, b.license, b.received_at, d.name AS device_name, u.name AS user_name
        FROM batches b JOIN devices d ON d.id = b.device_id JOIN users u ON u.id = b.user_id
        """

    static func summary(_ row: Row, db: Database) throws -> BatchSummary {
        let pk: Int64 = row["pk"]
        var counts = EventCounts()
        for r in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM events WHERE batch_id = ? GROUP BY state", arguments: [pk]) {
            counts.add(state: r["state"], count: r["n"])
        }
        let heldReason = counts.held > 0
            ? try String.fetchOne(db, sql: "SELECT message FROM events WHERE batch_id = ? AND state = 'held' ORDER BY seq LIMIT 1", arguments: [pk])
            : nil
        let errors = counts.failed > 0
            ? try Row.fetchAll(db, sql: "SELECT seq, message FROM events WHERE batch_id = ? AND state = 'failed' ORDER BY seq", arguments: [pk])
                .map { BatchError(seq: $0["seq"], message: $0["message"] ?? "failed") }
            : []
        return BatchSummary(device: row["device_name"], id: row["batch_id"], user: row["user_name"], license: row["license"],
                            receivedAt: Date(timeIntervalSince1970: row["received_at"]), state: counts.batchState,
                            events: counts, heldReason: heldReason, errors: errors)
    }

    static func storedEvent(_ row: Row) -> StoredEvent {
        StoredEvent(id: row["id"], seq: row["seq"], type: row["type"], tag: row["tag"], at: row["at"], metrcDate: row["metrc_date"],
                    user: row["user_name"], license: row["license"], state: row["state"], fields: row["fields"], message: row["message"],
                    attempts: row["attempts"], keyKind: row["key_kind"], keyReason: row["key_reason"], metrcID: row["metrc_id"],
                    firstAttemptAt: (row["first_attempt_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    lastAttemptAt: (row["last_attempt_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
    }
}
