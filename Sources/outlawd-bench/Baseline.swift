import Foundation
import GRDBSQLite
import OutlawProtocol
import OutlawStore
import OutlawTestSupport

/// The ceiling the daemon is measured against: the rows a stored batch writes (`Store.insert`), written straight
/// with libsqlite3 into the daemon's own schema, WAL and `synchronous=FULL`, one batch a transaction, one thread.
/// Everything that is not SQLite (parsing, validation, hashing, JSON of the fields) is done before the clock starts.
struct BaselineFigures: Sendable {
    var events = 0
    var batches = 0
    var seconds = 0.0
    var eventsPerSecond = 0.0
    var eventsPerTransaction = 0
    /// How long each transaction took, BEGIN to the end of COMMIT (its fsync), in milliseconds.
    var transactions = Latencies()
}

enum Baseline {
    /// One batch as `Store.insert` writes it, values ready to bind.
    struct Prepared {
        var userName: String
        var contentHash: Data
        var events: [Event]

        struct Event {
            var seq: Int64
            var type: String
            var tag: String
            var at: String
            var metrcDate: String
            var fields: String
            var state: String
            /// The `event_tags` rows (none for scans, which are `recorded`).
            var tags: [String]
        }
    }

    /// Writes the flat-out run's batches again (handheld `i % handhelds`, its batch `i / handhelds`; at most 256
    /// different ones, then round again with fresh ids) until `targetEvents` are stored or `maxSeconds` pass.
    static func run(handhelds: Int, eventsPerBatch: Int, targetEvents: Int, maxSeconds: Double, plants: Int,
                    packages: Int) throws -> BaselineFigures {
        let dir = try TempDirectory("outlawd-bench-baseline")
        let path = dir.file("state/baseline.sqlite")
        let deviceID: Int64
        var userIDs: [String: Int64] = [:]
        do {
            // The daemon's schema exactly: Store runs its migrations on a new file.
            let store = try Store(path: path, pinRounds: 10_000)
            _ = try store.addDevice(name: "HH-BASELINE", actor: "outlawd-bench")
            for user in ["jane", "john"] { try store.addUser(name: user, role: .user, pin: "4821", actor: "outlawd-bench") }
            deviceID = try store.devices().first { $0.name == "HH-BASELINE" }.map(\.id) ?? 1
            for user in try store.users() { userIDs[user.name] = user.id }
        }

        let pool = try prepare(count: min(256, max(1, targetEvents / eventsPerBatch)), handhelds: handhelds,
                               eventsPerBatch: eventsPerBatch, plants: plants, packages: packages)

        let db = try Connection(path: path)
        try db.exec("PRAGMA journal_mode = WAL")
        try db.exec("PRAGMA synchronous = FULL")
        try db.exec("PRAGMA foreign_keys = ON")
        let insertBatch = try db.prepare("""
            INSERT INTO batches (device_id, batch_id, user_id, license, content_hash, event_count, received_at, session)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let insertEvent = try db.prepare("""
            INSERT INTO events (batch_id, seq, type, tag, at, metrc_date, fields, user_id, license, state, message, updated_at,
                                warning, heads_pending, id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        // The order per tag as ingest keeps it (ReadyHeads.Ingest): the event's id given, each tag's head claimed
        // before the event's insert (ignored where one exists: a wait), then the tag rows.
        let maxID = try db.prepare("SELECT COALESCE(MAX(id), 0) + 1 FROM events")
        let insertTag = try db.prepare("INSERT INTO event_tags (tag, event_id) VALUES (?, ?)")
        let claimHead = try db.prepare("INSERT OR IGNORE INTO tag_heads (tag, event_id) VALUES (?, ?)")
        let begin = try db.prepare("BEGIN IMMEDIATE")
        let commit = try db.prepare("COMMIT")
        let license = EventMix.license
        let session = "bench-baseline-session"

        var figures = BaselineFigures(eventsPerTransaction: eventsPerBatch)
        var durations: [Double] = []
        let started = ContinuousClock.now
        var i = 0
        while figures.events < targetEvents, since(started) < maxSeconds {
            let transactionStarted = ContinuousClock.now
            let batch = pool[i % pool.count]
            let userID = userIDs[batch.userName] ?? 1
            let now = Date().timeIntervalSince1970
            try begin.run()
            try insertBatch.bind(1, deviceID)
            try insertBatch.bind(2, "base-\(i)")
            try insertBatch.bind(3, userID)
            try insertBatch.bind(4, license)
            try insertBatch.bind(5, batch.contentHash)
            try insertBatch.bind(6, Int64(batch.events.count))
            try insertBatch.bind(7, now)
            try insertBatch.bind(8, session)
            try insertBatch.run()
            let batchRowID = db.lastInsertedRowID
            _ = try maxID.step()
            var nextID = sqlite3_column_int64(maxID.handle, 0)
            maxID.reset()
            for event in batch.events {
                let eventID = nextID
                nextID += 1
                try insertEvent.bind(1, batchRowID)
                try insertEvent.bind(2, event.seq)
                try insertEvent.bind(3, event.type)
                try insertEvent.bind(4, event.tag)
                try insertEvent.bind(5, event.at)
                try insertEvent.bind(6, event.metrcDate)
                try insertEvent.bind(7, event.fields)
                try insertEvent.bind(8, userID)
                try insertEvent.bind(9, license)
                try insertEvent.bind(10, event.state)
                try insertEvent.bindNull(11)
                try insertEvent.bind(12, now)
                try insertEvent.bindNull(13)
                var waits: Int64 = 0
                for tag in event.tags {
                    try claimHead.bind(1, tag)
                    try claimHead.bind(2, eventID)
                    try claimHead.run()
                    if sqlite3_changes(db.handle) == 0 { waits += 1 }
                }
                try insertEvent.bind(14, waits)
                try insertEvent.bind(15, eventID)
                try insertEvent.run()
                for tag in event.tags {
                    try insertTag.bind(1, tag)
                    try insertTag.bind(2, eventID)
                    try insertTag.run()
                }
            }
            try commit.run()
            durations.append(since(transactionStarted) * 1000)
            figures.events += batch.events.count
            figures.batches += 1
            i += 1
        }
        figures.seconds = since(started)
        figures.eventsPerSecond = Double(figures.events) / figures.seconds
        figures.transactions = Latencies(durations)
        return figures
    }

    /// Builds batches as the handhelds send them and takes them through the daemon's own validation, so the
    /// stored values (fields JSON, tags, dates, states) are the daemon's.
    static func prepare(count: Int, handhelds: Int, eventsPerBatch: Int, plants: Int, packages: Int) throws -> [Prepared] {
        let validator = BatchValidator(maxBatchEvents: 100_000, defaultLicense: EventMix.license, licenses: [EventMix.license])
        var pool: [Prepared] = []
        for i in 0..<count {
            let line = EventMix.batchLine(id: "base-\(i)", handheld: i % handhelds, batch: i / handhelds, events: eventsPerBatch,
                                          plants: plants, packages: packages, collectedAt: Date().timeIntervalSince1970)
            guard let object = JSONValue.parse(line.dropLast())?.objectValue else { throw BenchError("baseline: a batch is not JSON") }
            let batch: ValidatedBatch
            switch validator.validate(object, now: Date()) {
            case .success(let valid): batch = valid
            case .failure(let rejection): throw BenchError("baseline: the bench's own batch is invalid: \(rejection)")
            }
            pool.append(Prepared(
                userName: batch.user, contentHash: Secrets.contentHash(batch.canonicalContent),
                events: batch.events.map { event in
                    let state: EventState = event.type.isUploaded ? .queued : .recorded
                    return Prepared.Event(seq: Int64(event.seq), type: event.type.rawValue, tag: event.tag, at: event.at.text,
                                          metrcDate: event.at.localDate,
                                          fields: event.canonicalJSON, state: state.rawValue,
                                          tags: state == .recorded ? [] : ReadyHeads.distinct(event.tags))
                }))
        }
        return pool
    }

    // MARK: libsqlite3

    /// SQLite copies bound text and blobs (`SQLITE_TRANSIENT`), as GRDB does for the daemon.
    nonisolated(unsafe) static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    final class Connection {
        let handle: OpaquePointer

        init(path: String) throws {
            var db: OpaquePointer?
            let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
            guard rc == SQLITE_OK, let db else { throw BenchError("sqlite3_open_v2 \(path): \(rc)") }
            handle = db
            sqlite3_busy_timeout(db, 10_000)
        }

        deinit { sqlite3_close_v2(handle) }

        func exec(_ sql: String) throws {
            let rc = sqlite3_exec(handle, sql, nil, nil, nil)
            guard rc == SQLITE_OK else { throw BenchError("\(sql): \(String(cString: sqlite3_errmsg(handle)))") }
        }

        func prepare(_ sql: String) throws -> Statement {
            var statement: OpaquePointer?
            let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
            guard rc == SQLITE_OK, let statement else { throw BenchError("prepare \(sql): \(String(cString: sqlite3_errmsg(handle)))") }
            return Statement(handle: statement, db: handle)
        }

        var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    }

    final class Statement {
        let handle: OpaquePointer
        let db: OpaquePointer

        init(handle: OpaquePointer, db: OpaquePointer) {
            self.handle = handle
            self.db = db
        }

        deinit { sqlite3_finalize(handle) }

        func check(_ rc: Int32) throws {
            guard rc == SQLITE_OK else { throw BenchError("bind: \(String(cString: sqlite3_errmsg(db)))") }
        }

        func bind(_ index: Int32, _ value: Int64) throws { try check(sqlite3_bind_int64(handle, index, value)) }
        func bind(_ index: Int32, _ value: Double) throws { try check(sqlite3_bind_double(handle, index, value)) }
        func bindNull(_ index: Int32) throws { try check(sqlite3_bind_null(handle, index)) }

        func bind(_ index: Int32, _ value: String) throws {
            try value.withCString { try check(sqlite3_bind_text(handle, index, $0, -1, Baseline.transient)) }
        }

        func bind(_ index: Int32, _ value: Data) throws {
            try value.withUnsafeBytes { bytes in
                try check(sqlite3_bind_blob(handle, index, bytes.baseAddress, Int32(bytes.count), Baseline.transient))
            }
        }

        /// One step of a query: whether it gave a row (`reset` before the next use).
        func step() throws -> Bool {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            default: throw BenchError("step: \(String(cString: sqlite3_errmsg(db)))")
            }
        }

        func reset() { sqlite3_reset(handle) }

        /// Steps to the end (these statements return no rows) and resets for the next use.
        func run() throws {
            let rc = sqlite3_step(handle)
            sqlite3_reset(handle)
            guard rc == SQLITE_DONE else { throw BenchError("step: \(String(cString: sqlite3_errmsg(db)))") }
        }
    }
}
