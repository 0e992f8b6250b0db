import Foundation
import GRDB
import MetrcSandbox
import OutlawStore
import OutlawTestSupport

/// The figures of draining one stored backlog (`backlog-100k`, `backlog-1m`, `chains`).
struct BacklogFigures: Sendable {
    var label = ""
    var events = 0
    var tags = 0
    var users = 0
    var longestChain = 0
    var mix = ""
    var latencyMs = 0
    var concurrency = 0
    var objectsPerRequest = 0
    /// Building, validating and writing the backlog into the store.
    var seedSeconds = 0.0
    /// The events/s no uploader could beat here, and which limit sets it.
    var bound = 0.0
    var boundWhy = ""
    /// From the resume to the last backlog event finished (seen by polling every 200 ms).
    var seconds = 0.0
    /// From the resume to the first request recorded (the uploader looks at the pause setting once a second when idle).
    var pickupSeconds: Double?
    /// From the first request recorded to the last answer, by the daemon's own attempt times: the drain itself.
    var activeSeconds: Double?
    /// Uploaded ÷ `activeSeconds`: the rate the targets are about ("from first to last request").
    var eventsPerSecond = 0.0
    /// The last tenth of the backlog's uploads: from the answer that took the total past 90% to the last.
    var lastTenthPerSecond: Double?
    var uploaded = 0
    var failed = 0
    var left = 0
    var timedOut = false
    var requests = 0
    var meanObjects = 0.0
    var daemonCPU: Double?
    var sandboxCPU: Double?
    var peakRSS: Int?
    /// The paced ingest run during the drain (its events wait for review, so they add nothing to the drain).
    var ingest: IngestFigures?
    var firstFailure: String?

    var share: Double { bound > 0 ? eventsPerSecond / bound : 0 }
    var lastTenthShare: Double? { lastTenthPerSecond.map { bound > 0 ? $0 / bound : 0 } }
    var cpuPer1000: Double? { daemonCPU.map { uploaded > 0 ? $0 / Double(uploaded) * 1000 : 0 } }
}

/// A backlog stored straight into a fresh daemon's store with uploads paused, the sandbox (a process of its own,
/// every write 200 ms slower) holding every plant and package it names; then uploads resume and the bench
/// waits for the queue to empty, a paced ingest of new batches running at the same time.
enum BacklogBench {
    /// jane and john sign with their own keys; maria, omar and lena have none, so the Default key signs for them.
    static let users = ["jane", "john", "maria", "omar", "lena"]
    static let personalKeys = ["jane": SandboxDemo.janeKey, "john": SandboxDemo.johnKey]
    /// Metrc's GET limit per facility (the daemon's default budget and the sandbox's limit): each manicure's plant is
    /// read before it is sent.
    static let getsPerSecond = 50.0

    static func run(label: String, shape: BacklogShape, users: [String], options: BenchOptions, ingest: Bool) async throws -> BacklogFigures {
        let latency = Double(options.drainLatencyMs) / 1000
        var figures = BacklogFigures(label: label, events: shape.events.count, tags: shape.tags, users: users.count,
                                     longestChain: shape.longestChain, latencyMs: options.drainLatencyMs,
                                     concurrency: options.drainConcurrency, objectsPerRequest: options.drainObjects)
        figures.mix = shape.mix.sorted { $0.value > $1.value }.map { "\($0.key) \(BacklogShape.grouped($0.value))" }.joined(separator: ", ")
        (figures.bound, figures.boundWhy) = bound(shape, latency: latency, concurrency: options.drainConcurrency, objects: options.drainObjects)

        log("\(label): sandbox with \(options.plants + shape.plantTags) plants and \(options.packages + shape.packageTags) packages")
        let sandbox = try await SandboxProcess.start(plants: options.plants + shape.plantTags, packages: options.packages + shape.packageTags)

        let dir = try TempDirectory("outlawd-bench-backlog")
        try dir.write("secrets/vendor-key", SandboxDemo.vendorKey)
        try dir.write("secrets/default-key", SandboxDemo.ownerKey)
        let path = dir.file("state/outlawd.sqlite")
        let handhelds = ingest ? options.pacedHandhelds : 0
        let seedStarted = ContinuousClock.now
        let prepared = try StoreSeed.prepare(path: path, users: users,
                                             devices: (0..<handhelds).map { String(format: "HH-%03d", $0) } + ["HH-BACKLOG"], paused: true)
        let validator = StoreSeed.validator()
        let now = Date()
        let deviceID = prepared.deviceIDs["HH-BACKLOG"] ?? 1
        let lastID = try StoreSeed.writeQueued(count: shape.batchCount(), path: path) { b in
            let (user, line, receivedAt) = shape.batchLine(b, users: users, now: now.timeIntervalSince1970 - 60)
            let valid = try StoreSeed.validate(line, validator: validator, now: now)
            return StoreSeed.Batch(id: valid.id, deviceID: deviceID, userID: prepared.userIDs[user] ?? 1, license: valid.license,
                                   contentHash: Secrets.contentHash(valid.canonicalContent), receivedAt: receivedAt, events: valid.events)
        }
        figures.seedSeconds = since(seedStarted)
        log("\(label): \(BacklogShape.grouped(shape.events.count)) events over \(BacklogShape.grouped(shape.tags)) tags stored in "
            + String(format: "%.1f s", figures.seedSeconds) + "; bound \(Int(figures.bound)) events/s (\(figures.boundWhy))")

        // Ingest's batches (jane's and john's, from the handhelds) wait for review: the drain is the backlog's alone.
        let daemon = try await DaemonProcess(server: "max_unauthenticated_per_address = 1024", metrc: """
            base_url = "\(sandbox.baseURL)"
            vendor_key_file = "secrets/vendor-key"
            default_key_file = "secrets/default-key"
            concurrency = \(options.drainConcurrency)
            objects_per_request = \(options.drainObjects)
            reference_sync = false
            """, metrics: "listen = \"127.0.0.1:0\"\n[review]\nusers = [\"jane\", \"john\"]", directory: dir)
        for user in users {
            guard let key = personalKeys[user] else { continue }
            let set = try await daemon.ctl(["key", "set", user], stdin: key + "\n")
            guard set.status == 0 else { throw BenchError("outlawctl key set \(user) failed: \(set.stderr)") }
        }
        try await sandbox.delayWrites(milliseconds: options.drainLatencyMs)
        let store = try Store(path: path, pinRounds: 10_000, opening: .currentSchemaOnly)
        var readOnly = Configuration()
        readOnly.readonly = true
        let reader = try DatabaseQueue(path: path, configuration: readOnly)

        let rig = IngestDaemon(daemon: daemon, devices: prepared.tokens.filter { $0.name != "HH-BACKLOG" })
        let plan = HandheldPlan.paced(options, eventsPerSecond: options.lightRate, idPrefix: "drain-ingest")

        let daemonCPUBefore = ProcessFigures.cpuSeconds(pid: daemon.pid)
        let sandboxCPUBefore = sandbox.cpuSeconds()
        let resumedAt = Date().timeIntervalSince1970
        let started = ContinuousClock.now
        // What `outlawctl resume` does, from here so the clock starts exactly when uploads may go.
        try store.setUploadsPaused(false, actor: "outlawd-bench")
        let ingestTask: Task<IngestFigures, any Error>? = ingest
            ? Task { try await IngestBench.run(rig, label: "paced during \(label)", template: plan, handhelds: handhelds) } : nil

        let limit = max(120, Double(shape.events.count) / figures.bound * 10)
        var accepted = 0
        var lastAttempt: Int64 = 0
        var lastFullCheck = ContinuousClock.now
        while true {
            try await Task.sleep(for: .milliseconds(200))
            // Cheap: only the attempts answered since the last look.
            let (sum, maxID) = try acceptedSince(lastAttempt, reader)
            accepted += sum
            lastAttempt = maxID
            let timedOut = since(started) > limit
            guard accepted >= shape.events.count || since(lastFullCheck) > 5 || timedOut else { continue }
            lastFullCheck = ContinuousClock.now
            let left = try unfinished(upTo: lastID, reader)
            if left == 0 || timedOut {
                figures.seconds = since(started)
                figures.left = left
                figures.timedOut = left > 0
                break
            }
        }
        figures.daemonCPU = difference(daemonCPUBefore, ProcessFigures.cpuSeconds(pid: daemon.pid))
        figures.sandboxCPU = difference(sandboxCPUBefore, sandbox.cpuSeconds())

        try outcomes(upTo: lastID, resumedAt: resumedAt, reader, into: &figures)
        figures.eventsPerSecond = Double(figures.uploaded) / max(figures.activeSeconds ?? figures.seconds, 0.001)
        figures.peakRSS = ProcessFigures.peakRSS(pid: daemon.pid)
        if let ingestTask {
            do {
                figures.ingest = try await ingestTask.value
            } catch {
                log("\(label): paced ingest during the drain failed: \(error)")
            }
        }
        await daemon.stop()
        await sandbox.stop()
        // For a look at the drain afterwards (its attempts and their times): OUTLAWD_BENCH_KEEP_STORE=/tmp/backlog.sqlite.
        if let keep = ProcessInfo.processInfo.environment["OUTLAWD_BENCH_KEEP_STORE"] {
            try? FileManager.default.removeItem(atPath: keep)
            try? FileManager.default.copyItem(atPath: path, toPath: keep)
        }
        return figures
    }

    /// What became of the backlog's events and the requests that carried them.
    static func outcomes(upTo lastID: Int64, resumedAt: Double, _ reader: DatabaseQueue, into figures: inout BacklogFigures) throws {
        try reader.read { db in
            figures.uploaded = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE id <= ? AND state = 'uploaded'", arguments: [lastID]) ?? 0
            figures.failed = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE id <= ? AND state IN ('failed', 'rejected')",
                                              arguments: [lastID]) ?? 0
            figures.firstFailure = try String.fetchOne(db, sql: """
                SELECT type || ': ' || COALESCE(message, '') FROM events WHERE id <= ? AND state = 'failed' ORDER BY id LIMIT 1
                """, arguments: [lastID])
            if let first = try Double.fetchOne(db, sql: "SELECT MIN(started_at) FROM upload_attempts"),
               let last = try Double.fetchOne(db, sql: "SELECT MAX(finished_at) FROM upload_attempts WHERE outcome = 'accepted'"),
               last > first {
                figures.pickupSeconds = first - resumedAt
                figures.activeSeconds = last - first
            }
            let attempts = try Row.fetchAll(db, sql: """
                SELECT finished_at, events, outcome FROM upload_attempts WHERE finished_at IS NOT NULL AND outcome != 'not_sent'
                ORDER BY finished_at
                """)
            figures.requests = attempts.count
            let acceptedRows = attempts.filter { ($0["outcome"] as String?) == "accepted" }
            let total = acceptedRows.reduce(0) { $0 + ($1["events"] as Int) }
            if !acceptedRows.isEmpty { figures.meanObjects = Double(total) / Double(acceptedRows.count) }
            // The last tenth by the daemon's own answer times.
            var sum = 0
            var ninety: Double?
            for row in acceptedRows {
                sum += row["events"] as Int
                if ninety == nil, Double(sum) >= 0.9 * Double(total) {
                    ninety = row["finished_at"]
                    let rest = total - sum
                    let end: Double = acceptedRows.last?["finished_at"] ?? resumedAt
                    if rest > 0, end > ninety ?? end { figures.lastTenthPerSecond = Double(rest) / (end - (ninety ?? end)) }
                }
            }
        }
    }

    /// Events of the answers accepted after attempt `after`, and the newest such attempt.
    static func acceptedSince(_ after: Int64, _ reader: DatabaseQueue) throws -> (Int, Int64) {
        try reader.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COALESCE(SUM(events), 0), COALESCE(MAX(id), ?) FROM upload_attempts
                WHERE id > ? AND finished_at IS NOT NULL AND outcome = 'accepted'
                """, arguments: [after, after])
            return (row?[0] ?? 0, row?[1] ?? after)
        }
    }

    /// Backlog events not finished yet (the `events_by_state` index: as many steps as there are).
    static func unfinished(upTo lastID: Int64, _ reader: DatabaseQueue) throws -> Int {
        try reader.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE id <= ? AND state IN ('queued', 'uploading', 'held')",
                             arguments: [lastID]) ?? 0
        }
    }

    static func difference(_ before: Double?, _ after: Double?) -> Double? {
        guard let before, let after else { return nil }
        return after - before
    }

    /// The fastest any uploader could drain `shape`: every slot full (concurrency × objects, each held for the
    /// latency), the longest chain (one step per latency), and the manicures' reads before sending (Metrc's GET
    /// limit); the slowest of the three decides.
    static func bound(_ shape: BacklogShape, latency: Double, concurrency: Int, objects: Int) -> (Double, String) {
        let n = Double(max(1, shape.events.count))
        let slots = Double(concurrency * objects)
        let slotTime = n * latency / slots
        let chainTime = Double(shape.longestChain) * latency
        let readTime = Double(shape.manicures) / getsPerSecond
        let limits = [
            (slotTime, "\(concurrency)×\(objects)÷\(Int(latency * 1000)) ms = \(Int(slots / latency))/s"),
            (chainTime, "longest chain \(shape.longestChain) × \(Int(latency * 1000)) ms = \(String(format: "%.1f", chainTime)) s"),
            (readTime, "\(shape.manicures) manicure reads at \(Int(getsPerSecond)) GET/s = \(String(format: "%.1f", readTime)) s"),
        ]
        let binding = limits.max { $0.0 < $1.0 }!
        let time = binding.0
        var why = binding.1
        if binding.1 != limits[0].1 {
            why = "chains or reads bind: " + why + String(format: " > slots %.1f s", slotTime)
        } else {
            why += String(format: "; chains %.1f s, manicure reads %.1f s do not bind", chainTime, readTime)
        }
        if shape.tags > Int(slots), shape.manicures == 0, shape.events.count == shape.tags * shape.longestChain {
            // Chains only, more tags than slots: the looser reading, whole waves of `slots` tags one after the other.
            let waves = Double((shape.tags + Int(slots) - 1) / Int(slots))
            why += String(format: " (in whole waves of %d tags: %.1f s, %.0f events/s)", Int(slots), waves * chainTime,
                          n / (waves * chainTime))
        }
        return (n / time, why)
    }
}

extension BacklogBench {
    /// The backlog, chains and store-size parts the options name, in turn; a part that fails is noted and the
    /// others still run.
    static func runParts(_ options: BenchOptions, into report: inout BenchReport) async {
        var sizes: [(BenchOptions.Part, Int)] = []
        if options.parts.contains(.backlog100k) { sizes.append((.backlog100k, options.backlogEvents ?? 100_000)) }
        if options.parts.contains(.backlog1m) { sizes.append((.backlog1m, options.backlogEvents ?? 1_000_000)) }
        for (part, events) in sizes {
            settleDisk()
            let label = "backlog \(BacklogShape.grouped(events))"
            log("\(part.rawValue): \(label) events, \(users.count) users (2 with personal keys), +\(options.drainLatencyMs) ms a write")
            let shape = BacklogShape.realistic(events: events, plantBase: options.plants, packageBase: options.packages)
            do {
                report.backlogs.append(try await run(label: label, shape: shape, users: users, options: options, ingest: true))
            } catch {
                report.failures.append("\(part.rawValue) failed: \(error)")
                log("\(part.rawValue) failed: \(error)")
            }
        }
        if options.parts.contains(.chains) {
            settleDisk()
            let label = "chains \(options.chainTags)×\(options.chainLength)"
            log("chains: \(options.chainTags) plants moved \(options.chainLength) times each by jane, +\(options.drainLatencyMs) ms a write")
            let shape = BacklogShape.chains(tags: options.chainTags, length: options.chainLength, plantBase: options.plants)
            do {
                report.backlogs.append(try await run(label: label, shape: shape, users: ["jane"], options: options, ingest: false))
            } catch {
                report.failures.append("chains failed: \(error)")
                log("chains failed: \(error)")
            }
        }
        if options.parts.contains(.store10m) {
            settleDisk()
            do {
                report.storeSize = try await StoreSizeBench.run(options)
            } catch {
                report.failures.append("store-10m failed: \(error)")
                log("store-10m failed: \(error)")
            }
        }
        if options.parts.contains(.retention) {
            do {
                report.retention = try await RetentionBench.run(options)
            } catch {
                report.failures.append("retention failed: \(error)")
                log("retention failed: \(error)")
            }
        }
    }
}
