import Foundation
import GRDB
import Logging
import MetrcSandbox
import OutlawStore
import OutlawTestSupport

/// The figures of draining a stored backlog to the Metrc sandbox.
struct DrainFigures: Sendable {
    var events = 0
    var users = 0
    var tags = 0
    var latencyMs = 0
    var concurrency = 0
    var objectsPerRequest = 0
    /// From the resume to the last event leaving the queue.
    var seconds = 0.0
    /// From the resume to the first event leaving `queued` (the uploader's pause check).
    var pickupSeconds: Double?
    var eventsPerSecond = 0.0
    /// concurrency × objects_per_request ÷ latency.
    var bound = 0.0
    var requests = 0
    var uploaded = 0
    var failed = 0
    var left = 0
    var timedOut = false
    /// Mean time of one request as the daemon recorded its attempts (sent to answered), and the mean number of
    /// requests in flight: where the time between the bound and the rate went.
    var meanRequestSeconds: Double?
    var meanInFlight: Double?

    var share: Double { bound > 0 ? eventsPerSecond / bound : 0 }
    /// The rate over the time after the first event left `queued`.
    var eventsPerSecondAfterPickup: Double? {
        guard let pickupSeconds, seconds > pickupSeconds else { return nil }
        return Double(events) / (seconds - pickupSeconds)
    }
}

/// A backlog of real Metrc writes (plant moves, package moves and adjustments) by five collectors with their own
/// keys, stored while uploads are paused; then resume and the time until the queue is empty, with every
/// sandbox write taking `latencyMs` longer.
enum DrainBench {
    /// jane and john are the demo's; the others get keys of their own in the sandbox.
    static let userNames = ["jane", "john", "maria", "omar", "lena"]

    static func run(events requested: Int, users userCount: Int, tags: Int, latencyMs: Int, concurrency: Int,
                    objectsPerRequest: Int) async throws -> DrainFigures {
        let users = Array(userNames.prefix(max(1, min(userNames.count, userCount))))
        let perBatch = 100
        let batchCount = max(1, requested / perBatch)
        let plantTags = max(perBatch, (tags * 2 / 3) / perBatch * perBatch)
        let packageTags = max(perBatch, (tags - plantTags) / perBatch * perBatch)

        var state = SandboxState.demo()
        let all = SandboxPermission.allCases
        for user in users where state.user(named: user) == nil {
            state.users.append(SandboxUser(name: user, key: "bench-\(user)-key", facilities: [EventMix.license: all]))
        }
        let seeded = try state.seed(license: EventMix.license, plants: plantTags, packages: packageTags, now: Date())
        let unitOf = Dictionary(state.packages.map { ($0.label, $0.unitOfMeasure) }, uniquingKeysWith: { a, _ in a })
        let keyOf = Dictionary(state.users.map { ($0.name, $0.key) }, uniquingKeysWith: { a, _ in a })

        var logger = Logger(label: "outlawd-bench.drain")
        logger.logLevel = .warning
        let sandbox = MetrcSandboxServer(state: state, configuration: SandboxConfiguration(), logger: logger)
        try await sandbox.start()
        let dir = try TempDirectory("outlawd-bench-drain")
        try dir.write("secrets/vendor-key", SandboxDemo.vendorKey)
        try dir.write("secrets/default-key", SandboxDemo.ownerKey)
        let daemon = try await DaemonProcess(metrc: """
            base_url = "\(sandbox.baseURL)"
            vendor_key_file = "secrets/vendor-key"
            default_key_file = "secrets/default-key"
            concurrency = \(concurrency)
            objects_per_request = \(objectsPerRequest)
            """, directory: dir)
        let store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 10_000, opening: .currentSchemaOnly)
        try await IngestDaemon.waitForReferenceSync(store, daemon: daemon)
        let paused = try await daemon.ctl(["pause"])
        guard paused.status == 0 else { throw BenchError("outlawctl pause failed: \(paused.stderr)") }
        for user in users {
            try await daemon.addUser(user, pin: "4821")
            let set = try await daemon.ctl(["key", "set", user], stdin: (keyOf[user] ?? "") + "\n")
            guard set.status == 0 else { throw BenchError("outlawctl key set \(user) failed: \(set.stderr)") }
        }
        let token = try await daemon.addDevice("HH-DRAIN")

        // The backlog: batches of 100 events of one collector and one action; one round of batches covers every
        // tag once (plants in groups of 100, then packages), so requests can be full and tags keep their order.
        let plantGroups = plantTags / perBatch
        let packageGroups = packageTags / perBatch
        let cycle = plantGroups + packageGroups
        let (client, _) = try await daemon.session(device: "HH-DRAIN", token: token, logIn: true)
        var lines: [String] = []
        let now = Date().timeIntervalSince1970
        for b in 0..<batchCount {
            let round = b / cycle
            let position = b % cycle
            let user = users[b % users.count]
            var items: [String] = []
            for i in 0..<perBatch {
                let seq = i + 1
                // Within the login ticket's span (10 minutes before the login at most): order is by arrival anyway.
                let at = EventMix.rfc3339(now - Double(batchCount * perBatch - b * perBatch - i) / 1000, offsetMinutes: -480)
                if position < plantGroups {
                    let tag = seeded.plantLabels[position * perBatch + i]
                    let room = round % 2 == 0 ? "Flower Room 1" : "Flower Room 2"
                    items.append(#"{"seq":\#(seq),"type":"plant.move","at":"\#(at)","plant":"\#(tag)","location":"\#(room)","sublocation":"Bench \#(i % 4 + 1)"}"#)
                } else {
                    let group = position - plantGroups
                    let tag = seeded.packageLabels[group * perBatch + i]
                    if (round + group) % 2 == 0 {
                        let room = round % 4 < 2 ? "Processing Room" : "Vault"
                        items.append(#"{"seq":\#(seq),"type":"package.move","at":"\#(at)","package":"\#(tag)","location":"\#(room)"}"#)
                    } else {
                        // Adjustments alternate +1 and -1, so no package ever runs out.
                        let quantity = (round / 2) % 2 == 0 ? "1" : "-1"
                        items.append(#"{"seq":\#(seq),"type":"package.adjust","at":"\#(at)","package":"\#(tag)","quantity":\#(quantity),"unit":"\#(unitOf[tag] ?? "Grams")","reason":"Drying"}"#)
                    }
                }
            }
            lines.append(#"{"op":"batch","id":"drain-\#(b)","user":"\#(user)","ticket":"\#(client.tickets[user] ?? "")","events":[\#(items.joined(separator: ","))]}"#)
        }
        var sent = 0
        var answered = 0
        while answered < lines.count {
            while sent < lines.count, sent - answered < 16 {
                try client.send(lines[sent])
                sent += 1
            }
            let answer = try await client.readJSON()
            guard answer["op"] as? String == "ack" else { throw BenchError("drain backlog not stored: \(answer)") }
            answered += 1
        }
        let stored = try store.queueStats()
        guard stored.queued == batchCount * perBatch else {
            throw BenchError("drain: \(stored.queued) events queued, expected \(batchCount * perBatch) (held \(stored.held), review \(stored.review))")
        }

        // Every write now takes latencyMs longer (moves are PUT, adjustments POST); reads are untouched.
        try await sandbox.setFaults(.latency(milliseconds: latencyMs, method: "PUT"), .latency(milliseconds: latencyMs, method: "POST"))
        await sandbox.clearWrites()

        var figures = DrainFigures(events: batchCount * perBatch, users: users.count, tags: plantTags + packageTags, latencyMs: latencyMs,
                                   concurrency: concurrency, objectsPerRequest: objectsPerRequest)
        figures.bound = Double(concurrency * objectsPerRequest) / (Double(latencyMs) / 1000)
        // What `outlawctl resume` does, from here so the clock starts exactly when uploads may go.
        let started = ContinuousClock.now
        try store.setUploadsPaused(false, actor: "outlawd-bench")
        let limit = max(120, Double(figures.events) / figures.bound * 20)
        while true {
            let stats = try store.queueStats()
            if figures.pickupSeconds == nil, stats.queued < figures.events { figures.pickupSeconds = since(started) }
            if stats.queued + stats.uploading + stats.held == 0 {
                figures.seconds = since(started)
                figures.uploaded = stats.uploaded
                figures.failed = stats.failed
                break
            }
            if since(started) > limit {
                figures.seconds = since(started)
                figures.timedOut = true
                figures.uploaded = stats.uploaded
                figures.failed = stats.failed
                figures.left = stats.queued + stats.uploading + stats.held
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        figures.eventsPerSecond = Double(figures.uploaded) / figures.seconds
        var readOnly = Configuration()
        readOnly.readonly = true
        let spans = try await DatabaseQueue(path: dir.file("state/outlawd.sqlite"), configuration: readOnly).read { db in
            try Row.fetchAll(db, sql: "SELECT started_at, finished_at FROM upload_attempts WHERE finished_at IS NOT NULL")
                .map { ($0["started_at"] as Double, $0["finished_at"] as Double) }
        }
        if !spans.isEmpty {
            let busy: Double = spans.reduce(0.0) { $0 + ($1.1 - $1.0) }
            figures.meanRequestSeconds = busy / Double(spans.count)
            let first: Double = spans.map { $0.0 }.min() ?? 0
            let last: Double = spans.map { $0.1 }.max() ?? 0
            if last > first { figures.meanInFlight = busy / (last - first) }
        }
        figures.requests = await sandbox.writes().count
        await daemon.stop()
        try await sandbox.shutdown()
        return figures
    }
}
