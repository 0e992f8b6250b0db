import Foundation
import GRDB
import OutlawProtocol

/// What one retention run is asked to do (`[retention]`).
public struct RetentionOptions: Sendable {
    /// Finished events older than this many days leave the live store; 0 keeps everything (a run then only completes
    /// what an earlier run left half done).
    public var keepFinishedDays: Int
    /// Where the archive files go.
    public var archiveDir: String
    /// The most events in one archive file (a batch is never split; a bigger one goes alone).
    public var eventsPerArchive = 50_000
    /// The most event rows one deleting transaction removes: each is a short write beside the batch writer's, never a long one.
    public var eventsPerTransaction = 100
    /// After each deleting transaction and each read of an archive's events, a rest this many times as long as it
    /// took: a run takes at most a quarter of a core and of the writer. With 1 (half), the paced acks' p99 during a run
    /// was 9.5-10.7 ms; with 3, 7.0-9.5 ms, against 7.1-7.4 ms with no run at all (300,000 events, 12-06). A day's
    /// events still leave in seconds; a first run over years of history takes its hours in the background.
    public var restFactor = 3.0
    /// Whether building, compressing and reading back an archive's lines runs on a `SCHED_IDLE` thread (the default):
    /// the paced acks' p99 during a run was 1.05-1.18× of a run without, against 1.28-1.40× at the daemon's own
    /// priority (300,000 events, interleaved, 12-06). But such a thread gets about 0.1% of a core while other work keeps
    /// every core busy (20 ms of work took 19 s beside six busy loops on two cores), so a box whose cores are never idle
    /// sets `[retention] idle_priority = false`: the run then still takes at most a quarter of a core, by its rests.
    public var idlePriority = true
    /// Who the audit rows name.
    public var actor = "outlawd"

    public init(keepFinishedDays: Int, archiveDir: String) {
        self.keepFinishedDays = keepFinishedDays
        self.archiveDir = archiveDir
    }
}

/// A point in a retention run after which a test stops the daemon (kill -9) to prove that a restart completes or
/// discards the step: `OUTLAWD_TEST_RETENTION_PAUSE` (`RetentionService`).
public enum RetentionStep: String, Sendable, CaseIterable {
    /// The archive is written and flushed under its `.partial` name, not renamed.
    case partialWritten = "partial-written"
    /// The archive has its name; no audit row vouches for it yet.
    case renamed
    /// Its audit row is committed (the commit point); nothing has left the live store.
    case recorded
    /// One deleting transaction is committed.
    case deleted
}

/// What a retention run did.
public struct RetentionReport: Sendable, Equatable {
    /// Events finished before this left the live store (nil: retention is off).
    public var cutoff: Date?
    /// The archives this run wrote.
    public var archives: [ArchiveRecord] = []
    public var eventsArchived = 0
    public var batchesArchived = 0
    /// Rows that left the live store (including those of archives an earlier run had written).
    public var eventsDeleted = 0
    public var batchesDeleted = 0
    /// Upload attempts older than the cutoff that no live event named any more, forgotten (`Store.forgetAttempts`).
    public var attemptsDeleted = 0
    /// Archives written by a run that stopped before all their batches left the live store, now finished.
    public var completed: [String] = []
    /// Files of a run that stopped before their audit row: removed (their batches are still live, archived again).
    public var discarded: [String] = []
    /// Batches an archive holds that changed in the live store since (never expected): left there, each with why.
    public var kept: [String] = []
    /// The run stopped early (the daemon is stopping); the next run goes on from where it stopped.
    public var stopped = false

    public init() {}
}

/// One archive file as the store records it.
public struct ArchiveRecord: Sendable, Equatable, Codable {
    public let id: Int64
    public let month: String
    public let part: Int
    public let file: String
    /// `writing`, `written` or `done`.
    public let state: String
    /// Lower-case hex; nil until written.
    public let sha256: String?
    public let events: Int
    public let batches: Int
    public let bytes: Int
    /// The `store.archive` audit row vouching for it.
    public let auditID: Int64?
    public let writtenAt: Date?
}

/// The `store.archive` audit row's detail: `sha256=HEX month=YYYY-MM part=N events=N batches=N bytes=N`.
public struct ArchiveDetail: Sendable, Equatable {
    public let sha256: String
    public let month: String
    public let part: Int
    public let events: Int
    public let batches: Int
    public let bytes: Int

    public var text: String { "sha256=\(sha256) month=\(month) part=\(part) events=\(events) batches=\(batches) bytes=\(bytes)" }

    public init(sha256: String, month: String, part: Int, events: Int, batches: Int, bytes: Int) {
        (self.sha256, self.month, self.part, self.events, self.batches, self.bytes) = (sha256, month, part, events, batches, bytes)
    }

    public init?(_ text: String) {
        var values: [String: String] = [:]
        for pair in text.split(separator: " ") {
            guard let equals = pair.firstIndex(of: "=") else { return nil }
            values[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        guard let sha = values["sha256"], sha.count == 64, let month = values["month"], let part = values["part"].flatMap(Int.init),
              let events = values["events"].flatMap(Int.init), let batches = values["batches"].flatMap(Int.init),
              let bytes = values["bytes"].flatMap(Int.init)
        else { return nil }
        self.init(sha256: sha, month: month, part: part, events: events, batches: batches, bytes: bytes)
    }
}

extension Data {
    var lowerHex: String { map { String(format: "%02x", $0) }.joined() }
}

/// Retention: finished events and their batches older than `keep_finished_days` leave the live store for monthly
/// archive files (gzip'd JSON Lines, `ArchiveLine`), each vouched for by a `store.archive` audit row carrying its
/// SHA-256.
///
/// Which events: `uploaded`, `recorded` (scans) and `rejected` (in review), finished before the cutoff; a batch leaves
/// only when every one of its events is. `failed` events are not archived: Metrc never took them and a tech can still
/// `outlawctl replay` them, which needs them (and their batch) in the live store, and `outlawctl failed` is where
/// they are found. A batch with a failed event stays whole until it is replayed and uploaded (then it ages out), so
/// the live store keeps only what still needs a person.
///
/// Crash safety, step by step (a kill -9 anywhere loses nothing and archives nothing twice):
/// 1. the archive's name is taken in `archives` (`writing`), past every part of its month this store recorded or the
///    folder holds, so no file is ever overwritten;
/// 2. the file is written as `NAME.partial`, flushed, renamed, and the folder flushed;
/// 3. one small transaction writes the audit row and marks the archive `written`: the commit point;
/// 4. its batches leave the live store in small transactions (`eventsPerTransaction` rows each, a rest after each),
///    each recording the batch in `archived_batches` before its last row goes; then `done`.
/// A restart removes the file of a `writing` archive (its batches are all still live and are archived again) and
/// finishes the deletions of a `written` one, reading the file back and checking its SHA-256 first.
extension Store {
    public func runRetention(_ options: RetentionOptions, now: Date = Date(), pause: (RetentionStep) -> Void = { _ in },
                             shouldStop: () -> Bool = { false },
                             archived: (ArchiveRecord, RetentionReport) -> Void = { _, _ in }) throws -> RetentionReport
    {
        try FileManager.default.createDirectory(atPath: options.archiveDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        var report = RetentionReport()
        try recoverArchives(options, report: &report, pause: pause, shouldStop: shouldStop)
        guard options.keepFinishedDays > 0, !report.stopped else { return report }
        let cutoff = try archiveCutoff(keepFinishedDays: options.keepFinishedDays, now: now)
        report.cutoff = cutoff
        var after: Int64 = 0
        while let planned = try nextArchive(after: after, cutoff: cutoff, limit: options.eventsPerArchive) {
            if shouldStop() {
                report.stopped = true
                break
            }
            after = planned.lastPK
            guard let record = try writeArchive(planned, options, pause: pause, shouldStop: shouldStop) else {
                report.stopped = true
                break
            }
            report.archives.append(record)
            report.eventsArchived += record.events
            report.batchesArchived += record.batches
            try deleteArchived(record, options, report: &report, pause: pause, shouldStop: shouldStop)
            if report.stopped { break }
            archived(record, report)
        }
        if !report.stopped { try forgetAttempts(before: cutoff, options, report: &report, shouldStop: shouldStop) }
        return report
    }

    /// Upload attempts (one row per request to Metrc) started before the cutoff that no live event names: the attempts
    /// of archived events (each line keeps its event's last one), earlier tries of an event, and attempts taken back
    /// before they left. Without this they would grow forever, about one row per hundred events. Read in pages by id
    /// (ids grow with time, so the first page past the cutoff ends the walk), deleted in small transactions. The
    /// newest attempt always stays: ids are the largest plus one, and an archived line names its attempt's id.
    func forgetAttempts(before cutoff: Date, _ options: RetentionOptions, report: inout RetentionReport, shouldStop: () -> Bool) throws {
        let t = cutoff.timeIntervalSince1970
        var after: Int64 = 0
        while true {
            if shouldStop() {
                report.stopped = true
                return
            }
            let page = try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT id, started_at FROM upload_attempts WHERE id > ? AND id < (SELECT MAX(id) FROM upload_attempts)
                    ORDER BY id LIMIT ?
                    """, arguments: [after, options.eventsPerTransaction])
            }
            let old = page.prefix { ($0[1] as Double) < t }.map { $0[0] as Int64 }
            guard let last = old.last else { return }
            let started = ContinuousClock.now
            let deleted = try backgroundWrite(sync: .withNextCommit) { db in
                try db.execute(literal: """
                    DELETE FROM upload_attempts WHERE id IN \(old)
                      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.attempt_id = upload_attempts.id)
                    """)
                return db.changesCount
            }
            report.attemptsDeleted += deleted
            rest(after: ContinuousClock.now - started, options)
            if old.count < page.count || page.count < options.eventsPerTransaction { return }
            after = last
        }
    }

    /// The instant before which finished events leave. Never later than the oldest `unknown_since` of an unfinished
    /// event: its read-back at Metrc looks at what happened since then and must find every Metrc id our uploaded events
    /// already claim (`claimedMetrcIDs`), which reads the live store.
    func archiveCutoff(keepFinishedDays: Int, now: Date) throws -> Date {
        var cutoff = now.addingTimeInterval(-Double(keepFinishedDays) * 86_400)
        let oldestUnknown = try pool.read { db in
            try Double.fetchOne(db, SQLRequest<Double>(literal: """
                SELECT MIN(unknown_since) FROM events WHERE state IN \(EventState.unfinished) AND unknown_since IS NOT NULL
                """))
        }
        if let oldestUnknown { cutoff = min(cutoff, Date(timeIntervalSince1970: oldestUnknown)) }
        return cutoff
    }

    /// The batches of the next archive: archivable batches after `after` in key order, all received in one UTC month,
    /// up to `limit` events.
    struct PlannedArchive {
        var month: String
        /// Primary keys and event counts, in key order.
        var batches: [(pk: Int64, events: Int)] = []
        var events = 0
        var lastPK: Int64 = 0

        /// The batches in runs of about `events` events (a bigger batch alone): what one read turns into lines, so
        /// memory holds a few thousand lines at most, whatever the batches' sizes.
        func runs(of events: Int) -> [[Int64]] {
            var runs: [[Int64]] = []
            var current: [Int64] = []
            var count = 0
            for batch in batches {
                if !current.isEmpty, count + batch.events > events {
                    runs.append(current)
                    (current, count) = ([], 0)
                }
                current.append(batch.pk)
                count += batch.events
            }
            if !current.isEmpty { runs.append(current) }
            return runs
        }
    }

    /// Events an archive's writing reads at once: their rows, as GRDB holds them (tens of columns each), were 8 MiB
    /// of a paced daemon's peak at 2,000.
    static let archiveEventsPerRead = 250

    /// The next archive's batches: old enough, every event finished, in one month. The newest batch of the store
    /// always stays: events and batches have no AUTOINCREMENT, so the next ids are the largest plus one, and a store
    /// emptied by retention would give an archived event's id to a new one.
    func nextArchive(after: Int64, cutoff: Date, limit: Int) throws -> PlannedArchive? {
        var planned: PlannedArchive?
        var cursor = after
        let t = cutoff.timeIntervalSince1970
        while true {
            let page = try pool.read { db in
                try Row.fetchAll(db, SQLRequest<Row>(literal: """
                    SELECT b.id, b.received_at, b.event_count FROM batches b
                    WHERE b.id > \(cursor) AND b.received_at < \(t)
                      AND b.id < (SELECT MAX(id) FROM batches)
                      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.batch_id = b.id
                                        AND (e.state NOT IN \(ArchiveLine.archivable) OR e.updated_at >= \(t)))
                      AND NOT EXISTS (SELECT 1 FROM archived_batches x WHERE x.device_id = b.device_id AND x.batch_id = b.batch_id)
                    ORDER BY b.id LIMIT 500
                    """))
            }
            guard !page.isEmpty else { return planned }
            for row in page {
                let pk: Int64 = row[0]
                let month = ArchiveName.month(of: Date(timeIntervalSince1970: row[1]))
                let events: Int = row[2]
                if let current = planned, current.month != month || current.events + events > limit { return current }
                if planned == nil { planned = PlannedArchive(month: month) }
                planned!.batches.append((pk, events))
                planned!.events += events
                planned!.lastPK = pk
                cursor = pk
            }
        }
    }

    /// Steps 1–3: the name taken, the file written, flushed and renamed, then the audit row (the commit point).
    /// Nil when `shouldStop` said so while the file was written: nothing then vouches for it, and it is removed.
    func writeArchive(_ planned: PlannedArchive, _ options: RetentionOptions, pause: (RetentionStep) -> Void,
                      shouldStop: () -> Bool) throws -> ArchiveRecord? {
        let dir = options.archiveDir
        let inFolder = try FileManager.default.contentsOfDirectory(atPath: dir).compactMap { name in
            ArchiveName(fileName: name.hasSuffix(ArchiveName.partialSuffix) ? String(name.dropLast(ArchiveName.partialSuffix.count)) : name)
        }.filter { $0.month == planned.month }.map(\.part).max() ?? 0
        let (archiveID, name) = try backgroundWrite { db -> (Int64, ArchiveName) in
            let recorded = try Int.fetchOne(db, sql: "SELECT MAX(part) FROM archives WHERE month = ?", arguments: [planned.month]) ?? 0
            let name = ArchiveName(month: planned.month, part: max(recorded, inFolder) + 1)
            try db.execute(sql: "INSERT INTO archives (month, part, file, state, started_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [name.month, name.part, name.fileName, ArchiveState.writing, Date().timeIntervalSince1970])
            return (db.lastInsertedRowID, name)
        }
        let path = dir + "/" + name.fileName
        let partial = path + ArchiveName.partialSuffix
        var events = 0
        let written: (sha256: Data, bytes: Int)
        struct Stopped: Error {}
        do {
            // Building and compressing the lines is a core's work while it lasts (85% of one through a 1,000,000-event
            // run, 12-06), and only reads the store: it runs where a device's commit or ack takes the core first.
            written = try lowered(options) {
                let writer = try GzipFileWriter(path: partial)
                for chunk in planned.runs(of: Store.archiveEventsPerRead) {
                    // A stopping daemon does not wait for a whole archive: this one is dropped and written again next time.
                    if shouldStop() { throw Stopped() }
                    let started = ContinuousClock.now
                    let lines = try pool.read { db in try ArchiveLine.lines(db, batchPKs: chunk) }
                    for line in lines { try writer.write(line) }
                    events += lines.count
                    rest(after: ContinuousClock.now - started, options)
                }
                return try writer.finish()
            }
        } catch {
            unlink(partial)
            _ = try? backgroundWrite { db in try db.execute(sql: "DELETE FROM archives WHERE id = ?", arguments: [archiveID]) }
            if error is Stopped { return nil }
            throw error
        }
        pause(.partialWritten)
        guard rename(partial, path) == 0 else {
            throw StoreError("cannot rename \(partial) to \(path): \(String(cString: strerror(errno)))")
        }
        try Store.flush(dir)
        pause(.renamed)
        let detail = ArchiveDetail(sha256: written.sha256.lowerHex, month: name.month, part: name.part, events: events,
                                   batches: planned.batches.count, bytes: written.bytes)
        let record = try backgroundWrite { db -> ArchiveRecord in
            try Store.audit(db, actor: options.actor, action: .storeArchive, subject: name.fileName, detail: detail.text)
            let auditID = db.lastInsertedRowID
            try db.execute(sql: """
                UPDATE archives SET state = ?, written_at = ?, sha256 = ?, events = ?, batches = ?, bytes = ?, audit_id = ? WHERE id = ?
                """, arguments: [ArchiveState.written, Date().timeIntervalSince1970, written.sha256, events, planned.batches.count,
                                 written.bytes, auditID, archiveID])
            return try Store.archiveRecords(db, where: "id = \(archiveID)").first!
        }
        pause(.recorded)
        return record
    }

    /// Step 4: the batches a written archive holds leave the live store, in small transactions. The file is read back
    /// first and must match its SHA-256: nothing leaves that the file does not hold.
    func deleteArchived(_ record: ArchiveRecord, _ options: RetentionOptions, report: inout RetentionReport,
                        pause: (RetentionStep) -> Void, shouldStop: () -> Bool) throws
    {
        let path = options.archiveDir + "/" + record.file
        var order: [ArchiveLine.Key] = []
        var held: [ArchiveLine.Key: (hash: Data, events: Int)] = [:]
        // Reading back and parsing every line is a burst of a core (a second or so per archive) that touches no store.
        try lowered(options) {
            // The hash first, on the raw bytes: a changed file is refused for that, whatever its lines look like.
            let found = try SHA256Stream.ofFile(path)
            guard found.digest.lowerHex == record.sha256 else {
                throw StoreError("the archive \(path) does not match its audit row \(record.auditID ?? 0) (SHA-256 \(found.digest.lowerHex), recorded \(record.sha256 ?? "none")): its batches stay in the live store until the file is put back")
            }
            let read = try GzipLineReader.read(path) { bytes in
                guard let line = ArchiveLine.parse(bytes) else { throw StoreError("\(path) has a line that is not an archived event") }
                if held[line.key] == nil {
                    order.append(line.key)
                    held[line.key] = (Data(hexString: line.contentSHA256) ?? Data(), line.events)
                }
                return true
            }
            // Read again for its lines: the same bytes, or the file changed in between.
            guard read.sha256 == found.digest else { throw StoreError("the archive \(path) changed while it was read: its batches stay in the live store") }
        }
        var queue = order[...]
        let finished = ArchiveLine.archivable
        while !queue.isEmpty {
            if shouldStop() {
                report.stopped = true
                return
            }
            let started = ContinuousClock.now
            var deletedEvents = 0
            var deletedBatches = 0
            var kept: [String] = []
            // Without a sync of its own: a power loss that takes this transaction away leaves the archive `written`,
            // and the next run deletes its batches again (`recoverArchives`). One fsync fewer per 100 events, and a
            // shorter hold of the writer that a device's commit may be waiting for.
            try backgroundWrite(sync: .withNextCommit) { db in
                var budget = options.eventsPerTransaction
                while budget > 0, let key = queue.first, let entry = held[key] {
                    let (hash, count) = entry
                    guard let device = try Int64.fetchOne(db, sql: "SELECT id FROM devices WHERE name = ?", arguments: [key.device]) else {
                        kept.append("\(key.device):\(key.batch): its device is no longer in the store")
                        queue.removeFirst()
                        continue
                    }
                    let live = try Row.fetchOne(db, sql: "SELECT id, content_hash FROM batches WHERE device_id = ? AND batch_id = ?",
                                                arguments: [device, key.batch])
                    if let live {
                        let pk: Int64 = live[0]
                        let liveHash: Data = live[1]
                        let unfinished = try Int.fetchOne(db, SQLRequest<Int>(literal: """
                            SELECT COUNT(*) FROM events WHERE batch_id = \(pk) AND state NOT IN \(finished)
                            """)) ?? 0
                        guard liveHash == hash, unfinished == 0 else {
                            kept.append("\(key.device):\(key.batch): " + (liveHash != hash ? "stored again with other content" : "\(unfinished) events no longer finished"))
                            queue.removeFirst()
                            continue
                        }
                        try db.execute(sql: """
                            INSERT OR IGNORE INTO archived_batches (device_id, batch_id, archive_id, content_hash, event_count) VALUES (?, ?, ?, ?, ?)
                            """, arguments: [device, key.batch, record.id, hash, count])
                        let ids = try Int64.fetchAll(db, sql: "SELECT id FROM events WHERE batch_id = ? ORDER BY id LIMIT ?", arguments: [pk, budget])
                        if !ids.isEmpty {
                            try db.execute(literal: "DELETE FROM event_tags WHERE event_id IN \(ids)")
                            try db.execute(literal: "DELETE FROM events WHERE id IN \(ids)")
                            deletedEvents += ids.count
                        }
                        if ids.count == budget, try Int.fetchOne(db, sql: "SELECT 1 FROM events WHERE batch_id = ? LIMIT 1", arguments: [pk]) != nil {
                            // The budget ran out inside this batch: the rest of it goes in the next transaction (it already
                            // answers `archived`).
                            budget = 0
                            break
                        }
                        budget -= max(ids.count, 1)
                        try db.execute(sql: "DELETE FROM batches WHERE id = ?", arguments: [pk])
                        deletedBatches += 1
                    } else {
                        // Gone already (a run stopped after its last row went): make sure it is remembered.
                        try db.execute(sql: """
                            INSERT OR IGNORE INTO archived_batches (device_id, batch_id, archive_id, content_hash, event_count) VALUES (?, ?, ?, ?, ?)
                            """, arguments: [device, key.batch, record.id, hash, count])
                    }
                    queue.removeFirst()
                }
            }
            report.eventsDeleted += deletedEvents
            report.batchesDeleted += deletedBatches
            report.kept += kept
            pause(.deleted)
            rest(after: ContinuousClock.now - started, options)
        }
        try backgroundWrite { db in
            try db.execute(sql: "UPDATE archives SET state = ?, finished_at = ? WHERE id = ?",
                           arguments: [ArchiveState.done, Date().timeIntervalSince1970, record.id])
        }
    }

    /// Runs `work` (which must not write to the store) on a `SCHED_IDLE` thread while this one waits, or here (`idlePriority`).
    func lowered<T>(_ options: RetentionOptions, _ work: () throws -> T) throws -> T {
        options.idlePriority ? try LowPriority.runWaiting(work) : try work()
    }

    /// A step of a run took `took`: rest `restFactor` times as long.
    func rest(after took: Duration, _ options: RetentionOptions) {
        if options.restFactor > 0 { Thread.sleep(forTimeInterval: Self.seconds(took) * options.restFactor) }
    }

    /// What a run that stopped part way left: a `writing` archive's file is removed (nothing vouches for it; its batches
    /// are all live), a `written` one's deletions are finished.
    func recoverArchives(_ options: RetentionOptions, report: inout RetentionReport, pause: (RetentionStep) -> Void,
                         shouldStop: () -> Bool) throws
    {
        let unfinished = try pool.read { db in try Store.archiveRecords(db, where: "state != '\(ArchiveState.done.rawValue)'") }
        for record in unfinished {
            if shouldStop() {
                report.stopped = true
                return
            }
            let path = options.archiveDir + "/" + record.file
            if record.state == ArchiveState.writing.rawValue {
                for file in [path, path + ArchiveName.partialSuffix] where unlink(file) != 0 && errno != ENOENT {
                    throw StoreError("cannot remove \(file), left by a retention run that stopped: \(String(cString: strerror(errno)))")
                }
                try backgroundWrite { db in try db.execute(sql: "DELETE FROM archives WHERE id = ?", arguments: [record.id]) }
                report.discarded.append(record.file)
            } else {
                try deleteArchived(record, options, report: &report, pause: pause, shouldStop: shouldStop)
                if report.stopped { return }
                report.completed.append(record.file)
            }
        }
    }

    static func archiveRecords(_ db: Database, where condition: String? = nil) throws -> [ArchiveRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM archives" + (condition.map { " WHERE " + $0 } ?? "") + " ORDER BY month, part").map { row in
            ArchiveRecord(id: row[ArchiveColumns.id], month: row[ArchiveColumns.month], part: row[ArchiveColumns.part], file: row[ArchiveColumns.file],
                          state: row[ArchiveColumns.state], sha256: (row[ArchiveColumns.sha256] as Data?)?.lowerHex,
                          events: row[ArchiveColumns.events], batches: row[ArchiveColumns.batches], bytes: row[ArchiveColumns.bytes],
                          auditID: row[ArchiveColumns.auditID],
                          writtenAt: (row[ArchiveColumns.writtenAt] as Double?).map(Date.init(timeIntervalSince1970:)))
        }
    }
}

extension Data {
    /// Bytes from lower- or upper-case hex; nil for anything else.
    init?(hexString: String) {
        let digits = Array(hexString.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.init(bytes)
    }
}
