import Foundation
import GRDB
import OutlawProtocol
import OutlawStore

/// Seeds a store directly, fast, with the rows ingest would write (`Store.insert`): for backlogs of a million
/// queued events and stores of ten million finished ones, which the device protocol would take an hour to fill.
/// Derived tables a migration keeps with triggers stay right, since these are plain INSERTs.
enum StoreSeed {
    /// One batch as a handheld would have sent it, already through the daemon's own validation.
    struct Batch {
        var id: String
        var deviceID: Int64
        var userID: Int64
        var license: String
        var contentHash: Data
        var receivedAt: Double
        var events: [ValidatedEvent]
    }

    /// Creates the store at `path` with the daemon's schema (the build's own migrations), `users` (PIN
    /// `EventMix.pin`) and `devices`; uploads paused when `paused`. Returns the devices' tokens and the users' ids.
    static func prepare(path: String, users: [String], devices: [String], paused: Bool) throws
        -> (tokens: [(name: String, token: String)], userIDs: [String: Int64], deviceIDs: [String: Int64])
    {
        let store = try Store(path: path, pinRounds: 10_000)
        for user in users { try store.addUser(name: user, role: .user, pin: EventMix.pin, actor: "outlawd-bench") }
        var tokens: [(name: String, token: String)] = []
        for device in devices { tokens.append((device, try store.addDevice(name: device, actor: "outlawd-bench"))) }
        if paused { try store.setUploadsPaused(true, actor: "outlawd-bench") }
        let userIDs = Dictionary(try store.users().map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        let deviceIDs = Dictionary(try store.devices().map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
        return (tokens, userIDs, deviceIDs)
    }

    /// Takes one batch line (`{"op":"batch",...}` without the newline) through the daemon's `BatchValidator`.
    static func validate(_ line: String, validator: BatchValidator, now: Date) throws -> ValidatedBatch {
        guard let object = JSONValue.parse(Array(line.utf8))?.objectValue else { throw BenchError("seed: a batch is not JSON: \(line.prefix(200))") }
        switch validator.validate(object, now: now) {
        case .success(let batch): return batch
        case .failure(let rejection): throw BenchError("seed: the bench's own batch is invalid: \(rejection) \(line.prefix(300))")
        }
    }

    static func validator() -> BatchValidator {
        BatchValidator(maxBatchEvents: 100_000, defaultLicense: EventMix.license, licenses: [EventMix.license])
    }

    /// A connection for seeding: no fsync, a big page cache. The daemon is not running yet.
    static func open(_ path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = OFF")
            try db.execute(sql: "PRAGMA cache_size = -262144")
        }
        return try DatabaseQueue(path: path, configuration: config)
    }

    /// Writes batches `0..<count` (each made when its turn comes) in one transaction, row for row as `Store.insert` does: the batch, then each event and
    /// its `event_tags` rows (none for scans). Uploadable events are `queued`. Returns the last event id.
    static func writeQueued(count: Int, path: String, batch make: (Int) throws -> Batch) throws -> Int64 {
        let queue = try open(path)
        let last = try queue.write { db in
            let insertBatch = try db.cachedStatement(sql: """
                INSERT INTO batches (device_id, batch_id, user_id, license, content_hash, event_count, received_at, session, ticket_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)
                """)
            let insertEvent = try db.cachedStatement(sql: """
                INSERT INTO events (id, batch_id, seq, type, tag, at, metrc_date, fields, user_id, license, state, message, updated_at,
                                    warning, unknown_since, heads_pending)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, NULL, ?)
                """)
            // The order per tag as ingest keeps it (v14: no trigger does it).
            let heads = try ReadyHeads.Ingest(db)
            var last: Int64 = 0
            var nextEventID = try ReadyHeads.Ingest.nextEventID(db)
            for b in 0..<count {
                let batch = try make(b)
                try insertBatch.execute(arguments: [batch.deviceID, batch.id, batch.userID, batch.license, batch.contentHash,
                                                    batch.events.count, batch.receivedAt, "bench-seed"])
                let batchRowID = db.lastInsertedRowID
                for event in batch.events {
                    let state: EventState = event.type.isUploaded ? .queued : .recorded
                    let tags = state == .recorded ? [] : ReadyHeads.distinct(event.tags)
                    let id = nextEventID
                    nextEventID += 1
                    let waits = try heads.claimHeads(eventID: id, tags: tags)
                    try insertEvent.execute(arguments: [id, batchRowID, event.seq, event.type.rawValue, event.tag, event.at.text,
                                                        event.at.localDate, event.canonicalJSON, batch.userID, batch.license,
                                                        state.rawValue, batch.receivedAt, waits])
                    last = id
                    try heads.addTagRows(eventID: id, tags: tags)
                }
            }
            // With every seeded event unfinished, each tag has one head and every other tag row is a wait: a seed that
            // missed the heads would drain in no order at all (one did, when a trigger stopped keeping them).
            let check = try Row.fetchOne(db, sql: """
                SELECT (SELECT COUNT(*) FROM tag_heads), (SELECT COUNT(DISTINCT tag) FROM event_tags),
                       (SELECT COUNT(*) FROM event_tags), (SELECT TOTAL(heads_pending) FROM events)
                """)
            let (headRows, tags, rows, waits) = (check?[0] as Int? ?? -1, check?[1] as Int? ?? -2, check?[2] as Int? ?? 0, check?[3] as Double? ?? -1)
            guard headRows == tags, Int(waits) == rows - headRows else {
                throw BenchError("the seeded queue's heads are wrong: \(headRows) heads for \(tags) tags, \(Int(waits)) waits for \(rows - headRows)")
            }
            return last
        }
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        return last
    }

    // MARK: Audit rows

    /// Appends audit rows chained to the current head exactly as `Store.audit` chains them (the documented
    /// encoding in Store+Audit.swift), with times of the caller's choosing: a history's rows are in the past.
    static func appendAudit(_ db: Database, rows: [(at: Double, actor: String, action: String, subject: String?, detail: String?)]) throws {
        let head = try Row.fetchOne(db, sql: "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
        var id: Int64 = head.map { $0[0] as Int64 } ?? 0
        var previous: Data = head.map { $0[1] as Data } ?? AuditChain.genesis
        let insert = try db.cachedStatement(sql: "INSERT INTO audit (id, at, actor, action, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        for row in rows {
            id += 1
            let fields: [DatabaseValue] = [id.databaseValue, row.at.databaseValue, row.actor.databaseValue, row.action.databaseValue,
                                           row.subject?.databaseValue ?? .null, row.detail?.databaseValue ?? .null]
            let hash = AuditChain.hash(previous: previous, fields: fields)
            try insert.execute(arguments: StatementArguments(fields + [previous.databaseValue, hash.databaseValue]))
            previous = hash
        }
    }

    /// The store's files on disk (main file and write-ahead log), in bytes.
    static func diskBytes(_ path: String) -> (main: Int, wal: Int) {
        func size(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? Int) ?? 0 }
        return (size(path), size(path + "-wal"))
    }
}
