import Foundation
import Logging
import MetrcSandbox
import OutlawStore
import OutlawTestSupport

/// The figures of `retention`: the paced load on a store with an old history, retention off, then during the first
/// retention run that archives that history, on the same store and machine.
struct RetentionFigures: Sendable {
    var seeded = 0
    var seedSeconds = 0.0
    var pacedOff: IngestFigures?
    var pacedDuring: IngestFigures?
    /// Retention off again once the run has ended: with `pacedOff`, the two bracket the run. A daemon's second paced
    /// run on the same store was slower than its first with retention off in both (12-06: p99 7.1-7.4 against
    /// 4.9-8.2 ms), so one run before alone would count that drift as retention's.
    var pacedAfter: IngestFigures?
    /// The run had not finished when the paced run during it ended: every measured batch shared the store with it.
    var runCoveredPaced = false
    var runSeconds: Double?
    var archivedEvents: Int?
    var deletedEvents: Int?
    var archiveBytes = 0
}

enum RetentionBench {
    static func run(_ options: BenchOptions) async throws -> RetentionFigures {
        var figures = RetentionFigures(seeded: options.retentionEvents)
        let dir = try TempDirectory("outlawd-bench-retention")
        let path = dir.file("state/outlawd.sqlite")
        let prepared = try StoreSeed.prepare(path: path, users: ["jane", "john"],
                                             devices: (0..<options.pacedHandhelds).map { String(format: "HH-%03d", $0) }, paused: true)
        let deviceIDs = prepared.tokens.compactMap { prepared.deviceIDs[$0.name] }
        log("retention: seeding \(BacklogShape.grouped(options.retentionEvents)) finished events 401 to 500 days old")
        // Past the default 400 days: the daemon's first run archives all of them.
        figures.seedSeconds = try StoreSeed.history(path: path, count: options.retentionEvents, deviceIDs: deviceIDs,
                                                    jane: prepared.userIDs["jane"] ?? 1, john: prepared.userIDs["john"] ?? 2,
                                                    now: Date(), days: 99, agedDays: 401)

        var state = SandboxState.demo()
        _ = try state.seed(license: EventMix.license, plants: options.plants, packages: options.packages, now: Date())
        var logger = Logger(label: "outlawd-bench.retention")
        logger.logLevel = .warning
        let sandbox = MetrcSandboxServer(state: state, configuration: SandboxConfiguration(rateLimits: .unlimited), logger: logger)
        try await sandbox.start()
        try dir.write("secrets/vendor-key", SandboxDemo.vendorKey)
        try dir.write("secrets/default-key", SandboxDemo.ownerKey)
        // One store key for both daemons (DaemonProcess would write a new one for each).
        try dir.write("secrets/store-key", (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined())
        let metrc = IngestDaemon.metrcSettings(sandbox.baseURL)
        func daemon(retention: String) async throws -> DaemonProcess {
            settleDisk()
            return try await DaemonProcess(server: "max_unauthenticated_per_address = 1024", store: "key_file = \"secrets/store-key\"",
                                           metrc: metrc, retention: retention, directory: dir)
        }
        let reader = try Store(path: path, pinRounds: 10_000, opening: .currentSchemaOnly)

        /// A daemon with `retention` that has synced its reference data, and the paced load through it (nil: it failed,
        /// said in a line). The daemon is left running for the caller to stop.
        func pacedRun(_ label: String, retention: String, idPrefix: String) async throws -> (DaemonProcess, IngestFigures?) {
            let daemon = try await daemon(retention: retention)
            try await IngestDaemon.waitForReferenceSync(reader, daemon: daemon)
            do {
                let figures = try await IngestBench.run(IngestDaemon(daemon: daemon, devices: prepared.tokens), label: "paced, \(label)",
                                                        template: .paced(options, eventsPerSecond: options.pacedRate, idPrefix: idPrefix),
                                                        handhelds: options.pacedHandhelds)
                return (daemon, figures)
            } catch {
                log("retention: paced run, \(label), failed: \(error)")
                return (daemon, nil)
            }
        }

        log("retention: paced \(options.pacedHandhelds) handhelds × \(options.pacedRate) events/s, retention off")
        let (off, offFigures) = try await pacedRun("retention off", retention: "keep_finished_days = 0", idPrefix: "retention-off")
        figures.pacedOff = offFigures
        await off.stop()

        log("retention: the same load during the first retention run (keep_finished_days = 400)")
        let (on, onFigures) = try await pacedRun("retention running", retention: "", idPrefix: "retention-on")
        figures.pacedDuring = onFigures
        figures.runCoveredPaced = runLine(on.log) == nil
        if let line = try await eventually(timeout: .seconds(3600), every: .milliseconds(200), { runLine(on.log) }) {
            figures.runSeconds = field("seconds", in: line).flatMap(Double.init)
            figures.archivedEvents = field("archived_events", in: line).flatMap { Int($0) }
            figures.deletedEvents = field("deleted_events", in: line).flatMap { Int($0) }
        } else {
            log("retention: the first run did not finish within an hour")
        }
        await on.stop()

        log("retention: the same load again with retention off, after the run")
        let (after, afterFigures) = try await pacedRun("retention off after", retention: "keep_finished_days = 0", idPrefix: "retention-after")
        figures.pacedAfter = afterFigures
        await after.stop()
        try await sandbox.shutdown()
        figures.archiveBytes = folderBytes(dir.file("state/archives"))
        return figures
    }

    /// The notice of a finished retention run (not the start's "retention is off" one), from the daemon's stderr.
    static func runLine(_ log: String) -> String? {
        log.split(separator: "\n").first { $0.contains("retention run ") && $0.contains("archived_events=") }.map(String.init)
    }

    /// `key=value` from a stderr log line (StderrLogHandler's format; these values have no spaces).
    static func field(_ key: String, in line: String) -> String? {
        guard let range = line.range(of: " \(key)=") else { return nil }
        return String(line[range.upperBound...].prefix { !$0.isWhitespace && $0 != "\"" })
    }

    static func folderBytes(_ path: String) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: path + "/" + name)[.size] as? Int) ?? 0)
        }
    }
}
