import Foundation
import MetrcSandbox
import OutlawStore
import OutlawTestSupport
import Testing

/// `systemctl reload outlawd` is SIGHUP: the real daemon reads its file again and applies what changes without
/// dropping a connection, refuses a file that needs a restart, and audits every applied reload with the file's SHA-256.
@Suite("Reload, end to end", .serialized, .timeLimit(.minutes(5)))
struct ReloadTests {
    /// Appends to (or rewrites) the daemon's outlawd.toml, then sends SIGHUP.
    func reload(_ d: DaemonProcess, _ change: (String) -> String) throws {
        let text = try String(contentsOfFile: d.configPath, encoding: .utf8)
        try change(text).write(toFile: d.configPath, atomically: true, encoding: .utf8)
        #expect(kill(d.pid, SIGHUP) == 0)
    }

    /// Waits until the daemon's log has `count` lines containing `text` (proof, not a fixed sleep).
    func waitForLines(_ d: DaemonProcess, _ text: String, count: Int = 1) async throws -> [Substring] {
        let lines = try await eventually { () -> [Substring]? in
            let found = d.log.split(separator: "\n").filter { $0.contains(text) }
            return found.count >= count ? found : nil
        }
        return try #require(lines, "no \"\(text)\" in the log:\n\(d.log.suffix(3000))")
    }

    func sendBatch(_ c: LineClient, _ id: String, events: [[String: Any]]) async throws {
        try c.send(json: ["op": "batch", "id": id, "user": "jane", "events": events])
        let ack = try await c.readJSON()
        #expect(ack["op"] as? String == "ack" && ack["id"] as? String == id, "\(ack)")
    }

    func ping(_ c: LineClient) async throws -> Bool {
        try c.send(json: ["op": "ping"])
        return try await c.readJSON()["op"] as? String == "pong"
    }

    func inReview(_ d: DaemonProcess) async throws -> [String] {
        let r = try await d.ctl(["review", "list", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
        return rows.compactMap { $0["id"] as? String }
    }

    func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    @Test func aNewReviewRuleAppliesOnTheSameConnection() async throws {
        try await DaemonProcess.withCrew(users: [.jane]) { d, crew in
            let token = crew.token
            let (c, welcome) = try await d.session(device: "HH-1", token: token)
            #expect(welcome["op"] as? String == "welcome")
            try await sendBatch(c, "before", events: [Events.destroy(1, plant: Tags.plant(90))])
            #expect(try await inReview(d).isEmpty, "no rule yet: the destroy is queued")

            try reload(d) { $0 + "\n[review]\nevent_types = [\"plant.destroy\"]\n" }
            let reloaded = try await waitForLines(d, "configuration reloaded")
            #expect(reloaded.count == 1 && reloaded[0].contains("changed=review.event_types"), "\(reloaded)")
            #expect(!d.log.contains("configuration not reloaded"))

            // The same session, never dropped: the next destroy waits for review, the earlier one does not.
            try await sendBatch(c, "after", events: [Events.destroy(1, plant: Tags.plant(91))])
            #expect(try await inReview(d) == ["after"])
            #expect(try await ping(c))

            // One audit row with the SHA-256 of exactly the file applied.
            let sha = hex(Secrets.sha256(try Data(contentsOf: URL(fileURLWithPath: d.configPath))))
            let audit = try await d.ctl(["audit", "--json"])
            let rows = try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]] ?? []
            let reloads = rows.filter { $0["action"] as? String == "daemon.reload" }
            #expect(reloads.count == 1, "\(audit.stdout)")
            #expect(reloads.first?["actor"] as? String == "outlawd")
            #expect(reloads.first?["subject"] as? String == d.configPath)
            #expect((reloads.first?["detail"] as? String)?.contains("config_sha256=\(sha) changed=review.event_types") == true,
                    "\(reloads)")
            #expect(try await d.ctl(["audit", "verify"]).status == 0)
            #expect(await d.stop() == 0)
        }
    }

    @Test func aNewListenAddressIsRefusedAndTheOldListenerServes() async throws {
        try await DaemonProcess.withCrew(users: [.jane]) { d, crew in
            let token = crew.token
            let (c, _) = try await d.session(device: "HH-1", token: token)

            // The review rule in the same file is not applied either: the running configuration stays whole.
            try reload(d) {
                $0.replacingOccurrences(of: "listen = \"127.0.0.1:0\"", with: "listen = \"127.0.0.1:7499\"")
                    + "\n[review]\nevent_types = [\"plant.destroy\"]\n"
            }
            let refused = try await waitForLines(d, "configuration not reloaded")
            #expect(refused.count == 1)
            #expect(refused[0].contains("server.listen") && !refused[0].contains("review"), "\(refused[0])")
            #expect(refused[0].hasPrefix("error"), "\(refused[0])")
            #expect(!d.log.contains("configuration reloaded"))

            #expect(try await ping(c), "the session survived")
            let (fresh, welcome) = try await d.session(device: "HH-1", token: token)
            #expect(welcome["op"] as? String == "welcome", "the old listener still takes devices")
            try await sendBatch(fresh, "still-queued", events: [Events.destroy(1, plant: Tags.plant(92))])
            #expect(try await inReview(d).isEmpty)

            // An invalid file is refused the same way, naming its key.
            try reload(d) { _ in "[review]\nevent_types = [\"plant.teleport\"]\n" }
            let invalid = try await waitForLines(d, "configuration not reloaded", count: 2)
            #expect(invalid.count == 2 && invalid[1].contains("review.event_types"), "\(invalid)")
            #expect(try await ping(c))
            #expect(await d.stop() == 0)
        }
    }

    /// A fresh install: no Metrc keys at start, batches stored and acknowledged; the keys arrive, a reload starts the
    /// uploads, and what waited reaches Metrc.
    @Test func keysAddedLaterStartUploadsAtTheReload() async throws {
        try await UploadHarness.run(janeKey: false, prepare: { dir in
            try FileManager.default.removeItem(atPath: dir.file("secrets/vendor-key"))
            try FileManager.default.removeItem(atPath: dir.file("secrets/default-key"))
        }) { h in
            let plant = Tags.plant(240)
            try await h.send("waited", user: "john", events: [Events.move(1, plant: plant)])
            #expect(try await h.status(["waited"])["waited"]?["state"] as? String == "queued")

            _ = try h.daemon.directory.write("secrets/vendor-key", SandboxDemo.vendorKey + "\n")
            _ = try h.daemon.directory.write("secrets/default-key", SandboxDemo.ownerKey + "\n")
            #expect(kill(h.daemon.pid, SIGHUP) == 0)
            let reloaded = try await waitForLines(h.daemon, "configuration reloaded")
            #expect(reloaded.count == 1 && reloaded[0].contains("uploads=started"), "\(reloaded)")
            try await h.waitFor(["waited"], states: ["uploaded"])
            #expect(await h.appliedWrites().map(\.label) == [plant])
            let audit = try await h.daemon.ctl(["audit", "--json"])
            #expect(audit.stdout.contains("changed=none uploads=started"), "\(audit.stdout)")
        }
    }

    /// Uploads run without a Default key (John's events are held); the key arrives and a reload replaces the Metrc side
    /// with one that signs with it: what was held goes.
    @Test func aDefaultKeyAddedLaterReplacesTheMetrcSide() async throws {
        try await UploadHarness.run(janeKey: false, prepare: { dir in
            try FileManager.default.removeItem(atPath: dir.file("secrets/default-key"))
        }) { h in
            let plant = Tags.plant(241)
            try await h.send("held", user: "john", events: [Events.move(1, plant: plant)])
            try await h.waitFor(["held"], states: ["held"])

            _ = try h.daemon.directory.write("secrets/default-key", SandboxDemo.ownerKey + "\n")
            #expect(kill(h.daemon.pid, SIGHUP) == 0)
            let reloaded = try await waitForLines(h.daemon, "configuration reloaded")
            #expect(reloaded.count == 1 && reloaded[0].contains("uploads=restarted"), "\(reloaded)")
            try await h.waitFor(["held"], states: ["uploaded"])
            #expect(await h.appliedWrites().map(\.user) == ["owner"])
        }
    }
}
