import Foundation
import GRDB
import Logging
import MetrcSandbox
import OutlawStore
import OutlawTestSupport

/// The figures of `store-10m`: a store seeded with years of finished events, then the paced load against it.
struct StoreSizeFigures: Sendable {
    var seeded = 0
    var seedSeconds = 0.0
    /// outlawd's start on the big store, to listening.
    var startSeconds = 0.0
    /// The newest migration (v15: an index over the events that name an upload attempt), undone and applied again by
    /// opening the store, as the first start after an upgrade applies it.
    var migrationSeconds: Double?
    var auditRows = 0
    var auditIntact = false
    var statusSeconds: Double?
    var statusOK = false
    /// A handheld's `pull` of every plant, and its `status` of one seeded batch: the device side on the big store.
    var pullSeconds: Double?
    var pulledPlants = 0
    var batchState: String?
    var paced: IngestFigures?
    /// Events in the store at the end (seeded plus the paced run's), and its files after a checkpoint.
    var events = 0
    var mainBytes = 0
    var walBytes = 0

    var bytesPerMillion: Double { events > 0 ? Double(mainBytes + walBytes) / Double(events) * 1_000_000 : 0 }
}

enum StoreSizeBench {
    static func run(_ options: BenchOptions) async throws -> StoreSizeFigures {
        var figures = StoreSizeFigures(seeded: options.storeEvents)
        let dir = try TempDirectory("outlawd-bench-store")
        let path = dir.file("state/outlawd.sqlite")
        let prepared = try StoreSeed.prepare(path: path, users: ["jane", "john"],
                                             devices: (0..<options.pacedHandhelds).map { String(format: "HH-%03d", $0) }, paused: true)
        let deviceIDs = prepared.tokens.compactMap { prepared.deviceIDs[$0.name] }
        log("store-10m: seeding \(BacklogShape.grouped(options.storeEvents)) finished events")
        figures.seedSeconds = try StoreSeed.history(path: path, count: options.storeEvents, deviceIDs: deviceIDs,
                                                    jane: prepared.userIDs["jane"] ?? 1, john: prepared.userIDs["john"] ?? 2, now: Date())
        do {
            let audit = try Store(path: path, pinRounds: 10_000).verifyAudit()
            figures.auditRows = audit.rows
            figures.auditIntact = audit.intact
        }
        log("store-10m: a seeded waste record: \(try sample(path))")
        let seededBytes = StoreSeed.diskBytes(path)
        log("store-10m: seeded in " + String(format: "%.1f s", figures.seedSeconds)
            + String(format: ", %.0f MiB; audit chain %@ (%d rows)", Double(seededBytes.main + seededBytes.wal) / 1_048_576,
                     figures.auditIntact ? "intact" : "BROKEN", figures.auditRows))

        do {
            figures.migrationSeconds = try newestMigration(path)
            log("store-10m: the v15 migration took " + String(format: "%.1f s", figures.migrationSeconds ?? 0))
        } catch {
            log("store-10m: the v15 migration could not be measured: \(error)")
        }

        var state = SandboxState.demo()
        _ = try state.seed(license: EventMix.license, plants: options.plants, packages: options.packages, now: Date())
        var logger = Logger(label: "outlawd-bench.store")
        logger.logLevel = .warning
        let sandbox = MetrcSandboxServer(state: state, configuration: SandboxConfiguration(rateLimits: .unlimited), logger: logger)
        try await sandbox.start()
        try dir.write("secrets/vendor-key", SandboxDemo.vendorKey)
        try dir.write("secrets/default-key", SandboxDemo.ownerKey)
        settleDisk()
        let starting = ContinuousClock.now
        // As the paced part's daemon (IngestDaemon.start), on the seeded store.
        let daemon = try await DaemonProcess(server: "max_unauthenticated_per_address = 1024", metrc: IngestDaemon.metrcSettings(sandbox.baseURL), directory: dir)
        figures.startSeconds = since(starting)
        let store = try Store(path: path, pinRounds: 10_000, opening: .currentSchemaOnly)
        try await IngestDaemon.waitForReferenceSync(store, daemon: daemon)
        let statusStarted = ContinuousClock.now
        let status = try await daemon.ctl(["status"])
        figures.statusSeconds = since(statusStarted)
        // Its exit code is the health verdict (uploads are paused here: a warning); what counts is that it answered.
        figures.statusOK = status.stdout.contains("done:")
        if !figures.statusOK { log("store-10m: outlawctl status failed: \(status.stderr.prefix(300))") }

        do {
            try await device(daemon, prepared.tokens[0], into: &figures)
        } catch {
            log("store-10m: the handheld's pull or status failed: \(error)")
        }

        let rig = IngestDaemon(daemon: daemon, devices: prepared.tokens)
        let plan = HandheldPlan.paced(options, eventsPerSecond: options.pacedRate, idPrefix: "paced-big")
        log("store-10m: paced \(options.pacedHandhelds) handhelds × \(options.pacedRate) events/s, \(Int(options.seconds)) s")
        do {
            figures.paced = try await IngestBench.run(rig, label: "paced on a big store", template: plan, handhelds: options.pacedHandhelds)
        } catch {
            log("store-10m: paced run failed: \(error)")
        }
        await daemon.stop()
        try await sandbox.shutdown()
        (figures.events, figures.mainBytes, figures.walBytes) = try measure(path)
        return figures
    }

    /// The first handheld pulls every plant and asks for its first seeded batch's state (`history-0` is device 0's).
    static func device(_ daemon: DaemonProcess, _ device: (name: String, token: String), into figures: inout StoreSizeFigures) async throws {
        let (client, welcome) = try await daemon.session(device: device.name, token: device.token)
        guard welcome["op"] as? String == "welcome" else { throw BenchError("hello answered \(welcome)") }
        let started = ContinuousClock.now
        try client.send(json: ["op": "pull", "kinds": ["plants"]])
        while true {
            let answer = try await client.readJSON()
            if answer["op"] as? String == "data" { figures.pulledPlants += (answer["items"] as? [Any])?.count ?? 0; continue }
            guard answer["op"] as? String == "pulled" else { throw BenchError("pull answered \(answer)") }
            break
        }
        figures.pullSeconds = since(started)
        try client.send(json: ["op": "status", "ids": ["history-0"]])
        let answer = try await client.readJSON()
        figures.batchState = ((answer["batches"] as? [[String: Any]])?.first?["state"] as? String) ?? "\(answer)"
    }

    /// Undoes v15 (its index and its row in GRDB's migration table), then times opening the store, which applies it again.
    static func newestMigration(_ path: String) throws -> Double {
        try StoreSeed.open(path).write { db in
            try db.execute(sql: "DROP INDEX events_by_attempt")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier LIKE 'v15:%'")
        }
        settleDisk()
        let started = ContinuousClock.now
        _ = try Store(path: path, pinRounds: 10_000)
        return since(started)
    }

    /// One seeded waste record and its tag rows, as a line for the log: what the SQL made of the templates.
    static func sample(_ path: String) throws -> String {
        try StoreSeed.open(path).read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id, tag, at, metrc_date, state, fields FROM events WHERE type = 'plant.waste' LIMIT 1")
            else { return "none" }
            let tags = try String.fetchAll(db, sql: "SELECT tag FROM event_tags WHERE event_id = ? ORDER BY tag", arguments: [row["id"] as Int64])
            return "\(row["tag"] as String) \(row["at"] as String) \(row["metrc_date"] as String) \(row["state"] as String) "
                + "\(row["fields"] as String) tags \(tags)"
        }
    }

    /// Events stored, and the store's files after a full checkpoint (what stays on disk between bursts).
    static func measure(_ path: String) throws -> (Int, Int, Int) {
        let queue = try StoreSeed.open(path)
        let events = try queue.writeWithoutTransaction { db -> Int in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            return try Int.fetchOne(db, sql: "SELECT MAX(id) FROM events") ?? 0
        }
        let bytes = StoreSeed.diskBytes(path)
        return (events, bytes.main, bytes.wal)
    }
}
