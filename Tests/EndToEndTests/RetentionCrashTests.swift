import Foundation
import GRDB
import OutlawStore
import OutlawTestSupport
import Testing

/// Retention in the real daemon, killed with SIGKILL at each step of a run (`OUTLAWD_TEST_RETENTION_PAUSE` holds the run
/// right after that step and says so on stderr): the restart completes or discards the step, every event is then either
/// in the live store or in exactly one archive line, the archives verify against the audit chain, and a handheld's
/// `status` over TCP answers `archived` for a batch that left (its resend: `duplicate`).
@Suite("Retention survives kill -9", .serialized, .timeLimit(.minutes(6)))
struct RetentionCrashTests {
    static let oldBatches = (1...12).map { "old-\($0)" }
    static let eventsPerBatch = 50
    static let oldInstant = Date().addingTimeInterval(-500 * 86_400)

    static func batch(_ id: String, first: Int) -> [String: Any] {
        let events: [[String: Any]] = (0..<eventsPerBatch).map { i in
            ["seq": i + 1, "type": "plant.move", "at": "2025-01-15T10:00:00-08:00",
             "plant": "1A4FF01000000220" + String(format: "%08d", first + i), "location": "Flower Room 2"]
        }
        return ["op": "batch", "id": id, "user": "jane", "events": events]
    }

    /// Makes the old batches finished 500 days ago (uploaded), `keep-queued` received then and still queued, and
    /// `keep-recent` uploaded ten days ago, as a daemon with Metrc would have left them. The daemon is stopped.
    static func age(_ storePath: String) throws {
        let old = oldInstant.timeIntervalSince1970
        let recent = Date().addingTimeInterval(-10 * 86_400).timeIntervalSince1970
        let db = try DatabaseQueue(path: storePath)
        try db.write { db in
            try db.execute(sql: "UPDATE batches SET received_at = ? WHERE batch_id LIKE 'old-%' OR batch_id = 'keep-queued'", arguments: [old])
            try db.execute(sql: """
                UPDATE events SET state = 'uploaded', metrc_id = 'M' || id, updated_at = ?
                WHERE batch_id IN (SELECT id FROM batches WHERE batch_id LIKE 'old-%')
                """, arguments: [old])
            try db.execute(sql: """
                UPDATE events SET state = 'uploaded', metrc_id = 'M' || id, updated_at = ?
                WHERE batch_id IN (SELECT id FROM batches WHERE batch_id = 'keep-recent')
                """, arguments: [recent])
        }
    }

    @Test(arguments: RetentionStep.allCases)
    func aKillAtAnyStepLosesNothingAndArchivesNothingTwice(step: RetentionStep) async throws {
        // The config-file daemon (`DaemonProcess()` alone would be dev mode), 400 days. The archive is written at the
        // daemon's own priority: on an idle thread the run gets about 0.1% of a core while the parallel suite keeps both
        // cores busy, and did not reach its first step in 60 s (CI, 12-06). Which thread builds the lines changes no step.
        let d = try await DaemonProcess(server: "", retention: "idle_priority = false")
        let crew = try await d.addCrew()
        let ids = Self.oldBatches + ["keep-queued", "keep-recent"]
        do {
            let (c, _) = try await d.session(device: "HH-1", token: crew.token)
            for (i, id) in ids.enumerated() {
                try c.send(json: Self.batch(id, first: i * Self.eventsPerBatch))
                let ack = try await c.readJSON()
                try #require(ack["op"] as? String == "ack", "\(ack)")
            }
            // The first run (at start) found nothing old: proof that it looked.
            try await eventually("the first retention run", detail: { d.log.suffix(2000).description }) { () -> Bool? in
                d.log.contains("retention run") ? true : nil
            }
        } catch {
            await d.expectCleanStop()
            throw error
        }
        await d.expectCleanStop()
        let storePath = d.directory.file("state/outlawd.sqlite")
        let dir = d.directory.file("state/archives")
        try await offload { try Self.age(storePath) }
        let file = ArchiveName(month: ArchiveName.month(of: Self.oldInstant), part: 1).fileName

        // The run stops right after `step`, and the daemon is killed there.
        try await d.start(environment: ["OUTLAWD_TEST_RETENTION_PAUSE": step.rawValue])
        try await eventually("the retention run to reach \(step.rawValue)", timeout: .seconds(60), detail: { d.log.suffix(2000).description }) { () -> Bool? in
            d.log.contains("retention paused after \(step.rawValue)") ? true : nil
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        switch step {
        case .partialWritten: #expect(names == [file + ArchiveName.partialSuffix], "\(names)")
        case .renamed, .recorded, .deleted: #expect(names == [file], "\(names)")
        }
        await d.kill9()

        // The restart's run completes (or discards and redoes) what the killed one left.
        try await d.start()
        let expected = step == .partialWritten || step == .renamed ? "discarded=\(file)" : "completed=\(file)"
        try await d.whileRunning { d in
            try await eventually("the retention run after the restart", timeout: .seconds(60), detail: { d.log.suffix(3000).description }) { () -> Bool? in
                d.log.contains("retention run") ? true : nil
            }
            #expect(d.log.contains(expected), "\(d.log.suffix(3000))")

            // The handheld's view over TCP: archived, live, unknown; a resend of an archived batch is a duplicate.
            let (c, _) = try await d.session(device: "HH-1", token: crew.token)
            try c.send(json: ["op": "status", "ids": ["old-1", "old-12", "keep-queued", "keep-recent", "never-sent"]])
            let status = try await c.readJSON()
            let states = (status["batches"] as? [[String: Any]] ?? []).map { "\($0["id"] ?? ""):\($0["state"] ?? "")" }
            #expect(states == ["old-1:archived", "old-12:archived", "keep-queued:queued", "keep-recent:uploaded", "never-sent:unknown"], "\(status)")
            try c.send(json: Self.batch("old-3", first: 2 * Self.eventsPerBatch))
            let resend = try await c.readJSON()
            #expect(resend["op"] as? String == "ack" && resend["duplicate"] as? Bool == true && resend["events"] as? Int == Self.eventsPerBatch,
                    "\(resend)")

            let verify = try await d.ctl(["archive", "verify"])
            #expect(verify.status == 0 && verify.stdout.contains("1 archives intact"), "\(verify.stdout)\(verify.stderr)")
            let listed = try await d.ctl(["archive", "list", "--json"])
            #expect(listed.status == 0 && listed.stdout.contains("\"verified\" : true"), "\(listed.stdout)\(listed.stderr)")
            let shown = try await d.ctl(["archive", "show", "HH-1", "old-5", "--seq", "7"])
            #expect(shown.status == 0 && shown.stdout.split(separator: "\n").count == 1 && shown.stdout.contains("\"id\":\"old-5\""),
                    "\(shown.stdout)\(shown.stderr)")
        }

        // Every event exactly once: the old ones only in the archive (one line each), the others only in the live store.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [file])
        let unzipped = try await runCommand("/bin/gzip", ["-dc", dir + "/" + file])
        try #require(unzipped.status == 0, "\(unzipped.stderr)")
        var archived: [String: Int] = [:]
        for line in unzipped.stdout.split(separator: "\n") {
            let value = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let batch = value["batch"] as? [String: Any] ?? [:]
            let event = value["event"] as? [String: Any] ?? [:]
            archived["\(batch["id"] ?? ""):\(event["seq"] ?? "")", default: 0] += 1
        }
        let expectedArchived = Set(Self.oldBatches.flatMap { id in (1...Self.eventsPerBatch).map { "\(id):\($0)" } })
        #expect(Set(archived.keys) == expectedArchived)
        #expect(archived.values.allSatisfy { $0 == 1 }, "an event archived twice")
        let live = try await offload {
            try DatabaseQueue(path: storePath).read { db in
                try String.fetchAll(db, sql: "SELECT b.batch_id || ':' || e.seq FROM events e JOIN batches b ON b.id = e.batch_id")
            }
        }
        #expect(Set(live) == Set(["keep-queued", "keep-recent"].flatMap { id in (1...Self.eventsPerBatch).map { "\(id):\($0)" } }))
        #expect(live.count == 2 * Self.eventsPerBatch)
    }

    /// `outlawd --check-config` refuses an archive folder outlawd could not write, naming the key.
    @Test func checkConfigRefusesAnArchiveFolderThatCannotBeMade() async throws {
        let dir = try TempDirectory("outlawd-retention-check")
        _ = try dir.write("not-a-folder", "a file")
        let path = try dir.write("outlawd.toml", """
            [store]
            path = "state/outlawd.sqlite"
            allow_unsealed_keys = true
            [retention]
            archive_dir = "not-a-folder/archives"
            """)
        let r = try await runCommand(Binaries.path("outlawd"), ["--check-config", "--config", path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(path): retention.archive_dir: \(dir.file("not-a-folder")) is not a folder, so \(dir.file("not-a-folder/archives")) cannot be made"),
                "\(r.stderr)")
        // Beside the store (the default), it passes.
        try "[store]\npath = \"state/outlawd.sqlite\"\nallow_unsealed_keys = true\n".write(toFile: path, atomically: true, encoding: .utf8)
        let ok = try await runCommand(Binaries.path("outlawd"), ["--check-config", "--config", path])
        #expect(!ok.stderr.contains("retention"), "\(ok.stdout)\(ok.stderr)")
    }
}
