import Foundation
import Logging
import MetrcSandbox
import OutlawTestSupport

/// The whole benchmark: each part in turn, then one table (and the doc section).
enum Bench {
    static func run(_ options: BenchOptions) async throws {
        if options.parts.contains(.sandboxWrites) { _ = try await SandboxWriteBench.run() }
        if options.parts.isSubset(of: [.sandboxWrites]) { return }
        let configuration = URL(fileURLWithPath: Binaries.buildDirectory).lastPathComponent
        for tool in ["outlawd", "outlawctl"] where !Binaries.exists(tool) {
            throw BenchError("\(Binaries.path(tool)) is missing: build it in the same configuration (scripts/bench does)")
        }
        var report = BenchReport(options: options, machine: .current(), configuration: configuration, startedAt: Date())
        log("\(configuration) build in \(Binaries.buildDirectory); \(report.machine.summary)")

        if !options.parts.isDisjoint(with: [.flat, .paced, .backup]) {
            try await ingest(options, into: &report)
        }
        if options.parts.contains(.drain) {
            settleDisk()
            log("upload drain: \(options.drainEvents) events, \(options.drainUsers) users, \(options.drainTags) tags, +\(options.drainLatencyMs) ms a write")
            do {
                report.drain = try await DrainBench.run(events: options.drainEvents, users: options.drainUsers, tags: options.drainTags,
                                                        latencyMs: options.drainLatencyMs, concurrency: options.drainConcurrency,
                                                        objectsPerRequest: options.drainObjects)
            } catch {
                report.failures.append("upload drain failed: \(error)")
                log("upload drain failed: \(error)")
            }
        }
        if options.parts.contains(.reference) {
            settleDisk()
            log("reference sync: \(options.plants) plants, \(options.packages) packages, default GET limits")
            do {
                report.reference = try await ReferenceBench.run(plants: options.plants, packages: options.packages)
                if let r = report.reference {
                    for k in r.kinds where k.requests > 1 {
                        log("  \(k.kind): \(k.requests) requests, \(k.fetched) records, " + String(format: "%.2f s", k.seconds))
                    }
                }
            } catch {
                report.failures.append("reference sync failed: \(error)")
                log("reference sync failed: \(error)")
            }
        }
        if options.parts.contains(.console) {
            settleDisk()
            do {
                let console = try await ConsoleBench.run(options)
                print(console.printed)
            } catch {
                report.failures.append("console part failed: \(error)")
                log("console part failed: \(error)")
            }
        }
        // Backlogs, chains and the store at size: each with a daemon, a store and (for drains) a sandbox process of its own.
        await BacklogBench.runParts(options, into: &report)

        print(report.printed)
        if let doc = options.doc {
            try report.write(to: doc)
            print("figures added to \(doc)")
        }
    }

    /// Flat out, then the raw SQLite baseline at once, then light and paced: two fresh daemons (peak memory is
    /// a high-water mark, so the paced daemon never saw the flat-out load), one seeded sandbox for both.
    static func ingest(_ options: BenchOptions, into report: inout BenchReport) async throws {
        var state = SandboxState.demo()
        let seeded = try state.seed(license: EventMix.license, plants: options.plants, packages: options.packages, now: Date())
        guard seeded.plantLabels.first == EventMix.seededPlantTag(0), seeded.plantLabels.last == EventMix.seededPlantTag(options.plants - 1),
              seeded.packageLabels.first == EventMix.seededPackageTag(0) else {
            throw BenchError("the sandbox's seed tags are not the ones the handhelds name (\(seeded.plantLabels.first ?? "-"))")
        }
        var logger = Logger(label: "outlawd-bench.sandbox")
        logger.logLevel = .warning
        let sandbox = MetrcSandboxServer(state: state, configuration: SandboxConfiguration(rateLimits: .unlimited), logger: logger)
        try await sandbox.start()

        var template = HandheldPlan()
        template.seconds = options.seconds
        template.plants = options.plants
        template.packages = options.packages
        template.window = options.window
        template.warmup = options.warmup

        if options.parts.contains(.flat) {
            settleDisk()
            let rig = try await IngestDaemon.start(sandbox: sandbox, deviceCount: options.handhelds, label: "flat",
                                                  metrics: options.metrics)
            var plan = template
            plan.mode = .flat
            plan.eventsPerBatch = options.eventsPerBatch
            plan.idPrefix = "flat"
            log("flat out: \(options.handhelds) handhelds × \(options.eventsPerBatch)-event batches, window \(options.window), \(report.fmt(options.seconds)) s")
            do {
                report.flat = try await IngestBench.run(rig, label: "flat-out", template: plan, handhelds: options.handhelds)
            } catch {
                report.failures.append("flat-out run failed: \(error)")
            }
            await rig.stop()
        }
        if options.parts.contains(.baseline) {
            // As many events as the daemon took in, at most as long as its run (and at least 20 batches).
            let target = max(20 * options.eventsPerBatch, report.flat?.ackedEvents ?? Int(options.seconds * 20_000))
            settleDisk()
            log("raw SQLite baseline: up to \(target) events, at most \(report.fmt(options.seconds)) s")
            do {
                report.baseline = try Baseline.run(handhelds: options.handhelds, eventsPerBatch: options.eventsPerBatch, targetEvents: target,
                                                   maxSeconds: options.seconds, plants: options.plants, packages: options.packages)
            } catch {
                report.failures.append("raw SQLite baseline failed: \(error)")
            }
        }
        if !options.parts.isDisjoint(with: [.paced, .backup]) {
            settleDisk()
            let rig = try await IngestDaemon.start(sandbox: sandbox, deviceCount: options.pacedHandhelds, label: "paced",
                                                  metrics: options.metrics)
            var plan = template
            plan.mode = .paced
            plan.eventsPerBatch = options.pacedEventsPerBatch
            do {
                plan.batchesPerSecond = Double(options.lightRate) / Double(options.pacedEventsPerBatch)
                plan.idPrefix = "light"
                log("light: \(options.pacedHandhelds) handhelds × \(options.lightRate) events/s, \(report.fmt(options.seconds)) s")
                report.light = try await IngestBench.run(rig, label: "light", template: plan, handhelds: options.pacedHandhelds)
                report.pacedRSSAfterLight = report.light?.peakRSS
                plan.batchesPerSecond = Double(options.pacedRate) / Double(options.pacedEventsPerBatch)
                plan.idPrefix = "paced"
                log("paced: \(options.pacedHandhelds) handhelds × \(options.pacedRate) events/s, \(report.fmt(options.seconds)) s")
                report.paced = try await IngestBench.run(rig, label: "paced", template: plan, handhelds: options.pacedHandhelds)
            } catch {
                report.failures.append("paced run failed: \(error)")
            }
            if options.parts.contains(.backup) {
                // The same daemon and pace again, while outlawctl copies its store back to back the whole run.
                plan.idPrefix = "paced-backup"
                log("paced during back-to-back backups: \(options.pacedHandhelds) handhelds × \(options.pacedRate) events/s, \(report.fmt(options.seconds)) s")
                let backups = Task { try await BackupLoad.run(rig.daemon) }
                do {
                    report.pacedDuringBackups = try await IngestBench.run(rig, label: "paced during backups", template: plan,
                                                                          handhelds: options.pacedHandhelds)
                } catch {
                    report.failures.append("paced run during backups failed: \(error)")
                }
                backups.cancel()
                do {
                    report.backups = try await backups.value
                } catch {
                    report.failures.append("backups failed: \(error)")
                }
            }
            await rig.stop()
            // What one small durable transaction costs on this disk, right after: the floor under the paced ack times.
            settleDisk()
            log("raw SQLite, one \(options.pacedEventsPerBatch)-event batch a transaction, back to back: 5 s")
            do {
                report.pacedBaseline = try Baseline.run(handhelds: options.pacedHandhelds, eventsPerBatch: options.pacedEventsPerBatch,
                                                        targetEvents: .max, maxSeconds: 5, plants: options.plants, packages: options.packages)
            } catch {
                report.failures.append("raw SQLite small-transaction baseline failed: \(error)")
            }
        }
        try await sandbox.shutdown()
    }
}

/// Writes the machine's dirty pages out before a part starts: no part pays for the writeback of the one before
/// (the flat-out run leaves hundreds of megabytes behind), the raw-SQLite baselines included.
func settleDisk() {
    sync()
}
