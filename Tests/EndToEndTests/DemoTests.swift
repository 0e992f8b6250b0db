import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// `scripts/demo`'s handheld against a real `outlawd --dev`: its table must say what the sandbox's write log says.
@Suite("scripts/demo", .serialized, .timeLimit(.minutes(10)))
struct DemoTests {
    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The parts of `outlaw-handheld --json` the test reads.
    struct Report: Decodable {
        struct Totals: Decodable { let batches, events, uploaded, failed, pending: Int }
        struct Login: Decodable { let user, metrcKey: String }
        struct Event: Decodable { let batch: String; let seq: Int; let user, type, action, tag: String }
        struct Signature: Decodable { let user, action: String; let sent, failed, objects: Int; let signedBy: [String] }
        struct Failure: Decodable { let device, batch: String; let seq: Int; let user, tag, message, replay: String; let fix: String? }
        let run: String
        let config: String
        let metrcBaseURL: String
        let totals: Totals
        let users: [Login]
        let events: [Event]
        let signatures: [Signature]
        let failures: [Failure]
        let problems: [String]
    }

    /// One object of the sandbox's write log: who signed which Metrc action on which tag.
    struct LoggedObject: Equatable {
        let signer: String
        let action: String
        let label: String
        let location: String?
    }

    static func writeLog(_ baseURL: String) async throws -> [LoggedObject] {
        let r = try await runCommand("/usr/bin/curl", ["-sf", baseURL + "/_sandbox/writes"])
        guard r.status == 0 else { throw LineClient.Failure(description: "GET /_sandbox/writes failed: \(r.stderr)") }
        let writes = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
        return writes.flatMap { write in
            (write["objects"] as? [[String: Any]] ?? []).map { object in
                LoggedObject(signer: write["userName"] as? String ?? "?", action: write["action"] as? String ?? "?",
                             label: (object["Plant"] ?? object["Label"]) as? String ?? "?", location: object["Location"] as? String)
            }
        }
    }

    @Test func demoCompletesAndItsTableMatchesTheSandboxWriteLog() async throws {
        let daemon = try await DaemonProcess(devIn: nil)
        try await daemon.whileRunning(checkDemo)
    }

    func checkDemo(_ daemon: DaemonProcess) async throws {
        let devDir = daemon.directory.file(".outlawd")
        let started = Date()
        let run = try await runCommand(Binaries.path("outlaw-handheld"), ["--dir", devDir, "--json", "--timeout", "120"])
        let elapsed = Date().timeIntervalSince(started)
        try #require(run.status == 0, "outlaw-handheld exited \(run.status): \(run.stderr)\n\(run.stdout)\ndaemon:\n\(daemon.log)")
        let report = try JSONDecoder().decode(Report.self, from: Data(run.stdout.utf8))
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(elapsed < 120)
        // Progress went to stderr, in the contract's words.
        #expect(run.stderr.contains("sent \(report.totals.batches) batches (\(report.totals.events) events)"), "\(run.stderr)")
        #expect(run.stderr.contains("uploaded \(report.totals.uploaded) · failed 1"), "\(run.stderr)")

        // The shift: two people, five kinds of Metrc write each, everything done, exactly one refusal.
        #expect(report.users.map(\.user) == ["jane", "john"])
        #expect(report.users.map(\.metrcKey) == ["personal", "default"])
        #expect(report.totals.events == report.events.count && report.totals.events >= 30)
        #expect(report.totals.pending == 0)
        #expect(report.totals.uploaded == report.totals.events - 1 && report.totals.failed == 1)
        let actions = ["movePlants", "harvestPlants", "destroyPlants", "movePackages", "adjustPackages"]
        for user in ["jane", "john"] {
            #expect(Set(report.signatures.filter { $0.user == user }.map(\.action)) == Set(actions), "\(user)")
        }

        // The table against the write log, recomputed here from the sandbox itself: each logged object is one of
        // the run's events (by action and tag), and gives that event's collector a count and a signer.
        let log = try await Self.writeLog(report.metrcBaseURL)
        #expect(log.count == report.totals.uploaded, "\(log)")
        var objects: [String: Int] = [:]
        var signers: [String: Set<String>] = [:]
        for entry in log {
            let event = try #require(report.events.first { $0.action == entry.action && $0.tag == entry.label },
                                     "a write the demo did not send: \(entry)")
            objects["\(event.user) \(entry.action)", default: 0] += 1
            signers["\(event.user) \(entry.action)", default: []].insert(entry.signer)
        }
        #expect(Set(objects.keys) == Set(report.signatures.map { "\($0.user) \($0.action)" }))
        for row in report.signatures {
            let key = "\(row.user) \(row.action)"
            #expect(row.objects == objects[key, default: 0], "\(key)")
            #expect(row.signedBy == (signers[key] ?? []).sorted(), "\(key)")
            #expect(row.objects == row.sent - row.failed, "\(key)")
            // Jane's own key signs her work; John has none, so the facility's Default key (its owner) signs his.
            #expect(row.signedBy == [row.user == "jane" ? SandboxDemo.janeUserName : SandboxDemo.ownerUserName], "\(key)")
        }

        // The one failure: Metrc's message as outlawd stored it, and a replay line for that batch.
        try #require(report.failures.count == 1, "\(report.failures)")
        let failure = report.failures[0]
        #expect(failure.user == "john" && failure.device == "HH-DEMO")
        #expect(failure.message.hasPrefix("Metrc: ") && failure.message.contains("Flower Room 3"), "\(failure.message)")
        #expect(!log.contains { $0.label == failure.tag && $0.action == "movePlants" })
        let failed = try await daemon.ctl(["failed", "--json"])
        let stored = try JSONSerialization.jsonObject(with: Data(failed.stdout.utf8)) as? [[String: Any]] ?? []
        let storedEvents = stored.filter { $0["id"] as? String == failure.batch }.flatMap { $0["events"] as? [[String: Any]] ?? [] }
        #expect(storedEvents.count == 1)
        #expect(storedEvents.first?["seq"] as? Int == failure.seq)
        #expect(storedEvents.first?["message"] as? String == failure.message)
        #expect(failure.replay == "scripts/outlaw-replay --config \(devDir)/outlawd.toml --batch HH-DEMO:\(failure.batch)")

        // The printed fix and replay line work: the move reaches Metrc, signed with the Default key.
        let fix = try #require(failure.fix)
        #expect(try await runCommand("/bin/bash", ["-c", fix]).status == 0)
        let replay = try await runCommand("/bin/bash", ["-c", "cd \(Self.repository) && \(failure.replay)"],
                                          environment: ProcessInfo.processInfo.environment.merging(["OUTLAWCTL": Binaries.path("outlawctl")]) { $1 })
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("1 events requeued"), "\(replay.stdout)")
        let replayed = try await eventually("the replayed move in the write log", timeout: .seconds(60), every: .milliseconds(200)) {
            try await Self.writeLog(report.metrcBaseURL).first { $0.label == failure.tag && $0.action == "movePlants" }
        }
        #expect(replayed == LoggedObject(signer: SandboxDemo.ownerUserName, action: "movePlants", label: failure.tag, location: "Flower Room 3"))
    }

    @Test func aSecondRunAgainstTheSameDaemonPicksFreshPlantsAndStillMatches() async throws {
        let daemon = try await DaemonProcess(devIn: nil)
        try await daemon.whileRunning { daemon in
            let devDir = daemon.directory.file(".outlawd")
            var runs: [Report] = []
            for _ in 0..<2 {
                let r = try await runCommand(Binaries.path("outlaw-handheld"), ["--dir", devDir, "--json", "--timeout", "120"])
                try #require(r.status == 0, "\(r.stderr)\n\(r.stdout)")
                runs.append(try JSONDecoder().decode(Report.self, from: Data(r.stdout.utf8)))
            }
            #expect(runs[0].run != runs[1].run)
            #expect(runs.allSatisfy { $0.problems.isEmpty && $0.failures.count == 1 })
            // Harvested and destroyed plants are gone from Metrc: the second run must not pick them again.
            let consumed = runs.map { Set($0.events.filter { ["plant.harvest", "plant.destroy"].contains($0.type) }.map(\.tag)) }
            #expect(consumed[0].isDisjoint(with: consumed[1]))
            // Each run counts only its own writes, though both moved and adjusted the same packages.
            let log = try await Self.writeLog(runs[1].metrcBaseURL)
            #expect(log.count == runs[0].totals.uploaded + runs[1].totals.uploaded)
            #expect(runs[1].signatures.reduce(0) { $0 + $1.objects } == runs[1].totals.uploaded)
        }
    }
}
