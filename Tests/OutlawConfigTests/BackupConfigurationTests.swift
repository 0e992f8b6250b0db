import Foundation
import Testing
@testable import OutlawConfig

@Suite("[backup] configuration", .timeLimit(.minutes(1)))
struct BackupConfigurationTests {
    func parse(_ text: String) throws(ConfigError) -> DaemonConfiguration {
        try DaemonConfiguration.parse(text, file: "/etc/outlawd/outlawd.toml", relativeTo: "/etc/outlawd")
    }

    @Test func offByDefault() throws {
        let backup = try parse("").backup
        #expect(backup.dir == nil && backup.intervalHours == 24 && backup.keep == 7 && backup.idlePriority)
        #expect(try parse("[backup]").backup == backup)
        // "" spelt out is the default: no backups, whatever else the table says.
        #expect(try parse("[backup]\ndir = \"\"\nkeep = 3").backup.dir == nil)
    }

    @Test func valuesAndFractionsOfAnHour() throws {
        let backup = try parse("[backup]\ndir = \"/var/lib/outlawd/backups\"\ninterval_hours = 6\nkeep = 30").backup
        #expect(backup.dir == "/var/lib/outlawd/backups" && backup.intervalHours == 6 && backup.keep == 30)
        // Fractions are for tests: 0.0005 h is 1.8 s.
        #expect(try parse("[backup]\ninterval_hours = 0.0005").backup.intervalHours == 0.0005)
        #expect(try parse("[backup]\nkeep = 1").backup.keep == 1)
        #expect(try parse("[backup]\nidle_priority = false").backup.idlePriority == false)
    }

    @Test func aRelativeFolderFollowsTheConfigFileAsOtherPathsDo() throws {
        let config = try parse("[store]\npath = \"state/outlawd.sqlite\"\n[backup]\ndir = \"state/backups\"")
        #expect(config.store.path == "/etc/outlawd/state/outlawd.sqlite")
        #expect(config.backup.dir == "/etc/outlawd/state/backups")
        #expect(try parse("[backup]\ndir = \"../backups/\"").backup.dir == "/etc/backups")
        #expect(try parse("[backup]\ndir = \"/srv/backups/\"").backup.dir == "/srv/backups")
    }

    @Test(arguments: [
        ("[backup]\ninterval_hours = 0", "backup.interval_hours", "must be greater than 0"),
        ("[backup]\ninterval_hours = -1", "backup.interval_hours", "must be greater than 0"),
        ("[backup]\ninterval_hours = \"daily\"", "backup.interval_hours", "must be a number"),
        ("[backup]\nkeep = 0", "backup.keep", "must be from 1 to 10000, not 0"),
        ("[backup]\nkeep = 2.5", "backup.keep", "must be a whole number"),
        ("[backup]\ndir = 5", "backup.dir", "must be a string in quotes"),
        ("[backup]\ndir = false", "backup.dir", "must be a string in quotes"),
        ("[backup]\nidle_priority = 0", "backup.idle_priority", "must be true or false"),
        ("[backup]\ndirectory = \"/srv\"", "backup.directory", "unknown key (known here: dir, idle_priority, interval_hours, keep)"),
        ("backup = \"/srv\"", "backup", "must be a table ([backup])"),
    ])
    func badValuesNameTheKey(text: String, key: String, problem: String) {
        #expect(throws: ConfigError(file: "/etc/outlawd/outlawd.toml", key: key, problem: problem)) { try parse(text) }
    }

    @Test func aReloadAppliesEveryBackupSetting() throws {
        let plan = DaemonConfiguration.reloadPlan(
            from: try parse(""), to: try parse("[backup]\ndir = \"/srv/backups\"\ninterval_hours = 1\nkeep = 2\nidle_priority = false"), uploadsRunning: true)
        #expect(plan == ReloadPlan(applied: ["backup.dir", "backup.idle_priority", "backup.interval_hours", "backup.keep"]))
        // Turning them off again applies too.
        #expect(DaemonConfiguration.reloadPlan(from: try parse("[backup]\ndir = \"/srv/backups\""), to: try parse(""), uploadsRunning: true)
            == ReloadPlan(applied: ["backup.dir"]))
    }
}

/// `BackupSchedule`: the daemon's backup names, when the next copy is due, and which copies it deletes.
@Suite("Backup schedule", .timeLimit(.minutes(1)))
struct BackupScheduleTests {
    /// 2026-12-05 03:15:00 UTC.
    let t0 = Date(timeIntervalSince1970: 1_796_440_500)
    let day: TimeInterval = 86_400

    @Test func namesAreTheUTCSecondAndReadBack() throws {
        #expect(BackupSchedule.fileName(at: t0) == "outlawd-20261205T031500Z.sqlite")
        // Fractions of a second are dropped; the name reads back as its whole second.
        let late = t0.addingTimeInterval(59.9)
        #expect(BackupSchedule.fileName(at: late) == "outlawd-20261205T031559Z.sqlite")
        #expect(BackupSchedule.time(of: "outlawd-20261205T031559Z.sqlite") == t0.addingTimeInterval(59))
        #expect(BackupSchedule.time(of: "outlawd-00010101T000000Z.sqlite") != nil)
        // Names sort as their times.
        let names = (0..<5).map { BackupSchedule.fileName(at: t0.addingTimeInterval(Double($0) * 40_000)) }
        #expect(names.sorted() == names)
    }

    @Test(arguments: [
        "outlawd-2026-12-05.sqlite",  // the operator's own copies (docs: outlawd-$(date +%F).sqlite)
        "outlawd.sqlite", "outlawd-20261205T031500Z.sqlite.partial", "outlawd-20261205T031500Z.sqlite-wal",
        "outlawd-20261205T031500.sqlite", "outlawd-20261205031500Z.sqlite", "xoutlawd-20261205T031500Z.sqlite",
        "outlawd-2026120xT031500Z.sqlite", "outlawd-20261340T031500Z.sqlite", "outlawd-20261205T256000Z.sqlite",
        "outlawd-20261205T031500Z.db", "outlawd-+2026125T031500Z.sqlite", "outlawd-٢٠٢٦1205T031500Z.sqlite",
    ])
    func otherNamesAreNotTheDaemons(name: String) {
        #expect(BackupSchedule.time(of: name) == nil)
    }

    @Test func theFirstCopyIsDueAtOnceThenOneIntervalAfterTheNewest() {
        // No copy yet: due now.
        #expect(BackupSchedule.due(newest: nil, lastAttempt: nil, interval: day, now: t0) == t0)
        // A restart 5 h after the last copy: due 19 h from now, not 24 (a restart never postpones a copy).
        let now = t0.addingTimeInterval(5 * 3600)
        #expect(BackupSchedule.due(newest: t0, lastAttempt: nil, interval: day, now: now) == t0.addingTimeInterval(day))
        // A copy older than the interval (the daemon was stopped for two days): due at once (in the past).
        #expect(BackupSchedule.due(newest: t0, lastAttempt: nil, interval: day, now: t0.addingTimeInterval(2 * day)) <= t0.addingTimeInterval(2 * day))
        // A shorter interval after a reload applies to the newest copy.
        #expect(BackupSchedule.due(newest: t0, lastAttempt: nil, interval: 3600, now: now) == t0.addingTimeInterval(3600))
    }

    @Test func aFailedCopyIsTriedAgainOneIntervalLater() {
        // The copy at t0 failed, so the newest copy is a day older: due by the files, but not before t0 + interval.
        let old = t0.addingTimeInterval(-day)
        #expect(BackupSchedule.due(newest: old, lastAttempt: t0, interval: day, now: t0.addingTimeInterval(1)) == t0.addingTimeInterval(day))
        #expect(BackupSchedule.due(newest: nil, lastAttempt: t0, interval: 3600, now: t0.addingTimeInterval(10)) == t0.addingTimeInterval(3600))
        // A last try dated after now (the clock was set back) counts as now: never a wait longer than one interval.
        #expect(BackupSchedule.due(newest: nil, lastAttempt: t0.addingTimeInterval(day * 30), interval: 3600, now: t0)
            == t0.addingTimeInterval(3600))
    }

    @Test func copiesDatedInTheFutureDoNotPostponeTheNext() {
        let names = [BackupSchedule.fileName(at: t0), BackupSchedule.fileName(at: t0.addingTimeInterval(365 * day)), "outlawd-manual.sqlite"]
        let now = t0.addingTimeInterval(day + 1)
        #expect(BackupSchedule.newest(in: names, now: now) == t0)
        #expect(BackupSchedule.due(newest: BackupSchedule.newest(in: names, now: now), lastAttempt: nil, interval: day, now: now) < now)
        #expect(BackupSchedule.newest(in: ["outlawd-2026-12-05.sqlite"], now: now) == nil)
    }

    @Test func theOldestOwnCopiesBeyondKeepAreDeletedAndNothingElse() {
        let own = (0..<5).map { BackupSchedule.fileName(at: t0.addingTimeInterval(Double($0) * day)) }
        let others = ["outlawd.sqlite", "outlawd-2026-12-05.sqlite", "outlawd-before-upgrade.sqlite", "notes.txt",
                      own[0] + ".partial", own[1] + "-wal"]
        // Listed in any order.
        let listing = (others + own).shuffled()
        #expect(BackupSchedule.beyond(keep: 2, in: listing) == Array(own[0..<3]))
        #expect(BackupSchedule.beyond(keep: 1, in: listing) == Array(own[0..<4]))
        #expect(BackupSchedule.beyond(keep: 5, in: listing) == [])
        #expect(BackupSchedule.beyond(keep: 7, in: listing) == [])
        #expect(BackupSchedule.beyond(keep: 2, in: others) == [])
        // A copy a crash left unfinished, of the daemon's own name, goes too; no other partial file does.
        #expect(BackupSchedule.leftovers(in: listing) == [own[0] + ".partial"])
        #expect(BackupSchedule.leftovers(in: ["outlawd-manual.sqlite.partial", "x.partial"]) == [])
    }
}
