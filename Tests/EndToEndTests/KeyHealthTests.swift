import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// Issue 13, key health: the real daemon checks every key with the sandbox Metrc on the `[keys]` schedule.
@Suite("Key health", .serialized, .timeLimit(.minutes(5)))
struct KeyHealthTests {
    /// Waits until the daemon's log has a line containing `text`; returns that line.
    func logLine(_ h: UploadHarness, containing text: String, timeout: Duration = .seconds(30)) async throws -> String {
        try await eventually("a log line with \"\(text)\"", timeout: timeout, every: .milliseconds(100),
                             detail: { "--- daemon log ---\n\(h.daemon.log.suffix(4000))" }) {
            h.daemon.log.split(separator: "\n").first(where: { $0.contains(text) }).map(String.init)
        }
    }

    func json(_ h: UploadHarness, _ arguments: [String]) async throws -> Any {
        let r = try await h.daemon.ctl(arguments + ["--json"])
        // `status` exits 1 when degraded (a refused key is), with its JSON all the same.
        guard r.status == 0 || (arguments == ["status"] && r.status == 1) else {
            throw LineClient.Failure(description: "outlawctl \(arguments) failed: \(r.stderr)")
        }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    func keyRow(_ h: UploadHarness, user: String?) async throws -> [String: Any]? {
        let rows = try await json(h, ["key", "list"]) as? [[String: Any]] ?? []
        return rows.first { ($0["user"] as? String) == user && ($0["kind"] as? String) == (user == nil ? "default" : "personal") }
    }

    func localDay(_ date: Date) -> String {
        let c = Calendar.current.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }

    @Test func aKeyRevokedInMetrcIsFoundByTheScheduledCheckAndHoldsUploadsUntilANewKey() async throws {
        // A check every 1.8 s.
        try await UploadHarness.run(keys: "check_interval_hours = 0.0005") { h in
            #expect(try await keyRow(h, user: "jane")?["status"] as? String == "ok")
            #expect(await h.sandbox.revokeUserKey(SandboxDemo.janeKey))
            // No upload tells the daemon: the scheduled check does, with an error naming jane, never her key.
            let line = try await logLine(h, containing: "Metrc refuses jane's personal key")
            #expect(line.hasPrefix("error") && line.contains("outlaw_user=jane"), "\(line)")
            #expect(!h.daemon.log.contains(SandboxDemo.janeKey))
            let row = try #require(try await keyRow(h, user: "jane"))
            #expect(row["status"] as? String == "rejected" && row["lastCheckResult"] as? String == "refused", "\(row)")
            let listed = try await h.daemon.ctl(["key", "list"])
            #expect(listed.stdout.contains("rejected") && listed.stdout.contains("refused") && !listed.stdout.contains(SandboxDemo.janeKey))
            let keys = try #require((try await json(h, ["status"]) as? [String: Any])?["keys"] as? [String: Any])
            #expect(keys["rejected"] as? Int == 1 && keys["rejectedKeys"] as? [String] == ["jane"], "\(keys)")
            #expect(try await h.daemon.ctl(["status"]).stdout.contains("1 rejected (jane)"))
            // Her next batch waits; John's, signed with the Default key, still goes.
            try await h.send("kh-jane", user: "jane", events: [Events.move(1, plant: Tags.plant(55))])
            try await h.send("kh-john", user: "john", events: [Events.move(1, plant: Tags.plant(56))])
            let status = try await h.waitFor(["kh-jane", "kh-john"], states: ["held", "uploaded"])
            #expect(status["kh-jane"]?["state"] as? String == "held")
            #expect((status["kh-jane"]?["reason"] as? String)?.contains("jane's Metrc key was rejected") == true)
            #expect(status["kh-john"]?["state"] as? String == "uploaded")
            #expect(await h.appliedWrites().map(\.label) == [Tags.plant(56)])
            // One error, not one per check: a rejected key is not checked again. Five more looks: the last began
            // more than a check interval (1.8 s, two ticks) after this point, when her key would be due again.
            try await h.daemon.waitForKeyHealthPasses(count: 5)
            #expect(h.daemon.log.components(separatedBy: "Metrc refuses jane's personal key").count - 1 == 1)
            // A new key from Metrc, set by the operator, releases her batch: uploaded under her name.
            #expect(await h.sandbox.setUserKey(user: "jane", key: "sandbox-jane-key-3"))
            #expect(try await h.daemon.ctl(["key", "set", "jane"], stdin: "sandbox-jane-key-3\n").status == 0)
            try await h.waitFor(["kh-jane"], states: ["uploaded"])
            #expect(await h.appliedWrites().contains { $0.user == "jane" && $0.label == Tags.plant(55) })
            let after = try #require(try await keyRow(h, user: "jane"))
            #expect(after["status"] as? String == "ok" && after["last4"] as? String == "ey-3", "\(after)")
        }
    }

    @Test func keysNearTheirExpectedExpiryAreWarnedAboutOnceADay() async throws {
        // A one-day lifetime warned from one day before: a key set today is expected to expire tomorrow.
        // Jane's key is set once, here: the harness sets it again until `key set`'s own check got an answer, and
        // every setting is a new key with its own warning. The scheduled check (every 1.8 s) verifies it anyway.
        try await UploadHarness.run(keys: "check_interval_hours = 0.0005\nlifetime_days = 1\nwarn_days = 1", janeKey: false) { h in
            let set = try await h.daemon.ctl(["key", "set", "jane"], stdin: SandboxDemo.janeKey + "\n")
            try #require(set.status == 0, "\(set.stderr)")
            let jane = try await logLine(h, containing: "jane's personal Metrc key is expected to expire")
            #expect(jane.hasPrefix("warning") && jane.contains("outlaw_user=jane") && jane.contains("outlawctl key set jane"), "\(jane)")
            let facility = try await logLine(h, containing: "the facility's Default Metrc key is expected to expire")
            #expect(facility.hasPrefix("warning"))
            // Many looks later (each would warn again if it did not remember the day), still one warning each.
            try await h.daemon.waitForKeyHealthPasses(count: 4)
            #expect(h.daemon.log.components(separatedBy: "jane's personal Metrc key is expected to expire").count - 1 == 1)
            #expect(h.daemon.log.components(separatedBy: "Default Metrc key is expected to expire").count - 1 == 1)
            #expect(!h.daemon.log.contains(SandboxDemo.janeKey) && !h.daemon.log.contains(SandboxDemo.ownerKey))
            // Listings show it too.
            let row = try #require(try await keyRow(h, user: "jane"))
            // Tomorrow (today, should the test run across midnight).
            let tomorrow = Calendar.current.date(byAdding: .day, value: 1, to: Date())!
            #expect(row["expiring"] as? Bool == true, "\(row)")
            #expect([localDay(tomorrow), localDay(Date())].contains(row["expectedExpiry"] as? String ?? ""), "\(row)")
            let defaultRow = try #require(try await keyRow(h, user: nil))
            #expect(defaultRow["expiring"] as? Bool == true && defaultRow["last4"] as? String == String(SandboxDemo.ownerKey.suffix(4)))
            #expect(defaultRow["lastCheckResult"] as? String == "accepted")
            let keys = try #require((try await json(h, ["status"]) as? [String: Any])?["keys"] as? [String: Any])
            #expect(keys["expiring"] as? Int == 2 && keys["rejected"] as? Int == 0, "\(keys)")
        }
    }

    @Test func loginCarriesTheKeysExpectedExpiryAndLastAcceptance() async throws {
        try await UploadHarness.run() { h in
            let before = Date()
            let (c, _) = try await h.daemon.session(device: "HH-1", token: h.token)
            try c.send(json: ["op": "login", "user": "jane", "pin": "4821"])
            let jane = try await c.readJSON()
            #expect(jane["ok"] as? Bool == true && jane["metrc_key"] as? String == "personal" && jane["role"] as? String == "user")
            // Set today (by the harness, checked with Metrc), expected to live 365 days.
            let expires = try #require(jane["key_expires"] as? String)
            let today = Calendar.current.startOfDay(for: Date())
            #expect(expires == localDay(Calendar.current.date(byAdding: .day, value: 365, to: today)!), "\(jane)")
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let checkedText = try #require(jane["key_checked_at"] as? String, "\(jane)")
            let checked = try #require(formatter.date(from: checkedText), "\(checkedText)")
            #expect(checked <= Date() && before.timeIntervalSince(checked) < 120)
            // No personal key: neither field.
            try c.send(json: ["op": "login", "user": "john", "pin": "1357"])
            let john = try await c.readJSON()
            #expect(john["metrc_key"] as? String == "default" && john["key_expires"] == nil && john["key_checked_at"] == nil, "\(john)")
        }
    }
}
