import Foundation
import Logging
import OutlawConfig
@testable import OutlawDaemon
import OutlawStore
import OutlawTestSupport
import Synchronization
import Testing

/// `[backup]` with the real daemon: a copy at start, then one every interval, each checked and audited, the daemon's
/// oldest copies beyond `keep` deleted.
@Suite("Periodic backups by the running daemon", .serialized, .timeLimit(.minutes(3)))
struct PeriodicBackupTests {
    static func ownCopies(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { BackupSchedule.time(of: $0) != nil }.sorted()
    }

    @Test func theDaemonBacksItselfUpEveryIntervalKeepsTheNewestAndAuditsEachCopy() async throws {
        // 0.0005 h is 1.8 s: a fraction of an hour, as tests use. The [backup] table follows [metrics], the last one.
        let d = try await DaemonProcess(metrics: """
            listen = "127.0.0.1:0"
            [backup]
            dir = "backups"
            interval_hours = 0.0005
            keep = 2
            """)
        // The operator's own copy in the same folder: never counted, never deleted.
        let dir = d.directory.file("backups")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let manual = try d.directory.write("backups/outlawd-2026-12-05.sqlite", "the operator's own")
        try await d.whileRunning { d in
            try await eventually("the daemon's third backup", timeout: .seconds(90), every: .milliseconds(100),
                                 detail: { d.log.suffix(3000).description }) { () -> Bool? in
                d.log.components(separatedBy: "store backed up").count - 1 >= 3 ? true : nil
            }
        }
        // Stopped: no copy is being taken, so the folder is as the last one left it.
        let copies = try Self.ownCopies(dir)
        #expect(copies.count == 2, "\(copies)")
        #expect(FileManager.default.fileExists(atPath: manual))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".partial") } == [])
        for copy in copies {
            let verified = try await d.ctl(["verify-backup", dir + "/" + copy])
            #expect(verified.status == 0 && verified.stdout.contains("chain intact"), "\(copy): \(verified.stdout)\(verified.stderr)")
        }
        // Every copy has its store.backup row, written by outlawd in outlawctl's format; the newest two name the copies kept.
        let audit = try await d.ctl(["audit", "--json", "--limit", "200"])
        try #require(audit.status == 0, "\(audit.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]])
        let backups = rows.filter { $0["action"] as? String == "store.backup" }
        #expect(backups.count >= 3, "\(rows)")
        #expect(backups.allSatisfy { $0["actor"] as? String == "outlawd" })
        #expect(backups.allSatisfy { ($0["detail"] as? String)?.contains(" bytes; audit head ") == true }, "\(backups)")
        #expect(backups.prefix(2).compactMap { $0["subject"] as? String }.sorted() == copies.map { dir + "/" + $0 })
        // One notice per copy, with its fields.
        #expect(d.log.contains("audit_head_id="), "\(d.log.suffix(2000))")
    }
}

/// `BackupService`'s schedule on a `ManualClock`: when copies are taken, kept and tried again, step by step, with no
/// real time passing; its loop ends at once on cancellation.
@Suite("Backup service on a manual clock", .serialized, .timeLimit(.minutes(2)))
struct BackupServiceClockTests {
    /// 2026-12-05 03:15:00 UTC: the wall clock when the manual clock reads zero.
    static let t0 = Date(timeIntervalSince1970: 1_796_440_500)
    static let minute = 60
    static let hour = 3600

    /// The daemon's name for a copy taken `seconds` after t0.
    func name(_ seconds: Int) -> String { BackupSchedule.fileName(at: Self.t0.addingTimeInterval(TimeInterval(seconds))) }

    @Test func copiesOnScheduleKeepsTheNewestRetriesAFailureAnIntervalLaterAndStopsAtOnce() async throws {
        let (minute, hour) = (Self.minute, Self.hour)
        let temp = try TempDirectory("outlawd-backup-clock")
        let store = try await offload { try Store(path: temp.file("state/outlawd.sqlite"), pinRounds: 10_000) }
        let dir = temp.file("backups")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Copies from before the start: the daemon's own, 5 h old, and the operator's.
        _ = try temp.write("backups/" + name(-5 * hour), "an older copy")
        _ = try temp.write("backups/outlawd-before-upgrade.sqlite", "the operator's own")

        // Whole seconds only: the wall clock, and so the names, follow the manual clock exactly.
        let clock = ManualClock()
        let log = RecordedLog()
        var settings = DaemonConfiguration.Backup()
        (settings.dir, settings.intervalHours, settings.keep) = (dir, 24, 2)
        let setting = Reloadable(settings)
        let service = BackupService(store: store, settings: setting, logger: log.logger(),
                                    wallClock: { Self.t0.addingTimeInterval(TimeInterval(clock.now.offset.components.seconds)) },
                                    recheck: .seconds(minute))
        let run = Task { await service.run(clock: clock) }
        /// Moves the clock on, then waits until the service sleeps again (having done what was due).
        func step(_ seconds: Int) async {
            clock.advance(by: .seconds(seconds))
            await clock.waitForSleepers()
        }
        func own() throws -> [String] { try PeriodicBackupTests.ownCopies(dir) }

        // At start the newest copy is 5 h old: the next is due 19 h from now, not at once and not 24 h from now.
        await clock.waitForSleepers()
        #expect(try own() == [name(-5 * hour)])
        await step(19 * hour - minute)
        #expect(try own() == [name(-5 * hour)])
        await step(minute)
        #expect(try own() == [name(-5 * hour), name(19 * hour)])
        #expect(log.notices("store backed up") == 1)
        // A day later: a third copy, and the oldest goes (keep = 2); the operator's copy stays.
        await step(24 * hour)
        #expect(try own() == [name(19 * hour), name(43 * hour)])
        #expect(FileManager.default.fileExists(atPath: dir + "/outlawd-before-upgrade.sqlite"))
        let audited = try await offload { try store.auditEntries(limit: 50) }.filter { $0.action == "store.backup" }
        #expect(audited.compactMap(\.subject) == [dir + "/" + name(43 * hour), dir + "/" + name(19 * hour)])
        #expect(audited.allSatisfy { $0.actor == "outlawd" && ($0.detail ?? "").contains(" bytes; audit head ") })

        // A reload to a folder that cannot be made (a file is in the way) applies within `recheck`: that folder has no
        // copy, so one is tried at once and fails; it is tried again one interval later, not before.
        let blocked = try temp.write("not-a-folder", "")
        var elsewhere = settings
        elsewhere.dir = blocked
        setting.set(elsewhere)
        await step(minute)
        #expect(log.errors("backup failed") == 1)
        await step(23 * hour)
        #expect(log.errors("backup failed") == 1)
        await step(hour)
        #expect(log.errors("backup failed") == 2)
        // Back to the first folder, whose newest copy is now more than an interval old: a copy at once, taken on the
        // blocking pool this time (`idle_priority = false`, a reload too).
        settings.idlePriority = false
        setting.set(settings)
        await step(minute)
        #expect(try own() == [name(43 * hour), name(67 * hour + 2 * minute)])
        #expect(log.notices("store backed up") == 3)

        // Cancelled while it waits: the loop ends at once, with no time passing.
        run.cancel()
        await run.value
        #expect(clock.sleeperCount == 0)
    }

    /// `[backup] idle_priority`: a copy runs on a `SCHED_IDLE` thread by default; off (a box whose cores are never idle,
    /// where that thread would get about 0.1% of a core), on the blocking pool at the daemon's own priority.
    @Test func aCopyRunsOnAnIdleThreadUnlessTheSettingSaysOtherwise() async throws {
        let idle = try await BackupService.offCommitPath(idle: true) { LowPriority.currentSchedulingPolicy() }
        #expect(idle == LowPriority.idleSchedulingPolicy)
        let pool = try await BackupService.offCommitPath(idle: false) { (LowPriority.currentSchedulingPolicy(), LowPriority.currentNiceness()) }
        #expect(pool.0 != LowPriority.idleSchedulingPolicy && pool.1 < LowPriority.niceness)
    }
}
