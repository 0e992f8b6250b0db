import Foundation
import Logging
import OutlawConfig
import OutlawProtocol
import OutlawStore
import ServiceLifecycle

/// Takes the `[backup]` copies: at start when the newest copy in `dir` is older than `interval_hours` (or there is
/// none), then every interval after the newest. Each is `Store.backup` (one snapshot, checked) on a thread of its own
/// at the lowest CPU priority (`LowPriority`), then an audit row `store.backup`, the oldest copies beyond `keep` deleted,
/// and one notice; a failure is an error line
/// and is tried again one interval later. A reload's settings are read again before each wait, and each wait lasts
/// at most `recheck`, so a reload takes effect within a minute.
final class BackupService: Service, Sendable {
    let store: Store
    /// `[backup]`, which a reload replaces.
    let settings: Reloadable<DaemonConfiguration.Backup>
    let logger: Logger
    /// The time of day, for names and for the copies' ages; the waits are on the `Clock` ``run(clock:)`` is given.
    let wallClock: @Sendable () -> Date
    /// The longest wait before the settings are read again.
    let recheck: Duration

    init(store: Store, settings: Reloadable<DaemonConfiguration.Backup>, logger: Logger,
         wallClock: @escaping @Sendable () -> Date = Date.init, recheck: Duration = .seconds(60))
    {
        self.store = store
        self.settings = settings
        self.logger = logger
        self.wallClock = wallClock
        self.recheck = recheck
    }

    func run() async throws {
        await run(clock: ContinuousClock())
    }

    /// The schedule on `clock`; ends at once on graceful shutdown or cancellation (a copy being taken is finished).
    func run<C: Clock>(clock: C) async where C.Duration == Duration {
        await cancelWhenGracefulShutdown {
            await self.schedule(clock: clock)
        }
    }

    func schedule<C: Clock>(clock: C) async where C.Duration == Duration {
        var lastAttempt: (dir: String, at: Date)?
        var announced: DaemonConfiguration.Backup?
        while !Task.isCancelled {
            let settings = self.settings.value
            if settings != announced {
                announce(settings)
                announced = settings
            }
            var wait = recheck
            if let dir = settings.dir {
                let now = wallClock()
                // A folder not there yet has no copies; one that cannot be read makes the copy fail and say why.
                let names = (try? await Blocking.run { try FileManager.default.contentsOfDirectory(atPath: dir) }) ?? []
                let due = BackupSchedule.due(newest: BackupSchedule.newest(in: names, now: now),
                                             lastAttempt: lastAttempt?.dir == dir ? lastAttempt?.at : nil,
                                             interval: settings.intervalHours * 3600, now: now)
                if due <= now {
                    await take(into: dir, keep: settings.keep, intervalHours: settings.intervalHours, idle: settings.idlePriority, at: now)
                    lastAttempt = (dir, now)
                    continue
                }
                wait = min(recheck, .seconds(due.timeIntervalSince(now)))
            }
            do {
                try await clock.sleep(until: clock.now.advanced(by: wait), tolerance: nil)
            } catch {
                return
            }
        }
    }

    func announce(_ settings: DaemonConfiguration.Backup) {
        guard let dir = settings.dir else {
            logger.info("the daemon takes no backups ([backup] dir is empty)")
            return
        }
        logger.info("backups every \(Self.hours(settings.intervalHours)) h into \(dir), the newest \(settings.keep) kept",
                    metadata: ["backup_dir": "\(dir)"])
    }

    /// What one copy did besides the copy itself.
    struct Outcome: Sendable {
        var report: BackupReport
        var auditError: String?
        var removed: [String] = []
        var notRemoved: [String] = []
    }

    /// Runs `work` on a `SCHED_IDLE` thread of its own (`LowPriority`), or on the blocking pool when `[backup]
    /// idle_priority` is false: there it takes its share of a core even when no core is ever idle.
    static func offCommitPath<T: Sendable>(idle: Bool, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        idle ? try await LowPriority.run(work) : try await Blocking.run(work)
    }

    /// One copy into `dir` (on a low-priority thread of its own unless `idle` is false), its audit row (on the blocking
    /// pool: it takes the store's writer, which no low-priority thread may hold), the pruning, then the journal lines.
    func take(into dir: String, keep: Int, intervalHours: Double, idle: Bool = true, at now: Date) async {
        let path = (dir.hasSuffix("/") ? dir : dir + "/") + BackupSchedule.fileName(at: now)
        let store = self.store
        let outcome: Outcome
        do {
            let report = try await Self.offCommitPath(idle: idle) { try store.backup(to: path) }
            let recorded = try await Blocking.run { Self.record(report, in: store) }
            outcome = try await Self.offCommitPath(idle: idle) { Self.prune(dir, keep: keep, after: recorded) }
        } catch {
            logger.error("backup failed: \(error); the next try is in \(Self.hours(intervalHours)) h",
                         metadata: MessageID.backupFailed.metadata(["path": "\(path)", "backup_dir": "\(dir)"]))
            return
        }
        let report = outcome.report
        logger.notice("store backed up", metadata: MessageID.backupTaken.metadata([
            "path": "\(report.path)", "bytes": "\(report.bytes)", "seconds": "\(String(format: "%.2f", report.seconds))",
            "audit_head_id": "\(report.auditHead.map { "\($0.id)" } ?? "none")",
            "audit_head_hash": "\(report.auditHead?.hex ?? "none")", "removed": "\(outcome.removed.count)",
        ]))
        if let problem = outcome.auditError {
            logger.error("cannot write the store.backup audit row of \(report.path): \(problem)",
                         metadata: MessageID.backupAuditNotRecorded.metadata(["path": "\(report.path)"]))
        }
        if !outcome.notRemoved.isEmpty {
            logger.warning("cannot delete old backups: \(outcome.notRemoved.joined(separator: "; "))",
                           metadata: MessageID.backupsNotPruned.metadata(["backup_dir": "\(dir)"]))
        }
    }

    /// After a copy (`Store.backup`, which refuses an existing file and a store with keys in clear): its audit row.
    static func record(_ report: BackupReport, in store: Store) -> Outcome {
        var outcome = Outcome(report: report)
        do {
            try store.audit(actor: "outlawd", action: .storeBackup, subject: report.path, detail: Self.detail(report))
        } catch {
            outcome.auditError = "\(error)"
        }
        return outcome
    }

    /// Then the daemon's copies beyond `keep` and its unfinished ones deleted, each a step at a time
    /// (`Store.removeGradually`). Nothing is deleted when the copy failed.
    static func prune(_ dir: String, keep: Int, after recorded: Outcome) -> Outcome {
        var outcome = recorded
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: dir)
        } catch {
            outcome.notRemoved.append("\(dir): \(error.localizedDescription)")
            return outcome
        }
        for name in BackupSchedule.beyond(keep: keep, in: names) + BackupSchedule.leftovers(in: names) {
            let file = (dir.hasSuffix("/") ? dir : dir + "/") + name
            do {
                try Store.removeGradually(file)
                outcome.removed.append(file)
            } catch {
                outcome.notRemoved.append("\(error)")
            }
        }
        return outcome
    }

    /// The `store.backup` audit row's detail, as `outlawctl backup` writes it (BackupCommand.detail).
    static func detail(_ report: BackupReport) -> String {
        "\(report.bytes) bytes; audit head \(report.auditHead.map { "\($0.id) \($0.hex)" } ?? "none"); schema \(report.schema)"
    }

    /// Hours as said in a log line: "24", "0.0005".
    static func hours(_ hours: Double) -> String {
        hours == hours.rounded() && abs(hours) < 1e15 ? String(Int(hours)) : String(hours)
    }
}
