import Foundation
import GRDB
import OutlawProtocol

/// A validated batch waiting to be committed, with the device that sent it.
public struct IncomingBatch: Sendable {
    public let deviceID: Int64
    public let session: String
    public let batch: ValidatedBatch
    /// SHA-256 of the canonical content, computed by the connection's task so the one writer does not.
    public let contentHash: Data
    /// Scan warnings by seq when they were looked up before the commit (`BatchWriter` does, outside the write).
    public var scanWarnings: [Int: String]?
    /// SHA-256 of the batch's login ticket, the form the store keeps tickets in.
    public let ticketHash: Data?
    /// Whether a batch without a ticket is refused (`[server] require_login_ticket`); a ticket given is always checked.
    public let requireTicket: Bool

    public init(deviceID: Int64, session: String, batch: ValidatedBatch, requireTicket: Bool = false) {
        self.deviceID = deviceID
        self.session = session
        self.batch = batch
        self.contentHash = Secrets.contentHash(batch.canonicalContent)
        self.ticketHash = batch.ticket.map(Secrets.tokenHash)
        self.requireTicket = requireTicket
    }
}

/// Filters for listing batches.
public struct BatchFilter: Sendable {
    public var state: BatchState?
    public var device: String?
    public var user: String?
    public var limit: Int

    public init(state: BatchState? = nil, device: String? = nil, user: String? = nil, limit: Int = 1000) {
        self.state = state
        self.device = device
        self.user = user
        self.limit = limit
    }
}

extension Store {
    /// Stores several batches in one transaction (group commit); every outcome holds only once this returns.
    /// Uploadable events the review rule names are stored in `review` instead of `queued`.
    /// With `checkScans`, an event naming what the copy of Metrc's lists lacks is stored with a warning.
    public func commit(_ batches: [IncomingBatch], now: Date = Date(), review: ReviewRule = .none,
                       checkScans: Bool = false) throws -> [BatchOutcome] {
        try pool.write { db in
            try batches.map { incoming in
                var outcome = BatchOutcome.rejected(code: .unavailable, message: "not stored")
                // A savepoint per batch: one batch's failure never takes the others' events with it.
                try db.inSavepoint {
                    outcome = try Store.insert(incoming, db: db, now: now, review: review, checkScans: checkScans,
                                               restored: restored)
                    if case .stored = outcome { return .commit }
                    return .rollback
                }
                return outcome
            }
        }
    }

    /// `restored`: this store came from a backup. An event collected before the restore may be a resend of one the
    /// replaced store had already uploaded (acked after the backup was taken): it is read back at Metrc before it is
    /// sent, like an event whose upload was interrupted.
    static func insert(_ incoming: IncomingBatch, db: Database, now: Date, review: ReviewRule = .none,
                       checkScans: Bool = false, restored: Restored? = nil) throws -> BatchOutcome {
        let batch = incoming.batch
        let hash = incoming.contentHash
        if let existing = try Row.fetchOne(db, sql: "SELECT content_hash, event_count FROM batches WHERE device_id = ? AND batch_id = ?",
                                           arguments: [incoming.deviceID, batch.id]) {
            let storedHash: Data = existing["content_hash"]
            if storedHash == hash { return .duplicate(events: existing["event_count"]) }
            return .rejected(code: .idConflict,
                             message: "batch \(batch.id) was already stored with different content")
        }
        guard let user = try Row.fetchOne(db, sql: "SELECT id, active FROM users WHERE name = ?", arguments: [batch.user]) else {
            return .rejected(code: .unknownUser, message: "no user named \(batch.user)")
        }
        guard user["active"] as Bool else {
            return .rejected(code: .inactiveUser, message: "user \(batch.user) is disabled")
        }
        let userID: Int64 = user["id"]
        let ticketID: Int64?
        switch try Store.proveUser(incoming, userID: userID, db: db) {
        case .failure(let rejection): return .rejected(rejection)
        case .success(let id): ticketID = id
        }
        let t = now.timeIntervalSince1970
        try db.execute(sql: """
            INSERT INTO batches (device_id, batch_id, user_id, license, content_hash, event_count, received_at, session, ticket_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [incoming.deviceID, batch.id, userID, batch.license, hash, batch.events.count, t, incoming.session,
                             ticketID])
        let batchRowID = db.lastInsertedRowID
        let statement = try db.cachedStatement(sql: """
            INSERT INTO events (batch_id, seq, type, tag, at, metrc_date, fields, user_id, license, state, message, updated_at,
                                warning, unknown_since)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        // Only lists synced at least once are checked: before the first sync every name would look unknown.
        let checkedKinds: Set<ReferenceKind> = checkScans && incoming.scanWarnings == nil
            ? try Store.syncedKinds(db, license: batch.license) : []
        let tagStatement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO event_tags (tag, event_id) VALUES (?, ?)")
        for event in batch.events {
            let why = event.type.isUploaded ? review.reason(type: event.type, user: batch.user) : nil
            let state: EventState = !event.type.isUploaded ? .recorded : why == nil ? .queued : .review
            try statement.execute(arguments: [
                batchRowID, event.seq, event.type.rawValue, event.tag, event.at.text, event.at.localDate,
                event.canonicalJSON, userID, batch.license, state, why, t,
                incoming.scanWarnings?[event.seq]
                    ?? (checkedKinds.isEmpty ? nil : try Store.scanWarning(event, license: batch.license, kinds: checkedKinds, db: db)),
                restored.flatMap { state != .recorded && event.at.date <= $0.at ? $0.possiblySentSince.timeIntervalSince1970 : nil },
            ])
            // Scans never wait nor make others wait: only uploaded types take part in the order per tag (an event
            // in review keeps its place there, so later events of its tags wait for the decision).
            if state != .recorded {
                let eventID = db.lastInsertedRowID
                for tag in event.tags { try tagStatement.execute(arguments: [tag, eventID]) }
            }
        }
        return .stored(events: batch.events.count)
    }

    static func syncedKinds(_ db: Database, license: String) throws -> Set<ReferenceKind> {
        Set(try String.fetchAll(db, sql: "SELECT kind FROM reference_syncs WHERE license = ? AND last_success_at IS NOT NULL",
                                arguments: [license]).compactMap(ReferenceKind.init(rawValue:)))
    }

    /// The scan warnings of a batch by seq, read before its commit (a read never waits for the writer). A few
    /// index lookups an event, synchronous on the caller's thread like the parse before it: a thread of its own
    /// for each batch cost more than the lookups.
    public func scanWarnings(_ batch: ValidatedBatch) throws -> [Int: String] {
        try pool.read { db in
            let kinds = try Store.syncedKinds(db, license: batch.license)
            guard !kinds.isEmpty else { return [:] }
            var warnings: [Int: String] = [:]
            for event in batch.events {
                if let warning = try Store.scanWarning(event, license: batch.license, kinds: kinds, db: db) { warnings[event.seq] = warning }
            }
            return warnings
        }
    }

    /// The warning for what `event` names that the copy does not list as active (nil: all known).
    static func scanWarning(_ event: ValidatedEvent, license: String, kinds: Set<ReferenceKind>, db: Database) throws -> String? {
        let lookup = try db.cachedStatement(sql: """
            SELECT 1 FROM reference_items WHERE license = ? AND kind = ? AND key = ? AND removed_at IS NULL
            """)
        var missing: [ReferenceChecks.Lookup] = []
        for item in ReferenceChecks.lookups(type: event.type, fields: event.eventFields) where kinds.contains(item.kind) {
            if try Int.fetchOne(lookup, arguments: [license, item.kind.rawValue, item.value]) == nil { missing.append(item) }
        }
        return ReferenceChecks.warning(missing)
    }

    /// The `status` of each id for one device; ids of other devices are unknown to it.
    public func batchStatuses(deviceID: Int64, ids: [String]) async throws -> [String: BatchSummary] {
        let unique = Array(Set(ids))
        guard !unique.isEmpty else { return [:] }
        return try await readOffThePool { db in
            let (condition, arguments) = try SQL("b.device_id = \(deviceID) AND b.batch_id IN \(unique)").build(db)
            let list = try Store.summaries(db, where: condition, arguments: arguments)
            return Dictionary(list.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// Batches matching the filter, oldest first, in one query.
    public func batches(_ filter: BatchFilter) throws -> [BatchSummary] {
        try pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let device = filter.device {
                conditions.append("d.name = ?")
                arguments += [device]
            }
            if let user = filter.user {
                conditions.append("u.name = ?")
                arguments += [user]
            }
            return try Store.summaries(db, where: conditions.isEmpty ? nil : conditions.joined(separator: " AND "), arguments: arguments,
                                       state: filter.state, limit: filter.limit)
        }
    }

    /// One batch with all its events, for `outlawctl batch show`.
    public func batchDetail(device: String, id: String) throws -> (BatchSummary, [StoredEvent])? {
        try pool.read { db in
            guard let summary = try Store.summaries(db, where: "d.name = ? AND b.batch_id = ?", arguments: [device, id]).first,
                  let pk = try Int64.fetchOne(db, sql: """
                      SELECT b.id FROM batches b JOIN devices d ON d.id = b.device_id WHERE d.name = ? AND b.batch_id = ?
                      """, arguments: [device, id])
            else { return nil }
            let events = try Row.fetchAll(db, sql: """
                SELECT e.*, u.name AS user_name FROM events e JOIN users u ON u.id = e.user_id
                WHERE e.batch_id = ? ORDER BY e.seq
                """, arguments: [pk]).map(Store.storedEvent)
            return (summary, events)
        }
    }

    /// A batch's state from its event counts, in SQL, so `--state` filters before the limit. It must say what
    /// `EventCounts.batchState` says; a test compares the two over every mix of states.
    static let batchStateSQL = """
        CASE WHEN total = recorded THEN 'recorded'
             WHEN review > 0 THEN 'review'
             WHEN held > 0 THEN 'held'
             WHEN uploading > 0 THEN 'uploading'
             WHEN queued > 0 THEN (CASE WHEN uploaded > 0 OR failed > 0 OR rejected > 0 THEN 'uploading' ELSE 'queued' END)
             WHEN failed > 0 OR rejected > 0 THEN (CASE WHEN uploaded > 0 THEN 'partial' ELSE 'failed' END)
             ELSE 'uploaded' END
        """

    /// One count column per event state, named as the state.
    static let countColumns = EventState.allCases
        .map { "COALESCE(SUM(e.state = '\($0.rawValue)'), 0) AS \($0.rawValue)" }.joined(separator: ", ")

    /// Batch summaries with their event counts, first held reason and failures, all in one query.
    static func summaries(_ db: Database, where condition: String?, arguments: StatementArguments, state: BatchState? = nil,
                          limit: Int? = nil) throws -> [BatchSummary]
    {
        var sql = """
            SELECT * FROM (
              SELECT b.id AS pk, b.batch_id, b.license, b.received_at, d.name AS device_name, u.name AS user_name,
                COUNT(e.id) AS total, \(countColumns),
                (SELECT h.message FROM events h WHERE h.batch_id = b.id AND h.state = '\(EventState.held.rawValue)'
                   ORDER BY h.seq LIMIT 1) AS held_reason,
                (SELECT json_group_array(json_object('seq', f.seq, 'message', f.message))
                   FROM (SELECT seq, message FROM events WHERE batch_id = b.id
                           AND state IN ('\(EventState.failed.rawValue)', '\(EventState.rejected.rawValue)')
                         ORDER BY seq) f) AS failures,
                (SELECT json_group_array(json_object('seq', w.seq, 'message', w.warning))
                   FROM (SELECT seq, warning FROM events WHERE batch_id = b.id AND warning IS NOT NULL ORDER BY seq) w) AS warnings
              FROM batches b JOIN devices d ON d.id = b.device_id JOIN users u ON u.id = b.user_id
              LEFT JOIN events e ON e.batch_id = b.id
            """
        if let condition { sql += " WHERE " + condition }
        sql += " GROUP BY b.id)"
        var allArguments = arguments
        if let state {
            sql += " WHERE (" + batchStateSQL + ") = ?"
            allArguments += [state.rawValue]
        }
        sql += " ORDER BY pk"
        if let limit {
            sql += " LIMIT ?"
            allArguments += [limit]
        }
        return try Row.fetchAll(db, sql: sql, arguments: allArguments).map(summary)
    }

    static func summary(_ row: Row) -> BatchSummary {
        var counts = EventCounts()
        for state in EventState.allCases {
            counts.add(state: state, count: row[state.rawValue])
        }
        struct Failure: Decodable {
            let seq: Int
            let message: String?
        }
        let failures = (row["failures"] as String?).flatMap { try? JSONDecoder().decode([Failure].self, from: Data($0.utf8)) } ?? []
        let warnings = (row["warnings"] as String?).flatMap { try? JSONDecoder().decode([Failure].self, from: Data($0.utf8)) } ?? []
        var summary = BatchSummary(device: row["device_name"], id: row["batch_id"], user: row["user_name"], license: row["license"],
                            receivedAt: Date(timeIntervalSince1970: row["received_at"]), state: counts.batchState,
                            events: counts, heldReason: row["held_reason"],
                            errors: failures.map { BatchError(seq: $0.seq, message: $0.message ?? "failed") })
        summary.warnings = warnings.map { BatchError(seq: $0.seq, message: $0.message ?? "") }
        return summary
    }

    static func storedEvent(_ row: Row) -> StoredEvent {
        StoredEvent(id: row["id"], seq: row["seq"], type: row["type"], tag: row["tag"], at: row["at"], metrcDate: row["metrc_date"],
                    user: row["user_name"], license: row["license"], state: row["state"], fields: row["fields"], message: row["message"],
                    attempts: row["attempts"], keyKind: row["key_kind"], keyReason: row["key_reason"], metrcID: row["metrc_id"],
                    firstAttemptAt: (row["first_attempt_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    lastAttemptAt: (row["last_attempt_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    warning: row["warning"])
    }
}
