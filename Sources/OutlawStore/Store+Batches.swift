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
        ingestFirst.ingestArrives()
        var entered = false
        defer { if !entered { ingestFirst.ingestEntered() } }
        return try pool.write { db in
            entered = true
            ingestFirst.ingestEntered()
            return try batches.map { incoming in
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
        if let existing = try Row.fetchOne(db, SQLRequest<Row>(literal: """
            SELECT \(BatchColumns.contentHash), \(BatchColumns.eventCount) FROM \(BatchTable.self)
            WHERE \(BatchColumns.deviceID) = \(incoming.deviceID) AND \(BatchColumns.batchID) = \(batch.id)
            """)) {
            let storedHash: Data = existing[BatchColumns.contentHash]
            if storedHash == hash { return .duplicate(events: existing[BatchColumns.eventCount]) }
            return .rejected(code: .idConflict,
                             message: "batch \(batch.id) was already stored with different content")
        }
        // A batch retention moved to an archive is still stored: its resend is a duplicate, never stored again.
        if let archived = try Store.archivedBatch(db, deviceID: incoming.deviceID, batchID: batch.id) {
            if archived.contentHash == hash { return .duplicate(events: archived.events) }
            return .rejected(code: .idConflict, message: "batch \(batch.id) was already stored with different content (now archived)")
        }
        guard let user = try Row.fetchOne(db, SQLRequest<Row>(literal: """
            SELECT \(UserColumns.id), \(UserColumns.active) FROM \(UserTable.self) WHERE \(UserColumns.name) = \(batch.user)
            """)) else {
            return .rejected(code: .unknownUser, message: "no user named \(batch.user)")
        }
        guard user[UserColumns.active] as Bool else {
            return .rejected(code: .inactiveUser, message: "user \(batch.user) is disabled")
        }
        let userID: Int64 = user[UserColumns.id]
        let ticketID: Int64?
        switch try Store.proveUser(incoming, userID: userID, db: db) {
        case .failure(let rejection): return .rejected(rejection)
        case .success(let id): ticketID = id
        }
        let t = now.timeIntervalSince1970
        typealias B = BatchColumns
        try db.execute(literal: """
            INSERT INTO \(BatchTable.self) (\(B.deviceID), \(B.batchID), \(B.userID), \(B.license), \(B.contentHash), \(B.eventCount),
              \(B.receivedAt), \(B.session), \(B.ticketID))
            VALUES (\(incoming.deviceID), \(batch.id), \(userID), \(batch.license), \(hash), \(batch.events.count), \(t),
              \(incoming.session), \(ticketID))
            """)
        let batchRowID = db.lastInsertedRowID
        // The event insert is prepared once a batch from a literal of names and placeholders, and run for each event
        // with its values bound straight through SQLite (building a literal, or GRDB's boxed arguments, for each
        // event would cost the writer more than the insert).
        typealias E = EventColumns
        let statement = BoundStatement(try db.cachedStatement(literal: """
            INSERT INTO \(EventTable.self) (\(E.id), \(E.batchID), \(E.seq), \(E.type), \(E.tag), \(E.at), \(E.metrcDate), \(E.fields), \(E.userID),
              \(E.license), \(E.state), \(E.message), \(E.updatedAt), \(E.warning), \(E.unknownSince), \(E.headsPending))
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """), in: db)
        // The same for every event of the batch.
        statement.bind(batchRowID, at: 2)
        statement.bind(userID, at: 9)
        statement.bind(batch.license, at: 10)
        statement.bind(t, at: 13)
        // Only lists synced at least once are checked: before the first sync every name would look unknown.
        let checkedKinds: Set<ReferenceKind> = checkScans && incoming.scanWarnings == nil
            ? try Store.syncedKinds(db, license: batch.license) : []
        let heads = try ReadyHeads.Ingest(db)
        // Each event's id is given, as SQLite would choose it (the largest plus one), so its heads are claimed before
        // its insert: one statement a tag instead of a lookup and an insert.
        var nextEventID = try ReadyHeads.Ingest.nextEventID(db)
        for event in batch.events {
            let eventID = nextEventID
            nextEventID += 1
            let why = event.type.isUploaded ? review.reason(type: event.type, user: batch.user) : nil
            let state: EventState = !event.type.isUploaded ? .recorded : why == nil ? .queued : .review
            // Scans never wait nor make others wait: only uploaded types take part in the order per tag (an event
            // in review keeps its place there, so later events of its tags wait for the decision).
            let tags = state == .recorded ? [] : ReadyHeads.distinct(event.tags)
            let waits = tags.isEmpty ? 0 : try heads.claimHeads(eventID: eventID, tags: tags)
            let warning = try incoming.scanWarnings?[event.seq]
                ?? (checkedKinds.isEmpty ? nil : Store.scanWarning(event, license: batch.license, kinds: checkedKinds, db: db))
            statement.bind(eventID, at: 1)
            statement.bind(event.seq, at: 3)
            statement.bind(event.type.rawValue, at: 4)
            statement.bind(event.tag, at: 5)
            statement.bind(event.at.text, at: 6)
            statement.bind(event.at.localDate, at: 7)
            statement.bind(event.canonicalJSON, at: 8)
            statement.bind(state.rawValue, at: 11)
            statement.bind(why, at: 12)
            statement.bind(warning, at: 14)
            statement.bind(restored.flatMap { state != .recorded && event.at.date <= $0.at ? $0.possiblySentSince.timeIntervalSince1970 : nil },
                           at: 15)
            statement.bind(waits, at: 16)
            try statement.run()
            if !tags.isEmpty { try heads.addTagRows(eventID: eventID, tags: tags) }
        }
        return .stored(events: batch.events.count)
    }

    static func syncedKinds(_ db: Database, license: String) throws -> Set<ReferenceKind> {
        Set(try String.fetchAll(db, SQLRequest<String>(literal: """
            SELECT \(ReferenceSyncColumns.kind) FROM \(ReferenceSyncTable.self)
            WHERE \(ReferenceSyncColumns.license) = \(license) AND \(ReferenceSyncColumns.lastSuccessAt) IS NOT NULL
            """)).compactMap(ReferenceKind.init(rawValue:)))
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

    /// The warning for what `event` names that the copy does not list as active (nil: all known). The lookup is plain
    /// SQL text, prepared once and cached: it runs for each event, on the writer when the scan was not read before.
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
            let list = try Store.summaries(db, where: "b.\(BatchColumns.deviceID) = \(deviceID) AND b.\(BatchColumns.batchID) IN \(unique)")
            return Dictionary(list.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// Batches matching the filter, oldest first, in one query.
    public func batches(_ filter: BatchFilter) throws -> [BatchSummary] {
        try pool.read { db in
            var conditions: [SQL] = []
            if let device = filter.device { conditions.append("d.\(DeviceColumns.name) = \(device)") }
            if let user = filter.user { conditions.append("u.\(UserColumns.name) = \(user)") }
            return try Store.summaries(db, where: conditions.isEmpty ? nil : conditions.joined(separator: " AND "),
                                       state: filter.state, limit: filter.limit)
        }
    }

    /// One batch with all its events, for `outlawctl batch show`.
    public func batchDetail(device: String, id: String) throws -> (BatchSummary, [StoredEvent])? {
        try pool.read { db in
            guard let summary = try Store.summaries(db, where: "d.\(DeviceColumns.name) = \(device) AND b.\(BatchColumns.batchID) = \(id)").first,
                  let pk = try Store.batchPK(db, device: device, batchID: id)
            else { return nil }
            let events = try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT e.*, u.\(UserColumns.name) AS \(ListingColumns.userName)
                FROM \(EventTable.self) e JOIN \(UserTable.self) u ON u.\(UserColumns.id) = e.\(EventColumns.userID)
                WHERE e.\(EventColumns.batchID) = \(pk) ORDER BY e.\(EventColumns.seq)
                """)).map(Store.storedEvent)
            return (summary, events)
        }
    }

    /// The row id of a device's batch: two placeholders, the device's name and the batch's id.
    static let batchPKQuery: SQL = """
        SELECT b.\(BatchColumns.id) FROM \(BatchTable.self) b JOIN \(DeviceTable.self) d ON d.\(DeviceColumns.id) = b.\(BatchColumns.deviceID)
        WHERE d.\(DeviceColumns.name) = ? AND b.\(BatchColumns.batchID) = ?
        """

    static func batchPK(_ db: Database, device: String, batchID: String) throws -> Int64? {
        try Int64.fetchOne(db.makeStatement(literal: batchPKQuery), arguments: [device, batchID])
    }

    /// A batch's state from its event counts, in SQL, so `--state` filters before the limit. It must say what
    /// `EventCounts.batchState` says; a test compares the two over every mix of states.
    static let batchStateSQL: SQL = {
        let total = SummaryColumns.total
        func n(_ state: EventState) -> Column { SummaryColumns.count(state) }
        return """
            CASE WHEN \(total) = \(n(.recorded)) THEN 'recorded'
                 WHEN \(n(.review)) > 0 THEN 'review'
                 WHEN \(n(.held)) > 0 THEN 'held'
                 WHEN \(n(.uploading)) > 0 THEN 'uploading'
                 WHEN \(n(.queued)) > 0 THEN (CASE WHEN \(n(.uploaded)) > 0 OR \(n(.failed)) > 0 OR \(n(.rejected)) > 0 THEN 'uploading' ELSE 'queued' END)
                 WHEN \(n(.failed)) > 0 OR \(n(.rejected)) > 0 THEN (CASE WHEN \(n(.uploaded)) > 0 THEN 'partial' ELSE 'failed' END)
                 ELSE 'uploaded' END
            """
    }()

    /// One count column per event state, named as the state.
    static let countColumns: SQL = EventState.allCases
        .map { "COALESCE(SUM(e.\(EventColumns.state) = '\(sql: $0.rawValue)'), 0) AS \(SummaryColumns.count($0))" as SQL }
        .joined(separator: ", ")

    /// The names `summaries` gives its result columns beside the batch's own.
    enum SummaryColumns {
        static let total = Column("total")
        static let heldReason = Column("held_reason")
        /// JSON arrays of `{seq, message}`: failed or rejected events, and events stored with a scan warning.
        static let failures = Column("failures")
        static let warnings = Column("warnings")
        /// How many of the batch's events are in `state`: a column named as the state.
        static func count(_ state: EventState) -> Column { Column(state.rawValue) }
    }

    /// Batch summaries with their event counts, first held reason and failures, all in one query.
    static func summaries(_ db: Database, where condition: SQL?, state: BatchState? = nil, limit: Int? = nil) throws -> [BatchSummary] {
        typealias B = BatchColumns
        typealias E = EventColumns
        var sql: SQL = """
            SELECT * FROM (
              SELECT b.\(B.id) AS \(ListingColumns.batchPK), b.\(B.batchID), b.\(B.license), b.\(B.receivedAt),
                d.\(DeviceColumns.name) AS \(ListingColumns.deviceName), u.\(UserColumns.name) AS \(ListingColumns.userName),
                COUNT(e.\(E.id)) AS \(SummaryColumns.total), \(literal: countColumns),
                (SELECT h.\(E.message) FROM \(EventTable.self) h WHERE h.\(E.batchID) = b.\(B.id) AND h.\(E.state) = '\(sql: EventState.held.rawValue)'
                   ORDER BY h.\(E.seq) LIMIT 1) AS \(SummaryColumns.heldReason),
                (SELECT json_group_array(json_object('seq', f.\(E.seq), 'message', f.\(E.message)))
                   FROM (SELECT \(E.seq), \(E.message) FROM \(EventTable.self) WHERE \(E.batchID) = b.\(B.id)
                           AND \(E.state) IN ('\(sql: EventState.failed.rawValue)', '\(sql: EventState.rejected.rawValue)')
                         ORDER BY \(E.seq)) f) AS \(SummaryColumns.failures),
                (SELECT json_group_array(json_object('seq', w.\(E.seq), 'message', w.\(E.warning)))
                   FROM (SELECT \(E.seq), \(E.warning) FROM \(EventTable.self) WHERE \(E.batchID) = b.\(B.id) AND \(E.warning) IS NOT NULL
                         ORDER BY \(E.seq)) w) AS \(SummaryColumns.warnings)
              FROM \(BatchTable.self) b JOIN \(DeviceTable.self) d ON d.\(DeviceColumns.id) = b.\(B.deviceID)
                JOIN \(UserTable.self) u ON u.\(UserColumns.id) = b.\(B.userID)
              LEFT JOIN \(EventTable.self) e ON e.\(E.batchID) = b.\(B.id)
            """
        if let condition { sql += " WHERE \(literal: condition)" }
        sql += " GROUP BY b.\(B.id))"
        if let state {
            sql += " WHERE (\(literal: batchStateSQL)) = \(state.rawValue)"
        }
        sql += " ORDER BY \(ListingColumns.batchPK)"
        if let limit {
            sql += " LIMIT \(limit)"
        }
        return try Row.fetchAll(db, SQLRequest<Row>(literal: sql)).map(summary)
    }

    static func summary(_ row: Row) -> BatchSummary {
        var counts = EventCounts()
        for state in EventState.allCases {
            counts.add(state: state, count: row[SummaryColumns.count(state)])
        }
        struct Failure: Decodable {
            let seq: Int
            let message: String?
        }
        let failures = (row[SummaryColumns.failures] as String?).flatMap { try? JSONDecoder().decode([Failure].self, from: Data($0.utf8)) } ?? []
        let warnings = (row[SummaryColumns.warnings] as String?).flatMap { try? JSONDecoder().decode([Failure].self, from: Data($0.utf8)) } ?? []
        var summary = BatchSummary(device: row[ListingColumns.deviceName], id: row[BatchColumns.batchID], user: row[ListingColumns.userName],
                            license: row[BatchColumns.license], receivedAt: Date(timeIntervalSince1970: row[BatchColumns.receivedAt]),
                            state: counts.batchState, events: counts, heldReason: row[SummaryColumns.heldReason],
                            errors: failures.map { BatchError(seq: $0.seq, message: $0.message ?? "failed") })
        summary.warnings = warnings.map { BatchError(seq: $0.seq, message: $0.message ?? "") }
        return summary
    }

    static func storedEvent(_ row: Row) -> StoredEvent {
        typealias E = EventColumns
        return StoredEvent(id: row[E.id], seq: row[E.seq], type: row[E.type], tag: row[E.tag], at: row[E.at], metrcDate: row[E.metrcDate],
                           user: row[ListingColumns.userName], license: row[E.license], state: row[E.state], fields: row[E.fields],
                           message: row[E.message], attempts: row[E.attempts], keyKind: row[E.keyKind], keyReason: row[E.keyReason],
                           metrcID: row[E.metrcID],
                           firstAttemptAt: (row[E.firstAttemptAt] as Double?).map(Date.init(timeIntervalSince1970:)),
                           lastAttemptAt: (row[E.lastAttemptAt] as Double?).map(Date.init(timeIntervalSince1970:)),
                           warning: row[E.warning])
    }
}
