import Foundation
import GRDB
import OutlawProtocol

/// One item of a reference list as stored: its key (tag label or name) and the JSON object handhelds get.
public struct ReferenceItem: Sendable, Equatable {
    public let key: String
    /// Canonical JSON (sorted keys) of the item, exactly as a `data` line carries it.
    public let json: String

    public init(key: String, json: String) {
        self.key = key
        self.json = json
    }
}

/// What applying a sync's records changed.
public struct ReferenceChanges: Sendable, Equatable {
    public var changed = 0
    public var removed = 0

    public init(changed: Int = 0, removed: Int = 0) {
        self.changed = changed
        self.removed = removed
    }
}

/// The sync state of one kind for one license, for `outlawctl sync status` and the pull's `synced_at`.
public struct ReferenceSyncState: Sendable, Equatable, Codable {
    public let license: String
    public let kind: ReferenceKind
    /// Active items in the copy.
    public let count: Int
    public let lastSuccessAt: Date?
    public let lastFullAt: Date?
    /// The end of the last window read: the next incremental sync starts a little before it.
    public let windowEnd: Date?
    public let lastError: String?
    public let lastErrorAt: Date?

    public init(license: String, kind: ReferenceKind, count: Int, lastSuccessAt: Date?, lastFullAt: Date?, windowEnd: Date?,
                lastError: String?, lastErrorAt: Date?) {
        self.license = license
        self.kind = kind
        self.count = count
        self.lastSuccessAt = lastSuccessAt
        self.lastFullAt = lastFullAt
        self.windowEnd = windowEnd
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
    }
}

/// One page of a pull: items (or removed keys) after a position, in change order.
public struct ReferencePage: Sendable {
    public let items: [(change: Int64, key: String, json: String)]
}

/// A `sync` asked for by `outlawctl sync`, run by the daemon (the one holder of the GET budget).
public struct SyncRequest: Sendable, Equatable {
    public let id: Int64
    public let requestedBy: String
    /// Everything again, not just what changed (`outlawctl sync --full`).
    public let full: Bool
    public let finishedAt: Date?
    /// The run's report as JSON, once finished.
    public let result: String?
}

extension Store {
    // MARK: Sync side

    /// Upserts `items` and marks `removedKeys` removed for one kind, in one transaction; only items whose JSON
    /// changed (or that come back after removal) take the next change number, so a cursor sees real changes only.
    public func applyReference(license: String, kind: ReferenceKind, items: [ReferenceItem], removedKeys: [String],
                               now: Date = Date()) throws -> ReferenceChanges {
        guard !items.isEmpty || !removedKeys.isEmpty else { return ReferenceChanges() }
        return try backgroundWrite { db in
            let change = try Store.nextReferenceChange(db, license: license)
            var result = ReferenceChanges()
            // Prepared once with placeholders (the literals name only tables and columns), run for each item.
            typealias I = ReferenceItemColumns
            let upsert = try db.cachedStatement(literal: """
                INSERT INTO \(ReferenceItemTable.self) (\(I.license), \(I.kind), \(I.key), \(I.item), \(I.change), \(I.removedAt))
                VALUES (?, ?, ?, ?, ?, NULL)
                ON CONFLICT (\(I.license), \(I.kind), \(I.key)) DO UPDATE
                  SET \(I.item) = excluded.\(I.item), \(I.change) = excluded.\(I.change), \(I.removedAt) = NULL
                  WHERE \(I.item) IS NOT excluded.\(I.item) OR \(I.removedAt) IS NOT NULL
                """)
            for item in items {
                try upsert.execute(arguments: [license, kind.rawValue, item.key, item.json, change])
                result.changed += db.changesCount
            }
            let remove = try db.cachedStatement(literal: """
                UPDATE \(ReferenceItemTable.self) SET \(I.removedAt) = ?, \(I.change) = ?
                WHERE \(I.license) = ? AND \(I.kind) = ? AND \(I.key) = ? AND \(I.removedAt) IS NULL
                """)
            for key in removedKeys {
                try remove.execute(arguments: [now.timeIntervalSince1970, change, license, kind.rawValue, key])
                result.removed += db.changesCount
            }
            if result.changed + result.removed > 0 {
                typealias C = ReferenceChangeColumns
                try db.execute(literal: """
                    INSERT INTO \(ReferenceChangeTable.self) (\(C.license), \(C.last)) VALUES (\(license), \(change))
                    ON CONFLICT (\(C.license)) DO UPDATE SET \(C.last) = excluded.\(C.last)
                    """)
            }
            return result
        }
    }

    /// The change number the current write transaction gives what it changes.
    static func nextReferenceChange(_ db: Database, license: String) throws -> Int64 {
        // Plain text, prepared once: this runs for each event an upload changes in the copy (`reflectUpload`).
        (try Int64.fetchOne(db.cachedStatement(sql: "SELECT last FROM reference_changes WHERE license = ?"), arguments: [license]) ?? 0) + 1
    }

    /// The license's change counter in the caller's transaction.
    static func referenceChangeCount(_ db: Database, license: String) throws -> Int64 {
        try Int64.fetchOne(db, SQLRequest<Int64>(literal: """
            SELECT \(ReferenceChangeColumns.last) FROM \(ReferenceChangeTable.self) WHERE \(ReferenceChangeColumns.license) = \(license)
            """)) ?? 0
    }

    /// The keys of the active items of a kind (a full sync marks removed those Metrc no longer lists).
    public func activeReferenceKeys(license: String, kind: ReferenceKind) throws -> Set<String> {
        try pool.read { db in
            typealias I = ReferenceItemColumns
            return Set(try String.fetchAll(db, SQLRequest<String>(literal: """
                SELECT \(I.key) FROM \(ReferenceItemTable.self)
                WHERE \(I.license) = \(license) AND \(I.kind) = \(kind.rawValue) AND \(I.removedAt) IS NULL
                """)))
        }
    }

    /// Records a sync of one kind that read everything up to `windowEnd`.
    public func recordReferenceSuccess(license: String, kind: ReferenceKind, full: Bool, windowEnd: Date, now: Date = Date()) throws {
        try backgroundWrite { db in
            typealias S = ReferenceSyncColumns
            let t = now.timeIntervalSince1970
            try db.execute(literal: """
                INSERT INTO \(ReferenceSyncTable.self) (\(S.license), \(S.kind), \(S.lastSuccessAt), \(S.lastFullAt), \(S.windowEnd),
                  \(S.lastError), \(S.lastErrorAt))
                VALUES (\(license), \(kind.rawValue), \(t), \(full ? t : nil), \(windowEnd.timeIntervalSince1970), NULL, NULL)
                ON CONFLICT (\(S.license), \(S.kind)) DO UPDATE SET \(S.lastSuccessAt) = excluded.\(S.lastSuccessAt),
                  \(S.lastFullAt) = COALESCE(excluded.\(S.lastFullAt), \(S.lastFullAt)), \(S.windowEnd) = excluded.\(S.windowEnd),
                  \(S.lastError) = NULL, \(S.lastErrorAt) = NULL
                """)
        }
    }

    /// Records a failed sync of one kind; the copy and its last success stay as they were.
    public func recordReferenceFailure(license: String, kind: ReferenceKind, error: String, now: Date = Date()) throws {
        try backgroundWrite { db in
            typealias S = ReferenceSyncColumns
            try db.execute(literal: """
                INSERT INTO \(ReferenceSyncTable.self) (\(S.license), \(S.kind), \(S.lastError), \(S.lastErrorAt))
                VALUES (\(license), \(kind.rawValue), \(error), \(now.timeIntervalSince1970))
                ON CONFLICT (\(S.license), \(S.kind)) DO UPDATE
                  SET \(S.lastError) = excluded.\(S.lastError), \(S.lastErrorAt) = excluded.\(S.lastErrorAt)
                """)
        }
    }

    /// Every kind's sync state for `license` (all licenses when nil), with the copy's counts.
    public func referenceSyncStates(license: String? = nil) throws -> [ReferenceSyncState] {
        try pool.read { db in
            typealias S = ReferenceSyncColumns
            typealias I = ReferenceItemColumns
            var sql: SQL = """
                SELECT s.*, (SELECT COUNT(*) FROM \(ReferenceItemTable.self) i
                             WHERE i.\(I.license) = s.\(S.license) AND i.\(I.kind) = s.\(S.kind) AND i.\(I.removedAt) IS NULL) AS \(Store.itemCount)
                FROM \(ReferenceSyncTable.self) s
                """
            if let license {
                sql += " WHERE s.\(S.license) = \(license)"
            }
            func date(_ value: Double?) -> Date? { value.map(Date.init(timeIntervalSince1970:)) }
            return try Row.fetchAll(db, SQLRequest<Row>(literal: sql)).compactMap { row -> ReferenceSyncState? in
                guard let kind = ReferenceKind(rawValue: row[S.kind]) else { return nil }
                return ReferenceSyncState(license: row[S.license], kind: kind, count: row[Store.itemCount],
                                          lastSuccessAt: date(row[S.lastSuccessAt]), lastFullAt: date(row[S.lastFullAt]),
                                          windowEnd: date(row[S.windowEnd]), lastError: row[S.lastError],
                                          lastErrorAt: date(row[S.lastErrorAt]))
            }.sorted { ($0.license, $0.kind) < ($1.license, $1.kind) }
        }
    }

    /// How many items of a kind the copy holds (`referenceSyncStates`).
    private static let itemCount = Column("count")

    // MARK: Pull side

    /// The license's change counter now: what a pull's cursor records.
    public func referenceChangeCount(license: String) throws -> Int64 {
        try pool.read { db in
            try Store.referenceChangeCount(db, license: license)
        }
    }

    /// Up to `limit` active items (or, with `removed`, removed keys) of a kind that changed in (`since`, `upTo`],
    /// after `position`, in (change, key) order: one page of a pull, read without holding anything open.
    public func referencePage(license: String, kind: ReferenceKind, since: Int64, upTo: Int64, removed: Bool,
                              after position: (change: Int64, key: String)?, limit: Int) throws -> ReferencePage {
        try pool.read { db in
            typealias I = ReferenceItemColumns
            let removedFilter: SQL = "\(I.removedAt) IS \(sql: removed ? "NOT NULL" : "NULL")"
            var rows: [Row] = []
            var after = since
            if let position {
                // The rest of the position's change number first, then the numbers after it: two index ranges.
                // (A row value `(change, key) > (?, ?)` would read every row from the start of the range, page after
                // page: quadratic over a 100,000-plant pull.)
                rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
                    SELECT \(I.change), \(I.key), \(I.item) FROM \(ReferenceItemTable.self) INDEXED BY reference_items_by_change
                    WHERE \(I.license) = \(license) AND \(I.kind) = \(kind.rawValue) AND \(I.change) = \(position.change)
                      AND \(I.key) > \(position.key) AND \(literal: removedFilter)
                    ORDER BY \(I.key) LIMIT \(limit)
                    """))
                after = max(since, position.change)
            }
            if rows.count < limit {
                rows += try Row.fetchAll(db, SQLRequest<Row>(literal: """
                    SELECT \(I.change), \(I.key), \(I.item) FROM \(ReferenceItemTable.self) INDEXED BY reference_items_by_change
                    WHERE \(I.license) = \(license) AND \(I.kind) = \(kind.rawValue) AND \(I.change) > \(after) AND \(I.change) <= \(upTo)
                      AND \(literal: removedFilter)
                    ORDER BY \(I.change), \(I.key) LIMIT \(limit - rows.count)
                    """))
            }
            return ReferencePage(items: rows.map { (change: $0[I.change], key: $0[I.key], json: $0[I.item]) })
        }
    }

    // MARK: Our own uploads

    /// What an event Metrc just accepted changes in the copy, at once rather than at the next sync: a move sets
    /// the location, an adjustment the quantity, a harvest or destroy removes the plant. Runs in the
    /// transaction that marks the event uploaded. Its statements are plain SQL text, prepared once and cached: they run
    /// for each event of an accepted request, on the writer, where building an interpolated statement costs more.
    static func reflectUpload(eventID: Int64, db: Database, now: Double) throws {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT type, tag, license, fields FROM events WHERE id = ?"), arguments: [eventID]),
              let type = EventType(rawValue: row[EventColumns.type]) else { return }
        let license: String = row[EventColumns.license]
        let tag: String = row[EventColumns.tag]
        let fields: String = row[EventColumns.fields]
        var change: Int64?
        func nextChange() throws -> Int64 {
            if let change { return change }
            let next = try nextReferenceChange(db, license: license)
            change = next
            return next
        }
        switch type {
        case .plantMove, .packageMove:
            let kind: ReferenceKind = type == .plantMove ? .plants : .packages
            try db.cachedStatement(sql: """
                UPDATE reference_items SET change = ?,
                  item = json_set(item, '$.location', json_extract(?, '$.location'),
                                        '$.sublocation', json_extract(?, '$.sublocation'))
                WHERE license = ? AND kind = ? AND key = ? AND removed_at IS NULL
                """).execute(arguments: [try nextChange(), fields, fields, license, kind.rawValue, tag])
        case .packageAdjust:
            try db.cachedStatement(sql: """
                UPDATE reference_items SET change = ?,
                  item = json_set(item, '$.quantity', json_extract(item, '$.quantity') + json_extract(?, '$.quantity'))
                WHERE license = ? AND kind = 'packages' AND key = ? AND removed_at IS NULL
                  AND json_type(item, '$.quantity') IN ('integer', 'real')
                """).execute(arguments: [try nextChange(), fields, license, tag])
        case .plantHarvest, .plantDestroy:
            try db.cachedStatement(sql: """
                UPDATE reference_items SET change = ?, removed_at = ?
                WHERE license = ? AND kind = 'plants' AND key = ? AND removed_at IS NULL
                """).execute(arguments: [try nextChange(), now, license, tag])
        default:
            return
        }
        if let change, db.changesCount > 0 {
            try db.cachedStatement(sql: """
                INSERT INTO reference_changes (license, last) VALUES (?, ?)
                ON CONFLICT (license) DO UPDATE SET last = MAX(last, excluded.last)
                """).execute(arguments: [license, change])
        }
    }

    // MARK: outlawctl sync

    /// Asks the daemon for a sync now; returns the request's id to wait on.
    public func requestSync(by actor: String, full: Bool, now: Date = Date()) throws -> Int64 {
        try backgroundWrite { db in
            typealias R = SyncRequestColumns
            try db.execute(literal: """
                INSERT INTO \(SyncRequestTable.self) (\(R.requestedBy), \(R.full), \(R.requestedAt)) VALUES (\(actor), \(full), \(now.timeIntervalSince1970))
                """)
            return db.lastInsertedRowID
        }
    }

    /// The requests not yet started, marked started: one run answers them all (full when any asked for it).
    public func takeSyncRequests(now: Date = Date()) throws -> [SyncRequest] {
        try backgroundWrite { db in
            let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT \(SyncRequestColumns.id), \(SyncRequestColumns.requestedBy), \(SyncRequestColumns.full) FROM \(SyncRequestTable.self)
                WHERE \(SyncRequestColumns.startedAt) IS NULL ORDER BY \(SyncRequestColumns.id)
                """))
            guard !rows.isEmpty else { return [] }
            try db.execute(literal: """
                UPDATE \(SyncRequestTable.self) SET \(SyncRequestColumns.startedAt) = \(now.timeIntervalSince1970)
                WHERE \(SyncRequestColumns.startedAt) IS NULL
                """)
            return rows.map {
                SyncRequest(id: $0[SyncRequestColumns.id], requestedBy: $0[SyncRequestColumns.requestedBy], full: $0[SyncRequestColumns.full],
                            finishedAt: nil, result: nil)
            }
        }
    }

    /// Requests a daemon took and never answered (it stopped mid-sync) wait again for the next run.
    public func retakeUnfinishedSyncRequests() throws {
        try backgroundWrite { db in
            try db.execute(literal: """
                UPDATE \(SyncRequestTable.self) SET \(SyncRequestColumns.startedAt) = NULL
                WHERE \(SyncRequestColumns.startedAt) IS NOT NULL AND \(SyncRequestColumns.finishedAt) IS NULL
                """)
        }
    }

    /// Whether requests wait, without taking them (a cheap check the daemon makes every second).
    public func syncRequested() throws -> Bool {
        try pool.read { db in
            try Bool.fetchOne(db, SQLRequest<Bool>(literal: """
                SELECT EXISTS (SELECT 1 FROM \(SyncRequestTable.self) WHERE \(SyncRequestColumns.startedAt) IS NULL)
                """)) ?? false
        }
    }

    /// Every request taken for this run gets its report (requests made during the run wait for the next one).
    public func finishSyncRequests(result: String, now: Date = Date()) throws {
        try backgroundWrite { db in
            try db.execute(literal: """
                UPDATE \(SyncRequestTable.self) SET \(SyncRequestColumns.finishedAt) = \(now.timeIntervalSince1970), \(SyncRequestColumns.result) = \(result)
                WHERE \(SyncRequestColumns.startedAt) IS NOT NULL AND \(SyncRequestColumns.finishedAt) IS NULL
                """)
        }
    }

    public func syncRequest(id: Int64) throws -> SyncRequest? {
        try pool.read { db in
            try Row.fetchOne(db, SQLRequest<Row>(literal: "SELECT * FROM \(SyncRequestTable.self) WHERE \(SyncRequestColumns.id) = \(id)")).map { row in
                SyncRequest(id: row[SyncRequestColumns.id], requestedBy: row[SyncRequestColumns.requestedBy], full: row[SyncRequestColumns.full],
                            finishedAt: (row[SyncRequestColumns.finishedAt] as Double?).map(Date.init(timeIntervalSince1970:)),
                            result: row[SyncRequestColumns.result])
            }
        }
    }
}
