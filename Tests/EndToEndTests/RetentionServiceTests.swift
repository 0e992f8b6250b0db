import Foundation
import Logging
import OutlawConfig
@testable import OutlawDaemon
import OutlawProtocol
@testable import OutlawStore
import OutlawTestSupport
import Testing

/// A store seeded with batches whose events were received and finished at chosen instants, through the store's own
/// API (commit, attempts, outcomes), as the daemon would have left them.
struct RetentionSeed {
    let store: Store
    let device: Device
    /// Every batch sent, by id, to send again.
    private let sent = LockedBox<[String: ValidatedBatch]>([:])
    private let plantCounter = LockedBox(0)

    init(store: Store) async throws {
        self.store = store
        let token = try store.addDevice(name: "HH-1", actor: "test")
        try store.addUser(name: "jane", role: .user, pin: "1234", actor: "test")
        device = try #require(try await store.authenticateDevice(name: "HH-1", token: token))
    }

    func batch(_ id: String, types: [String], plant: String? = nil) throws -> ValidatedBatch {
        let validator = BatchValidator(maxBatchEvents: 5000, defaultLicense: "LIC-0001", licenses: [])
        let events: [JSONValue] = types.enumerated().map { index, type in
            let n = plantCounter.update { $0 += 1; return $0 }
            let tag = plant ?? "1A4FF01000000220000" + String(format: "%05d", n)
            var event: [String: JSONValue] = ["seq": .number(Double(index + 1)), "type": .string(type), "at": "2025-01-15T10:00:00-08:00",
                                              "plant": .string(tag)]
            if type == "plant.move" { event["location"] = "Flower Room 2" }
            return .object(event)
        }
        return try validator.validate(["id": .string(id), "user": "jane", "events": .array(events)], now: Date()).get()
    }

    /// Stores a batch received at `received`; returns its new event ids (scans have none: they are never queued).
    @discardableResult
    func add(_ id: String, types: [String], received: Date) throws -> [Int64] {
        let before = Set(try store.readyEvents(now: .distantFuture, limit: 100_000).events.map(\.id))
        let validated = try batch(id, types: types)
        sent.update { $0[id] = validated }
        #expect(try store.commit([IncomingBatch(deviceID: device.id, session: "s", batch: validated)], now: received) == [.stored(events: types.count)])
        return try store.readyEvents(now: .distantFuture, limit: 100_000).events.map(\.id).filter { !before.contains($0) }.sorted()
    }

    /// Each event answered by Metrc at `finished`: uploaded with a Metrc id, or failed.
    func answer(_ ids: [Int64], at finished: Date, failed: Bool = false) throws {
        let attempt = try store.beginAttempt(eventIDs: ids, license: "LIC-0001", action: .movePlants,
                                             signing: AttemptSigning(keyKind: .default, keyUser: nil, reason: "jane has no personal key"),
                                             now: finished.addingTimeInterval(-1))
        try store.finishAttempt(attempt, outcome: failed ? .rejected : .accepted, httpStatus: failed ? 400 : 200, message: nil, metrcIDs: [],
                                results: ids.map { ($0, failed ? .failed(message: "Metrc: plant not found") : .uploaded(metrcID: "M\($0)")) },
                                now: finished)
    }

    func resend(_ id: String) throws -> BatchOutcome {
        let validated = try #require(sent.value[id])
        return try #require(try store.commit([IncomingBatch(deviceID: device.id, session: "s2", batch: validated)]).first)
    }
}

/// A value behind a lock, for test helpers shared across tasks.
final class LockedBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T { lock.withLock { stored } }
    func update<R>(_ body: (inout T) -> R) -> R { lock.withLock { body(&stored) } }
}

/// `RetentionService` on a `ManualClock` over a real SQLite store: which events leave, the archive and its audit row,
/// what `status` and a resend then get, and a tampered archive refused with its reason.
@Suite("Retention on a manual clock", .serialized, .timeLimit(.minutes(3)))
struct RetentionServiceClockTests {
    /// 2026-12-05 03:15:00 UTC: the wall clock when the manual clock reads zero.
    static let t0 = Date(timeIntervalSince1970: 1_796_440_500)
    static let day = 86_400

    @Test func oldFinishedEventsLeaveForAVerifiedArchiveAndUnfinishedOrFailedOnesNever() async throws {
        let temp = try TempDirectory("outlawd-retention-clock")
        let store = try await offload { try Store(path: temp.file("state/outlawd.sqlite"), pinRounds: 10_000) }
        let seed = try await RetentionSeed(store: store)
        let t0 = Self.t0
        let old = t0.addingTimeInterval(-500 * 86_400)
        let recent = t0.addingTimeInterval(-10 * 86_400)
        try await offload {
            try seed.answer(try seed.add("old-up", types: ["plant.move", "plant.move", "plant.move"], received: old), at: old.addingTimeInterval(60))
            try seed.add("old-scan", types: ["plant.scan", "plant.scan"], received: old)
            try seed.answer(try seed.add("old-failed", types: ["plant.move"], received: old), at: old.addingTimeInterval(60), failed: true)
            try seed.add("old-queued", types: ["plant.move"], received: old)
            let mixed = try seed.add("old-mixed", types: ["plant.move", "plant.move"], received: old)
            try seed.answer([mixed[0]], at: old.addingTimeInterval(60))
            try seed.answer(try seed.add("late-finish", types: ["plant.move"], received: old), at: recent)
            try seed.answer(try seed.add("recent-up", types: ["plant.move"], received: recent), at: recent)
            // The store's newest batch always stays (theNewestBatchStaysSoNoIdIsGivenTwice).
            try seed.add("newest", types: ["plant.move"], received: t0)
        }

        let clock = ManualClock()
        let log = RecordedLog()
        var settings = DaemonConfiguration.Retention()
        settings.keepFinishedDays = 400
        let dir = settings.archiveFolder(storePath: store.path)
        #expect(dir == temp.file("state/archives"))
        let service = RetentionService(store: store, settings: Reloadable(settings), storePath: store.path,
                                       logger: Logger(label: "test") { _ in log.handler },
                                       wallClock: { t0.addingTimeInterval(TimeInterval(clock.now.offset.components.seconds)) })
        let run = Task { await service.run(clock: clock) }

        // The first run, at start: the two old batches whose every event is finished leave; nothing else does.
        await clock.waitForSleepers()
        #expect(log.notices("retention run") == 1)
        #expect(log.count(.info, "retention archived outlawd-archive-2025-07.0001.jsonl.gz: 5 events; this run so far 5 events in 1 archives") == 1)
        let first = try store.archives()
        try #require(first.count == 1, "\(first)")
        #expect(first[0].month == "2025-07" && first[0].part == 1 && first[0].events == 5 && first[0].batches == 2 && first[0].state == "done")
        for gone in ["old-up", "old-scan"] { #expect(try store.batchDetail(device: "HH-1", id: gone) == nil, "\(gone)") }
        for kept in ["old-failed", "old-queued", "old-mixed", "late-finish", "recent-up"] {
            #expect(try store.batchDetail(device: "HH-1", id: kept) != nil, "\(kept)")
        }
        #expect(try store.queueStats().queued == 3, "the unfinished events (the newest batch's one too) are all still queued")

        // The archive verifies against its audit row, which carries its SHA-256.
        let verification = try store.verifyArchives(dir: dir)
        #expect(verification.intact, "\(verification)")
        let check = try #require(verification.checks.first)
        #expect(check.file == "outlawd-archive-2025-07.0001.jsonl.gz" && check.events == 5 && check.sha256 == first[0].sha256)
        let row = try #require(try store.auditEntries(limit: 20).first { $0.action == "store.archive" })
        #expect(row.id == check.auditID && row.subject == check.file && row.actor == "outlawd")
        #expect(row.detail?.contains("sha256=\(first[0].sha256 ?? "?")") == true, "\(row)")

        // Each event's line: its batch, device, collector, signer, Metrc id and times.
        let lines = try #require(try store.archivedLines(device: "HH-1", batch: "old-up", dir: dir)).lines
        #expect(lines.count == 3)
        let line = try #require(JSONValue.parse(Array(lines[1].utf8)))
        #expect(line["batch"]?["device"]?.stringValue == "HH-1" && line["batch"]?["id"]?.stringValue == "old-up")
        #expect(line["event"]?["seq"]?.integerValue == 2 && line["collector"]?.stringValue == "jane" && line["state"]?.stringValue == "uploaded")
        #expect(line["metrc_id"]?.stringValue?.hasPrefix("M") == true && line["signer"]?["key"]?.stringValue == "default")
        #expect(line["times"]?["received"]?.stringValue == Timestamp.format(old))
        #expect(line["times"]?["finished"]?.stringValue == Timestamp.format(old.addingTimeInterval(60)))
        #expect(try store.archivedLines(device: "HH-1", batch: "old-scan", seq: 2, dir: dir)?.lines.count == 1)

        // `status` answers archived for them; a resend is a duplicate, stored nothing twice; other content conflicts.
        let archived = try await store.archivedBatchIDs(deviceID: seed.device.id, ids: ["old-up", "old-scan", "old-failed", "nope"])
        #expect(archived == ["old-up", "old-scan"])
        #expect(try seed.resend("old-up") == .duplicate(events: 3))
        let other = try seed.batch("old-up", types: ["plant.move"])
        #expect(try store.commit([IncomingBatch(deviceID: seed.device.id, session: "s3", batch: other)]).first.map {
            if case .rejected(let r) = $0 { return r.code == .idConflict }
            return false
        } == true)
        #expect(try store.batchDetail(device: "HH-1", id: "old-up") == nil)

        // A day later: a run, nothing more is old enough.
        clock.advance(by: .seconds(Self.day))
        await clock.waitForSleepers()
        #expect(log.notices("retention run") == 2)
        #expect(try store.archives().count == 1)

        // 400 days later the recently finished ones leave too, each into its month's next part; the failed, queued
        // and half-finished batches still never do.
        clock.advance(by: .seconds(400 * Self.day))
        await clock.waitForSleepers()
        #expect(log.notices("retention run") == 3)
        #expect(try store.archives().map(\.file) == ["outlawd-archive-2025-07.0001.jsonl.gz", "outlawd-archive-2025-07.0002.jsonl.gz",
                                                     "outlawd-archive-2026-11.0001.jsonl.gz"])
        for kept in ["old-failed", "old-queued", "old-mixed"] { #expect(try store.batchDetail(device: "HH-1", id: kept) != nil, "\(kept)") }
        #expect(try store.verifyArchives(dir: dir).intact)

        // One changed byte: refused, with the reason.
        let path = dir + "/" + check.file
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        let tampered = try store.verifyArchives(dir: dir)
        #expect(!tampered.intact)
        let bad = try #require(tampered.checks.first { $0.file == check.file })
        #expect(bad.problem?.contains("but audit row \(row.id) recorded \(check.sha256 ?? "?")") == true, "\(bad)")
        #expect(bad.problem?.contains("changed after it was written") == true)
        #expect(tampered.checks.filter(\.intact).count == 2)

        // Cancelled while it waits: the loop ends at once.
        run.cancel()
        await run.value
        #expect(clock.sleeperCount == 0)
        #expect(log.errors("retention run failed") == 0)
    }

    @Test func bigBatchesLeaveInSmallTransactionsAndOffIsOff() async throws {
        let temp = try TempDirectory("outlawd-retention-small")
        let store = try await offload { try Store(path: temp.file("state/outlawd.sqlite"), pinRounds: 10_000) }
        let seed = try await RetentionSeed(store: store)
        let old = Self.t0.addingTimeInterval(-500 * 86_400)
        try await offload {
            for i in 1...3 {
                try seed.answer(try seed.add("big-\(i)", types: Array(repeating: "plant.move", count: 7), received: old), at: old)
            }
            // A newer batch: the store's newest always stays (theNewestBatchStaysSoNoIdIsGivenTwice).
            try seed.add("recent", types: ["plant.move"], received: Self.t0)
        }
        let dir = temp.file("archives")
        var off = RetentionOptions(keepFinishedDays: 0, archiveDir: dir)
        off.restFactor = 0
        #expect(try store.runRetention(off, now: Self.t0).eventsArchived == 0)
        var options = RetentionOptions(keepFinishedDays: 400, archiveDir: dir)
        (options.eventsPerTransaction, options.eventsPerArchive, options.restFactor) = (3, 14, 0)
        let steps = LockedBox<[RetentionStep]>([])
        var progress: [String] = []
        let report = try store.runRetention(options, now: Self.t0, pause: { step in steps.update { $0.append(step) } },
                                            archived: { record, soFar in
                                                progress.append("\(record.file) \(record.events) \(soFar.eventsArchived) \(soFar.eventsDeleted)")
                                            })
        // 21 events in batches of 7: two archives (14 events at most each, a batch never split), 3 rows a transaction.
        #expect(report.archives.map(\.events) == [14, 7])
        // Each archive is reported once its batches have left, with the run's totals so far.
        #expect(progress == report.archives.map(\.file).enumerated().map { i, file in i == 0 ? "\(file) 14 14 14" : "\(file) 7 21 21" }, "\(progress)")
        #expect(report.eventsDeleted == 21 && report.batchesDeleted == 3)
        // 3 rows a transaction, a batch's last rows and the next one's first together: 5 for the first archive, 3 for the second.
        #expect(steps.value.filter { $0 == .deleted }.count == 8, "\(steps.value)")
        #expect(steps.value.prefix(3) == [.partialWritten, .renamed, .recorded])
        #expect(try store.queueStats().uploaded == 0)
        #expect(try store.verifyArchives(dir: dir).intact)
    }

    /// `[retention] idle_priority`: by default the archive's lines are built on a `SCHED_IDLE` thread; set false (a box
    /// whose cores are never idle, where that thread would get about 0.1% of a core), on the run's own thread.
    @Test func theArchiveIsWrittenOnAnIdleThreadUnlessTheSettingSaysOtherwise() async throws {
        let temp = try TempDirectory("outlawd-retention-priority")
        let store = try await offload { try Store(path: temp.file("state/outlawd.sqlite"), pinRounds: 10_000) }
        var settings = DaemonConfiguration.Retention()
        let byDefault = RetentionService.options(settings, storePath: store.path)
        #expect(try store.lowered(byDefault) { LowPriority.currentSchedulingPolicy() } == LowPriority.idleSchedulingPolicy)
        settings.idlePriority = false
        let here = RetentionService.options(settings, storePath: store.path)
        let callers = LowPriority.currentSchedulingPolicy()
        #expect(try store.lowered(here) { LowPriority.currentSchedulingPolicy() } == callers)
        #expect(callers != LowPriority.idleSchedulingPolicy)
        #expect(here.archiveDir == temp.file("state/archives") && here.keepFinishedDays == 400)
    }

    @Test func theNewestBatchStaysSoNoIdIsGivenTwice() async throws {
        let temp = try TempDirectory("outlawd-retention-newest")
        let store = try await offload { try Store(path: temp.file("state/outlawd.sqlite"), pinRounds: 10_000) }
        let seed = try await RetentionSeed(store: store)
        let old = Self.t0.addingTimeInterval(-500 * 86_400)
        let ids = try await offload {
            try (1...2).map { i in
                let ids = try seed.add("old-\(i)", types: ["plant.move", "plant.move"], received: old)
                try seed.answer(ids, at: old)
                return ids
            }
        }
        var options = RetentionOptions(keepFinishedDays: 400, archiveDir: temp.file("archives"))
        options.restFactor = 0
        let report = try store.runRetention(options, now: Self.t0)
        // Both are old and finished; only the first leaves, and what comes next numbers on from the one kept.
        #expect(report.eventsDeleted == 2 && report.batchesDeleted == 1)
        #expect(try await store.archivedBatchIDs(deviceID: seed.device.id, ids: ["old-1", "old-2"]) == ["old-1"])
        let next = try await offload { try seed.add("new", types: ["plant.move"], received: Self.t0) }
        #expect(next.count == 1 && next[0] > ids[1].max()!, "\(next) after \(ids)")
    }

    /// Upload attempts older than the cutoff go once no live event names them: an archived event's (its line keeps
    /// it), an earlier try of it. One a live failed event names stays, and so does the newest, whatever its age.
    @Test func oldAttemptsNoLiveEventNamesAreForgotten() async throws {
        let temp = try TempDirectory("outlawd-retention-attempts")
        let store = try await offload { try Store(path: temp.file("state/outlawd.sqlite"), pinRounds: 10_000) }
        let seed = try await RetentionSeed(store: store)
        let old = Self.t0.addingTimeInterval(-500 * 86_400)
        let signing = AttemptSigning(keyKind: .default, keyUser: nil, reason: "jane has no personal key")
        func attempts() throws -> [Int64] {
            try store.pool.read { db in try Int64.fetchAll(db, sql: "SELECT id FROM upload_attempts ORDER BY id") }
        }
        let newest = try await offload { () throws -> [Int64] in
            try seed.answer(try seed.add("old-up", types: ["plant.move", "plant.move"], received: old), at: old.addingTimeInterval(60))
            try seed.answer(try seed.add("old-failed", types: ["plant.move"], received: old), at: old.addingTimeInterval(60), failed: true)
            // Metrc failed the first try; the second took the events.
            let retried = try seed.add("old-retried", types: ["plant.move"], received: old)
            let first = try store.beginAttempt(eventIDs: retried, license: "LIC-0001", action: .movePlants, signing: signing, now: old)
            try store.finishAttempt(first, outcome: .serverFault, httpStatus: 503, message: "Metrc: 503", metrcIDs: [],
                                    results: retried.map { ($0, .retry(at: old.addingTimeInterval(30), message: "Metrc: 503", unknownSince: nil)) },
                                    now: old.addingTimeInterval(1))
            try seed.answer(retried, at: old.addingTimeInterval(120))
            return try seed.add("newest", types: ["plant.move"], received: Self.t0)
        }
        let before = try attempts()
        try #require(before.count == 4, "\(before)")
        var options = RetentionOptions(keepFinishedDays: 400, archiveDir: temp.file("archives"))
        options.restFactor = 0
        let report = try store.runRetention(options, now: Self.t0)
        #expect(report.eventsDeleted == 3 && report.batchesDeleted == 2, "old-up and old-retried leave; old-failed stays")
        // old-up's attempt and old-retried's first try go; the failed event's stays; the newest (old-retried's second) stays.
        #expect(report.attemptsDeleted == 2)
        #expect(try attempts() == [before[1], before[3]])
        let line = try #require(try store.archivedLines(device: "HH-1", batch: "old-retried", dir: options.archiveDir)?.lines.first)
        #expect(JSONValue.parse(Array(line.utf8))?["last_attempt"]?["id"]?.integerValue == Int(before[3]), "the line keeps its last attempt")

        // Once a newer attempt exists, the old newest goes too; the new one (recent) and the failed event's stay.
        try await offload { try seed.answer(newest, at: Self.t0) }
        let again = try store.runRetention(options, now: Self.t0.addingTimeInterval(60))
        #expect(again.attemptsDeleted == 1, "\(again)")
        let after = try attempts()
        #expect(after.count == 2 && after[0] == before[1] && after[1] > before[3], "\(after)")
    }

    /// A run stopped after the audit row (as a stopping daemon stops it) leaves its batches live; if the file then
    /// changes, nothing more leaves and the run says why; put back, the next run finishes the deletions.
    @Test func deletionsWaitForAnArchiveThatMatchesItsAuditRow() async throws {
        let temp = try TempDirectory("outlawd-retention-tamper")
        let store = try await offload { try Store(path: temp.file("state/outlawd.sqlite"), pinRounds: 10_000) }
        let seed = try await RetentionSeed(store: store)
        let old = Self.t0.addingTimeInterval(-500 * 86_400)
        try await offload {
            for i in 1...4 { try seed.answer(try seed.add("t-\(i)", types: ["plant.move", "plant.move"], received: old), at: old) }
            try seed.add("newest", types: ["plant.move"], received: Self.t0)
        }
        let dir = temp.file("archives")
        var options = RetentionOptions(keepFinishedDays: 400, archiveDir: dir)
        options.restFactor = 0
        let stop = LockedBox(false)
        let first = try store.runRetention(options, now: Self.t0, pause: { step in if step == .recorded { stop.update { $0 = true } } },
                                           shouldStop: { stop.value })
        #expect(first.stopped && first.archives.count == 1 && first.eventsDeleted == 0)
        let record = try #require(first.archives.first)
        #expect(try store.archives().first?.state == "written")
        for i in 1...4 { #expect(try store.batchDetail(device: "HH-1", id: "t-\(i)") != nil) }

        let path = dir + "/" + record.file
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        var changed = original
        changed[changed.count - 10] ^= 0x80
        try changed.write(to: URL(fileURLWithPath: path))
        #expect {
            try store.runRetention(options, now: Self.t0)
        } throws: { error in
            "\(error)".contains("does not match its audit row \(record.auditID ?? 0)") && "\(error)".contains("stay in the live store")
        }
        for i in 1...4 { #expect(try store.batchDetail(device: "HH-1", id: "t-\(i)") != nil) }

        try original.write(to: URL(fileURLWithPath: path))
        let second = try store.runRetention(options, now: Self.t0)
        #expect(second.completed == [record.file] && second.eventsDeleted == 8 && second.batchesDeleted == 4 && second.archives.isEmpty)
        for i in 1...4 { #expect(try store.batchDetail(device: "HH-1", id: "t-\(i)") == nil) }
        #expect(try store.archives().map(\.state) == ["done"])
        #expect(try store.verifyArchives(dir: dir).intact)
    }

    /// A stop while an archive is written drops it (nothing vouches for it yet): no file, no record, every batch live;
    /// the next run writes it whole.
    @Test func aStopWhileWritingLeavesNoFileAndTheNextRunWritesItWhole() async throws {
        let temp = try TempDirectory("outlawd-retention-stop")
        let store = try await offload { try Store(path: temp.file("state/outlawd.sqlite"), pinRounds: 10_000) }
        let seed = try await RetentionSeed(store: store)
        let old = Self.t0.addingTimeInterval(-500 * 86_400)
        try await offload {
            try seed.answer(try seed.add("s-1", types: ["plant.move", "plant.move"], received: old), at: old)
            try seed.add("newest", types: ["plant.move"], received: Self.t0)
        }
        let dir = temp.file("archives")
        var options = RetentionOptions(keepFinishedDays: 400, archiveDir: dir)
        options.restFactor = 0
        // The run's first look says go on; the next, inside the write, says stop.
        let looks = LockedBox(0)
        let stopped = try store.runRetention(options, now: Self.t0, shouldStop: { looks.update { $0 += 1; return $0 >= 2 } })
        #expect(stopped.stopped && stopped.archives.isEmpty && looks.value == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [])
        #expect(try store.archives().isEmpty)
        #expect(try store.batchDetail(device: "HH-1", id: "s-1") != nil)
        let whole = try store.runRetention(options, now: Self.t0)
        #expect(whole.archives.map(\.file) == ["outlawd-archive-2025-07.0001.jsonl.gz"] && whole.eventsDeleted == 2)
        #expect(try store.verifyArchives(dir: dir).intact)
    }
}

