import Foundation
import GRDB
import MetrcSandbox
import OutlawStore
import OutlawTestSupport
import Testing

/// Reference data end to end: the real outlawd syncing from the sandbox over real HTTP, handhelds pulling over
/// real TCP, outlawctl asking for syncs and showing their state.
// Serialized: each daemon syncs from its in-process sandbox at Metrc's full 50 GET/s, served by this process's
// two cooperative threads, which every other test's sandbox shares.
@Suite("Reference data end to end", .serialized, .timeLimit(.minutes(10)))
struct ReferenceTests {
    /// The sandbox shares this process's cooperative threads with every parallel test: a safety net, not a speed test.
    static let requestTimeout = 30.0

    /// What a `pull` answered: items and removed keys by kind, and the `pulled` line.
    struct Pulled {
        var items: [String: [[String: Any]]] = [:]
        var removed: [String: [String]] = [:]
        var final: [String: Any] = [:]
        var lines = 0

        func labels(_ kind: String) -> [String] { (items[kind] ?? []).compactMap { $0["label"] as? String } }
        func count(_ kind: String) -> Int? { (final["counts"] as? [String: Any])?[kind] as? Int }
        var cursor: String? { final["cursor"] as? String }
    }

    static func pull(_ c: LineClient, kinds: [String], since: String? = nil) async throws -> Pulled {
        var request: [String: Any] = ["op": "pull", "kinds": kinds]
        if let since { request["since"] = since }
        try c.send(json: request)
        var pulled = Pulled()
        while true {
            let line = try await c.readJSON()
            pulled.lines += 1
            switch line["op"] as? String {
            case "data":
                let kind = line["kind"] as? String ?? "?"
                if let items = line["items"] as? [[String: Any]] {
                    #expect(items.count <= 500)
                    pulled.items[kind, default: []] += items
                }
                if let removed = line["removed"] as? [String] { pulled.removed[kind, default: []] += removed }
            case "pulled":
                pulled.final = line
                return pulled
            default:
                throw LineClient.Failure(description: "unexpected answer to pull: \(line)")
            }
        }
    }

    /// `outlawctl sync --json`: the daemon runs it and outlawctl prints its report.
    static func sync(_ h: UploadHarness, full: Bool = false) async throws -> (status: Int32, report: [String: Any], stderr: String) {
        let r = try await h.daemon.ctl(["sync", "--json"] + (full ? ["--full"] : []))
        let report = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        return (r.status, report, r.stderr)
    }

    static func kindReport(_ report: [String: Any], _ kind: String) -> [String: Any]? {
        (report["kinds"] as? [[String: Any]])?.first { $0["kind"] as? String == kind }
    }

    @Test func handheldsPullTheCopyAndThenExactlyWhatChangedSinceTheirCursor() async throws {
        try await UploadHarness.run(sandboxState: SandboxState.pagedDemo(), referenceSync: true, requestTimeout: Self.requestTimeout) { h in
            let first = try await Self.sync(h)
            #expect(first.status == 0, "\(first.stderr)")
            let reports = first.report["kinds"] as? [[String: Any]] ?? []
            #expect(reports.count == 10 && reports.allSatisfy { $0["rateLimited"] as? Int == 0 }, "\(first.report)")
            let (c, _) = try await h.daemon.session(device: "HH-1", token: h.token)
            let every = try await Self.pull(c, kinds: ["locations", "sublocations", "strains", "items", "plants", "packages", "units",
                                                        "waste_methods", "waste_reasons", "adjust_reasons"])
            for kind in ["locations", "sublocations", "strains", "items", "plants", "packages", "units", "waste_methods",
                         "waste_reasons", "adjust_reasons"] {
                #expect((every.count(kind) ?? 0) > 20, "\(kind): \(every.count(kind) ?? -1)")
                #expect(every.items[kind]?.count == every.count(kind))
            }
            let all = try await Self.pull(c, kinds: ["plants", "packages", "locations", "waste_reasons"])
            #expect(all.count("plants") == 300 && all.labels("plants").count == 300)
            #expect(all.count("packages") == 300)
            #expect(all.count("locations") == SandboxDemo.locations.count + 25)
            #expect((all.count("waste_reasons") ?? 0) > 20)
            #expect(all.final["synced_at"] is String)
            let cursor = try #require(all.cursor)

            // At Metrc: a new plant and a moved package. Here: a plant harvested through outlawd itself.
            var state = await h.sandbox.state()
            let newLabel = "1A4FF0000000000000088888"
            state.plants.append(SandboxPlant(id: 88_888, license: SandboxDemo.license, label: newLabel, strain: "OG Kush",
                                             location: "Veg Room", growthPhase: .vegetative,
                                             plantedDate: MetrcDay(year: 2025, month: 3, day: 1)!, lastModified: Date()))
            let movedPackage = Tags.package(7)
            if let i = state.packages.firstIndex(where: { $0.label == movedPackage }) {
                state.packages[i].location = "Quarantine"
                state.packages[i].lastModified = Date()
            }
            await h.sandbox.replaceState(state)
            let harvested = Tags.plant(200)
            try await h.send("harvest-1", user: "jane", events: [Events.harvest(1, plant: harvested)])
            try await h.waitFor(["harvest-1"], states: ["uploaded"])

            // Our own upload changed the copy at once, before any sync.
            let own = try await Self.pull(c, kinds: ["plants"], since: cursor)
            #expect(own.removed["plants"] == [harvested])
            #expect(own.items["plants"] == nil)

            let second = try await Self.sync(h)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(Self.kindReport(second.report, "plants")?["full"] as? Bool == false)
            let changed = try await Self.pull(c, kinds: ["plants", "packages", "locations", "waste_reasons"], since: cursor)
            #expect(changed.labels("plants") == [newLabel])
            #expect(changed.removed["plants"] == [harvested])
            #expect(changed.labels("packages") == [movedPackage])
            #expect(changed.items["packages"]?.first?["location"] as? String == "Quarantine")
            #expect(changed.items["locations"] == nil && changed.items["waste_reasons"] == nil)

            // Bad requests get bad_request and the session stays open.
            try c.send(json: ["op": "pull", "kinds": ["plants", "trees"]])
            let unknown = try await c.readJSON()
            #expect(unknown["op"] as? String == "error" && unknown["code"] as? String == "bad_request")
            try c.send(json: ["op": "pull", "kinds": ["plants"], "since": "nonsense"])
            #expect(try await c.readJSON()["code"] as? String == "bad_request")
            try c.send(json: ["op": "ping"])
            #expect(try await c.readJSON()["op"] as? String == "pong")
        }
    }

    @Test func aRevokedDefaultKeyIsLoggedShownAndTheOldCopyStillServed() async throws {
        try await UploadHarness.run(referenceSync: true, requestTimeout: Self.requestTimeout) { h in
            #expect(try await Self.sync(h).status == 0)
            #expect(await h.sandbox.revokeUserKey(SandboxDemo.ownerKey))
            let failed = try await Self.sync(h)
            #expect(failed.status == 1)
            #expect((Self.kindReport(failed.report, "plants")?["error"] as? String)?.contains("refused") == true, "\(failed.report)")
            let status = try await h.daemon.ctl(["sync", "status"])
            #expect(status.stdout.contains("refused"), "\(status.stdout)")
            let overall = try await h.daemon.ctl(["status"])
            #expect(overall.stdout.contains("Default Metrc key was refused"), "\(overall.stdout)")
            #expect(h.daemon.log.contains("reference sync failed"))
            #expect(!h.daemon.log.contains(SandboxDemo.ownerKey), "a key never reaches the log")
            let (c, _) = try await h.daemon.session(device: "HH-1", token: h.token)
            let served = try await Self.pull(c, kinds: ["plants"])
            #expect(served.count("plants") == 300)
            #expect(served.final["synced_at"] is String)
        }
    }

    @Test func eventsNamingWhatMetrcDoesNotListAreStoredWithAWarning() async throws {
        try await UploadHarness.run(referenceSync: true, requestTimeout: Self.requestTimeout) { h in
            #expect(try await Self.sync(h).status == 0)
            let unknownTag = "1A4FF0000000000000077777"
            try await h.send("scan-1", user: "jane", events: [
                Events.move(1, plant: unknownTag),
                Events.packageMove(2, package: Tags.package(3), to: "Attic"),
                Events.move(3, plant: Tags.plant(4), to: "Flower Room 1"),
            ])
            let status = try await h.status(["scan-1"])
            let warnings = status["scan-1"]?["warnings"] as? [[String: Any]] ?? []
            #expect(warnings.map { $0["seq"] as? Int } == [1, 2], "\(status)")
            #expect((warnings.first?["message"] as? String)?.contains(unknownTag) == true)
            #expect((warnings.last?["message"] as? String)?.contains("Attic") == true)
            let shown = try await h.daemon.ctl(["batch", "show", "HH-1", "scan-1"])
            #expect(shown.stdout.contains("not an active plant in Metrc"), "\(shown.stdout)")
            #expect(shown.stdout.contains("Attic"))
        }
    }

    @Test func aLargePullIsStreamedToASlowReaderWithoutTheDaemonHoldingIt() async throws {
        let plants = 100_000
        try await UploadHarness.run(prepare: { dir in
            // The copy as a sync would have left it, written before the daemon starts (syncing 5,000 pages
            // would take this test minutes at Metrc's 50 GET/s).
            let path = dir.file("state/outlawd.sqlite")
            _ = try Store(path: path, pinRounds: 10_000)   // the daemon's schema
            // One statement in SQLite, not 100,000 upserts through a debug build: the test is about the pull.
            let db = try DatabaseQueue(path: path)
            try db.write { db in
                try db.execute(sql: """
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                    INSERT INTO reference_items (license, kind, key, item, change, removed_at)
                    SELECT ?, 'plants', printf('1A4FF%019d', i),
                           printf('{"label":"1A4FF%019d","location":"Flower Room %d","phase":"Flowering","strain":"Strain %d","sublocation":"Bench %d"}',
                                  i, i % 3 + 1, i % 40, i % 4 + 1),
                           1, NULL
                    FROM n;
                    INSERT INTO reference_changes (license, last) VALUES (?, 1);
                    """, arguments: [plants, SandboxDemo.license, SandboxDemo.license])
            }
        }) { h in
            let (c, _) = try await h.daemon.session(device: "HH-1", token: h.token)
            let before = Self.residentBytes(h.daemon.pid)
            try c.send(json: ["op": "pull", "kinds": ["plants"]])
            // Read one line, then stop reading: the daemon must wait for the socket, not build the answer.
            let firstLine = try #require(try await c.readLine())
            let lineBytes = firstLine.utf8.count + 1
            var peak = before
            for _ in 0..<20 {
                // Paces the memory samples while the device reads nothing (a load, not a check of an absence).
                try await Task.sleep(for: .milliseconds(100))
                peak = max(peak, Self.residentBytes(h.daemon.pid))
            }
            var lines = 1
            var last: [String: Any] = [:]
            while true {
                guard let line = try await c.readLine() else { throw LineClient.Failure(description: "closed mid-pull") }
                lines += 1
                if lines % 20 == 0 {
                    peak = max(peak, Self.residentBytes(h.daemon.pid))
                    // Paces the reader: a slow handheld, so the daemon has to wait for the socket.
                    try await Task.sleep(for: .milliseconds(20))
                }
                if line.hasPrefix(#"{"op":"pulled""#) {
                    last = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                    break
                }
            }
            let answerBytes = lineBytes * (plants / 500)
            #expect((last["counts"] as? [String: Any])?["plants"] as? Int == plants)
            #expect(lines == plants / 500 + 1)
            let growth = peak - before
            print("pull of \(plants) plants: answer \(answerBytes / 1024) KiB in \(lines) lines; daemon RSS before \(before / 1024) KiB, "
                  + "peak during \(peak / 1024) KiB, growth \(growth / 1024) KiB")
            // Holding the answer would take at least its size (and several times it as Swift strings); what does grow
            // is bounded by other things: SQLite's page cache of each reader connection (2 MB each) and the socket.
            #expect(growth < answerBytes, "the daemon's memory grew with the answer: \(growth) bytes for a \(answerBytes)-byte answer")
        }
    }

    /// VmRSS of a process, in bytes.
    static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) * 1024
        }
        return 0
    }
}
