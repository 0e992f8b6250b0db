import Foundation
import Logging
import OutlawConfig
import OutlawProtocol
import OutlawStore
import ServiceLifecycle
import Synchronization
import Systemd

/// Runs retention (`Store.runRetention`) at start and then once a day: finished events older than
/// `[retention] keep_finished_days` leave the live store for archive files, each vouched for by an audit row. A run is
/// blocking store work on the blocking pool, in small transactions with rests between them, so the batch writer's
/// commits never wait long; each run is one journal line. `[retention]` is read again before each run, so a reload
/// applies at the next one. A stop ends a run between two transactions; the next run goes on from there.
final class RetentionService: Service, Sendable {
    let store: Store
    /// `[retention]`, which a reload replaces.
    let settings: Reloadable<DaemonConfiguration.Retention>
    /// The store's path: the archives' default folder is beside it.
    let storePath: String
    let logger: Logger
    /// The time of day for the cutoff; the waits are on the `Clock` ``run(clock:)`` is given.
    let wallClock: @Sendable () -> Date
    let interval: Duration
    /// Called after each step of a run (tests stop the daemon there: `testPause(_:)`).
    let pause: @Sendable (RetentionStep) -> Void

    init(store: Store, settings: Reloadable<DaemonConfiguration.Retention>, storePath: String, logger: Logger,
         wallClock: @escaping @Sendable () -> Date = Date.init, interval: Duration = .seconds(24 * 3600),
         pause: @escaping @Sendable (RetentionStep) -> Void = { _ in })
    {
        self.store = store
        self.settings = settings
        self.storePath = storePath
        self.logger = logger
        self.wallClock = wallClock
        self.interval = interval
        self.pause = pause
    }

    func run() async throws {
        await run(clock: ContinuousClock())
    }

    /// A run now and one every `interval` on `clock`; ends at once on graceful shutdown or cancellation (a run going on
    /// stops after its current transaction).
    func run<C: Clock>(clock: C) async where C.Duration == Duration {
        await cancelWhenGracefulShutdown {
            await clock.every(self.interval) { _ = await self.runOnce() }
        }
    }

    /// One run on the blocking pool, then its journal line; nil when it failed (said in an error line).
    func runOnce() async -> RetentionReport? {
        let settings = self.settings.value
        let options = Self.options(settings, storePath: storePath)
        let folder = options.archiveDir
        let (store, now, pause, logger) = (self.store, wallClock(), self.pause, self.logger)
        let stop = StopFlag()
        let started = ContinuousClock.now
        let report: RetentionReport
        do {
            report = try await withTaskCancellationHandler {
                try await Blocking.run {
                    try store.runRetention(options, now: now, pause: pause, shouldStop: { stop.isSet }) { record, report in
                        // A first run over years of history takes its hours: one line per archive (at most 50,000
                        // events) shows it going, where the run's own line comes only at its end.
                        logger.info("retention archived \(record.file): \(record.events) events; this run so far \(report.eventsArchived) events in \(report.archives.count) archives",
                                    metadata: ["archive": "\(record.file)", "archived_events": "\(report.eventsArchived)",
                                               "deleted_events": "\(report.eventsDeleted)"])
                    }
                }
            } onCancel: {
                stop.set()
            }
        } catch {
            logger.error("retention run failed: \(error); the next run is in a day (or at the next start)",
                         metadata: MessageID.retentionFailed.metadata(["archive_dir": "\(folder)"]))
            return nil
        }
        let seconds = Double((ContinuousClock.now - started).components.seconds) + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
        logger.notice(settings.keepFinishedDays == 0 ? "retention run (retention is off: keep_finished_days = 0)" : "retention run",
                      metadata: MessageID.retentionRun.metadata([
                          "archived_events": "\(report.eventsArchived)", "archived_batches": "\(report.batchesArchived)",
                          "archives": "\(report.archives.map(\.file).joined(separator: ","))",
                          "deleted_events": "\(report.eventsDeleted)", "deleted_batches": "\(report.batchesDeleted)",
                          "deleted_attempts": "\(report.attemptsDeleted)",
                          "completed": "\(report.completed.joined(separator: ","))", "discarded": "\(report.discarded.joined(separator: ","))",
                          "keep_finished_days": "\(settings.keepFinishedDays)", "archive_dir": "\(folder)",
                          "cutoff": "\(report.cutoff.map(Timestamp.format) ?? "none")", "stopped": "\(report.stopped)",
                          "seconds": "\(String(format: "%.2f", seconds))",
                      ]))
        if !report.kept.isEmpty {
            logger.warning("retention left \(report.kept.count) archived batches in the live store: \(report.kept.prefix(20).joined(separator: "; "))",
                           metadata: MessageID.retentionKeptBatches.metadata(["archive_dir": "\(folder)"]))
        }
        return report
    }

    /// What a run with these `[retention]` settings is asked to do.
    static func options(_ settings: DaemonConfiguration.Retention, storePath: String) -> RetentionOptions {
        var options = RetentionOptions(keepFinishedDays: settings.keepFinishedDays, archiveDir: settings.archiveFolder(storePath: storePath))
        options.idlePriority = settings.idlePriority
        return options
    }

    /// The test hook behind `OUTLAWD_TEST_RETENTION_PAUSE=STEP`: after that step of a run, one line on stderr and the run
    /// waits for good, so an end-to-end test can kill -9 the daemon exactly there and prove the restart completes or
    /// discards the step. Unset (always, outside tests), nothing waits.
    static func testPause(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> @Sendable (RetentionStep) -> Void {
        guard let wanted = environment["OUTLAWD_TEST_RETENTION_PAUSE"].flatMap(RetentionStep.init(rawValue:)) else { return { _ in } }
        return { step in
            guard step == wanted else { return }
            FileHandle.standardError.write(Data("outlawd test hook: retention paused after \(step.rawValue)\n".utf8))
            while true { sleep(3600) }
        }
    }
}

/// Set once when the task running a retention run is cancelled; the run looks between two transactions.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
