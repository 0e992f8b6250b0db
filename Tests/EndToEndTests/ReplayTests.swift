import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// Techs replaying failed work: outlawctl and scripts/outlaw-replay against the real daemon and the sandbox.
@Suite("Replay, pause and resume", .serialized, .timeLimit(.minutes(5)))
struct ReplayTests {
    static var scriptPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/outlaw-replay").path
    }

    func missingLocationBatch(_ h: UploadHarness, id: String, user: String, plants: ClosedRange<Int>) async throws {
        try await h.send(id, user: user, events: plants.enumerated().map { Events.move($0.offset + 1, plant: Tags.plant($0.element), to: "Greenhouse 9") })
    }

    @Test func replayAfterTheCauseIsFixedUploadsOnce() async throws {
        try await UploadHarness.run() { h in
            try await missingLocationBatch(h, id: "gh-jane", user: "jane", plants: 30...32)
            try await missingLocationBatch(h, id: "gh-john", user: "john", plants: 33...34)
            try await h.waitFor(["gh-jane", "gh-john"], states: ["failed"])
            #expect(await h.appliedWrites().isEmpty)

            let failed = try await h.daemon.ctl(["failed"])
            #expect(failed.status == 0)
            #expect(failed.stdout.contains("Greenhouse 9") && failed.stdout.contains("gh-jane") && failed.stdout.contains("john"))
            let causes = try await h.daemon.ctl(["failed", "--causes"])
            #expect(causes.stdout.contains("create the missing location in Metrc"))

            // Metrc gets the location; a dry run changes nothing.
            try await h.sandbox.addLocation(license: SandboxDemo.license, name: "Greenhouse 9")
            let dry = try await h.daemon.ctl(["replay", "--all-failed", "--dry-run"])
            #expect(dry.status == 0 && dry.stdout.contains("5 events would be requeued"))
            // A whole upload pass began after the dry run and sent nothing.
            try await h.daemon.waitForUploadPasses()
            #expect(try await h.status(["gh-jane", "gh-john"]).values.map { $0["state"] as? String } == ["failed", "failed"])
            #expect(await h.appliedWrites().isEmpty)

            let replay = try await h.daemon.ctl(["replay", "--all-failed"])
            #expect(replay.status == 0 && replay.stdout.contains("5 events requeued"))
            try await h.waitFor(["gh-jane", "gh-john"], states: ["uploaded"], timeout: 10)
            let again = try await h.daemon.ctl(["replay", "--all-failed"])
            #expect(again.stdout.contains("0 events requeued"))

            let writes = await h.appliedWrites()
            #expect(writes.count == 5)
            #expect(Set(writes.filter { $0.user == "jane" }.map(\.label)) == Set((30...32).map(Tags.plant)))
            #expect(Set(writes.filter { $0.user == "owner" }.map(\.label)) == Set((33...34).map(Tags.plant)))
            let audit = try await h.daemon.ctl(["audit"])
            #expect(audit.stdout.contains("replay") && audit.stdout.contains("HH-1:gh-jane"))
        }
    }

    @Test func replayOfPartOfABatch() async throws {
        try await UploadHarness.run() { h in
            try await missingLocationBatch(h, id: "part", user: "jane", plants: 40...42)
            try await h.waitFor(["part"], states: ["failed"])
            try await h.sandbox.addLocation(license: SandboxDemo.license, name: "Greenhouse 9")
            let r = try await h.daemon.ctl(["replay", "HH-1", "part", "--events", "2"])
            #expect(r.status == 0 && r.stdout.contains("1 events requeued"))
            try await h.waitFor(["part"], states: ["partial"], timeout: 10)
            let appliedLabels = await h.appliedWrites().map(\.label)
            #expect(appliedLabels == [Tags.plant(41)])
            #expect(try await h.daemon.ctl(["replay", "HH-1", "part", "nope-batch", "--events", "1"]).status == 2)
        }
    }

    @Test func pauseSurvivesARestartAndResumeUploads() async throws {
        try await UploadHarness.run() { h in
            #expect(try await h.daemon.ctl(["pause"]).status == 0)
            try await h.send("paused", user: "jane", events: [Events.move(1, plant: Tags.plant(70))])
            // Whole upload passes began after the batch was stored, and after the restart: none sent it.
            try await h.daemon.waitForUploadPasses()
            #expect(try await h.status(["paused"])["paused"]?["state"] as? String == "queued")
            #expect(await h.appliedWrites().isEmpty)
            #expect(await h.daemon.stop() == 0)
            try await h.daemon.start()
            try await h.daemon.waitForUploadPasses()
            #expect(try await h.status(["paused"])["paused"]?["state"] as? String == "queued")
            #expect(await h.appliedWrites().isEmpty)
            let status = try await h.daemon.ctl(["status"])
            #expect(status.stdout.contains("PAUSED"))
            #expect(try await h.daemon.ctl(["resume"]).status == 0)
            try await h.waitFor(["paused"], states: ["uploaded"], timeout: 10)
            let appliedLabels = await h.appliedWrites().map(\.label)
            #expect(appliedLabels == [Tags.plant(70)])
        }
    }

    @Test func replayScriptEndToEnd() async throws {
        try await UploadHarness.run() { h in
            try await missingLocationBatch(h, id: "script-1", user: "jane", plants: 44...45)
            try await missingLocationBatch(h, id: "script-2", user: "jane", plants: 46...46)
            try await h.waitFor(["script-1", "script-2"], states: ["failed"])
            try await h.sandbox.addLocation(license: SandboxDemo.license, name: "Greenhouse 9")
            var env = ProcessInfo.processInfo.environment
            env["OUTLAWCTL"] = Binaries.path("outlawctl")
            let r = try await runCommand("/bin/bash", [Self.scriptPath, "--yes", "--batch", "HH-1:script-1", "--config", h.daemon.configPath],
                                   environment: env)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("create the missing location"))
            #expect(r.stdout.contains("requeued HH-1 script-1"))
            try await h.waitFor(["script-1"], states: ["uploaded"], timeout: 10)
            #expect(try await h.status(["script-2"])["script-2"]?["state"] as? String == "failed")
            #expect(Set(await h.appliedWrites().map(\.label)) == Set([Tags.plant(44), Tags.plant(45)]))

            let bad = try await runCommand("/bin/bash", [Self.scriptPath, "--yes", "--config", "/nonexistent/outlawd.toml"], environment: env)
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("cannot read outlawd's configuration"))
        }
    }
}
