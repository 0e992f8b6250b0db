import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// The real outlawd uploading to the Metrc sandbox over HTTP; devices over TCP.
@Suite("Uploads, end to end", .serialized, .timeLimit(.minutes(5)))
struct UploadEndToEndTests {
    @Test func eachEventIsSignedByItsCollectorsKeyForEveryAction() async throws {
        try await UploadHarness.run() { h in
            try await h.send("jane-1", user: "jane", events: [
                Events.move(1, plant: Tags.plant(1)), Events.harvest(2, plant: Tags.plant(151)), Events.destroy(3, plant: Tags.plant(2)),
                Events.packageMove(4, package: Tags.package(1)), Events.adjust(5, package: Tags.package(2)), Events.scan(6, plant: Tags.plant(3)),
            ])
            try await h.send("john-1", user: "john", events: [
                Events.move(1, plant: Tags.plant(10)), Events.harvest(2, plant: Tags.plant(160)), Events.destroy(3, plant: Tags.plant(11)),
                Events.packageMove(4, package: Tags.package(3)), Events.adjust(5, package: Tags.package(8)),
            ])
            let status = try await h.waitFor(["jane-1", "john-1"], states: ["uploaded", "failed", "partial"])
            #expect(status["jane-1"]?["state"] as? String == "uploaded")
            #expect(status["john-1"]?["state"] as? String == "uploaded")
            let writes = await h.appliedWrites()
            let janes = Set([Tags.plant(1), Tags.plant(151), Tags.plant(2), Tags.package(1), Tags.package(2)])
            let johns = Set([Tags.plant(10), Tags.plant(160), Tags.plant(11), Tags.package(3), Tags.package(8)])
            #expect(Set(writes.filter { $0.user == "jane" }.map(\.label)) == janes)
            #expect(Set(writes.filter { $0.user == "owner" }.map(\.label)) == johns)
            #expect(writes.count == 10)  // the scan is never uploaded
            #expect(Set(writes.map(\.action)) == ["harvestPlants", "movePlants", "destroyPlants", "movePackages", "adjustPackages"])
            #expect(await h.sandbox.plant(label: Tags.plant(1))?.location == "Flower Room 2")
            // outlawctl shows which key signed and why.
            let shown = try await h.daemon.ctl(["batch", "show", "HH-1", "john-1", "--json"])
            #expect(shown.stdout.contains("\"keyKind\" : \"default\""))
            #expect(shown.stdout.contains("john has no personal key"))
        }
    }

    @Test func oneBadObjectFailsAloneWithMetrcsMessage() async throws {
        try await UploadHarness.run() { h in
            var events = (1...9).map { Events.move($0, plant: Tags.plant(20 + $0)) }
            events.insert(Events.move(10, plant: Tags.plant(40), to: "Nowhere Room"), at: 4)
            try await h.send("ten", user: "jane", events: events)
            let status = try await h.waitFor(["ten"], states: ["partial", "failed", "uploaded"])
            let item = try #require(status["ten"])
            #expect(item["state"] as? String == "partial")
            let counts = item["events"] as? [String: Any]
            #expect(counts?["uploaded"] as? Int == 9)
            #expect(counts?["failed"] as? Int == 1)
            let errors = item["errors"] as? [[String: Any]]
            #expect(errors?.first?["seq"] as? Int == 10)
            #expect((errors?.first?["message"] as? String)?.contains("Nowhere Room") == true)
            #expect(await h.appliedWrites().count == 9)
        }
    }

    @Test func revokedKeyHoldsOnlyThatUserUntilANewKeyIsSet() async throws {
        try await UploadHarness.run() { h in
            #expect(await h.sandbox.revokeUserKey(SandboxDemo.janeKey))
            try await h.send("jane-held", user: "jane", events: [Events.move(1, plant: Tags.plant(50))])
            try await h.send("john-flows", user: "john", events: [Events.move(1, plant: Tags.plant(51))])
            let status = try await h.waitFor(["jane-held", "john-flows"], states: ["held", "uploaded"])
            #expect(status["jane-held"]?["state"] as? String == "held")
            #expect((status["jane-held"]?["reason"] as? String)?.contains("jane's Metrc key was rejected") == true)
            #expect(status["john-flows"]?["state"] as? String == "uploaded")
            // Never silently re-signed with the Default key.
            let appliedLabels = await h.appliedWrites().map(\.label)
            #expect(appliedLabels == [Tags.plant(51)])
            // A login now tells the handheld the key is rejected.
            let (c, _) = try await h.daemon.session(device: "HH-1", token: h.token)
            try c.send(json: ["op": "login", "user": "jane", "pin": "4821"])
            #expect(try await c.readJSON()["metrc_key"] as? String == "rejected")
            // Jane gets a new key in Metrc and the operator sets it: her events flow, under her name.
            #expect(await h.sandbox.setUserKey(user: "jane", key: "sandbox-jane-key-2"))
            let set = try await h.daemon.ctl(["key", "set", "jane"], stdin: "sandbox-jane-key-2\n")
            #expect(set.status == 0)
            try await h.waitFor(["jane-held"], states: ["uploaded"])
            let writes = await h.appliedWrites()
            #expect(writes.contains { $0.user == "jane" && $0.label == Tags.plant(50) })
            let listed = try await h.daemon.ctl(["key", "list"])
            #expect(listed.stdout.contains("…ey-2") && !listed.stdout.contains("sandbox-jane-key-2"))
        }
    }

    @Test func refusedKeyIsNotStored() async throws {
        try await UploadHarness.run(janeKey: false) { h in
            let r = try await h.daemon.ctl(["key", "set", "jane"], stdin: "not-a-real-metrc-key\n")
            #expect(r.status == 1)
            #expect(r.stderr.contains("refused"))
            #expect(!r.stderr.contains("not-a-real-metrc-key"))
            let keys = try await h.daemon.ctl(["key", "list"])
            #expect(keys.status == 0 && !keys.stdout.contains("jane"))
        }
    }

    @Test func requiredPersonalKeysHoldUsersWithoutOne() async throws {
        try await UploadHarness.run(facility: "require_personal_keys = true") { h in
            try await h.send("john-req", user: "john", events: [Events.move(1, plant: Tags.plant(60))])
            try await h.send("jane-req", user: "jane", events: [Events.move(1, plant: Tags.plant(61))])
            let status = try await h.waitFor(["john-req", "jane-req"], states: ["held", "uploaded"])
            #expect(status["john-req"]?["state"] as? String == "held")
            #expect((status["john-req"]?["reason"] as? String)?.contains("requires personal keys") == true)
            #expect(status["jane-req"]?["state"] as? String == "uploaded")
            let (c, _) = try await h.daemon.session(device: "HH-1", token: h.token)
            try c.send(json: ["op": "login", "user": "john", "pin": "1357"])
            #expect(try await c.readJSON()["metrc_key"] as? String == "required")
            // Setting John's key releases his events, signed by him.
            _ = try await h.daemon.ctl(["key", "set", "john"], stdin: SandboxDemo.johnKey + "\n")
            try await h.waitFor(["john-req"], states: ["uploaded"])
            #expect(await h.appliedWrites().contains { $0.user == "john" && $0.label == Tags.plant(60) })
        }
    }

    @Test func orderPerTagAcrossUsers() async throws {
        try await UploadHarness.run() { h in
            let plant = Tags.plant(170)
            // John moves the plant, then Jane harvests it: different keys, but the move must reach Metrc first.
            try await h.send("o-1", user: "john", events: [Events.move(1, plant: plant, to: "Flower Room 1")])
            try await h.send("o-2", user: "jane", events: [Events.harvest(1, plant: plant)])
            try await h.waitFor(["o-1", "o-2"], states: ["uploaded"])
            let writes = await h.appliedWrites().filter { $0.label == plant }
            #expect(writes.map(\.action) == ["movePlants", "harvestPlants"])
            #expect(writes.map(\.user) == ["owner", "jane"])
        }
    }

    @Test func oldWaitingEventsRaiseAWarningNamingTheOldest() async throws {
        // under a second
        try await UploadHarness.run(metrc: "alert_after_hours = 0.0002") { h in
            #expect(try await h.daemon.ctl(["pause"]).status == 0)
            try await h.send("old-1", user: "jane", events: [Events.move(1, plant: Tags.plant(90))])
            let line = try await eventually("the long-wait alert", timeout: .seconds(10), every: .milliseconds(100), detail: { h.daemon.log }) {
                h.daemon.log.split(separator: "\n").first { $0.contains("events have waited") }
            }
            #expect(line.contains("oldest_event=HH-1:old-1#1"), "\(line)")
            #expect(line.hasPrefix("warning"))
        }
    }

    @Test func tooLargeRequestsAreSplitUntilMetrcTakesThem() async throws {
        // Metrc's object limit is not public; this sandbox takes 3 objects a request, we send 10.
        try await UploadHarness.run(metrc: "objects_per_request = 10", sandboxConfiguration: SandboxConfiguration(objectLimit: 3)) { h in
            try await h.send("big", user: "jane", events: (1...10).map { Events.move($0, plant: Tags.plant(110 + $0)) })
            try await h.waitFor(["big"], states: ["uploaded"])
            // The sandbox logs only what it accepted, so the sizes show how the daemon split: 10 refused, two
            // halves of 5 refused, then 2 + 3 and 2 + 3 taken, in order, each plant exactly once.
            let sizes = await h.sandbox.writes().map { $0.objects.arrayValue?.count ?? 0 }
            #expect(sizes == [2, 3, 2, 3])
            let labels = await h.appliedWrites().map(\.label)
            #expect(labels.sorted() == (111...120).map(Tags.plant).sorted())
            #expect(h.daemon.log.components(separatedBy: "Metrc asked for smaller requests").count - 1 == 3)
        }
    }

    @Test func storeKeySealsPersonalKeysAndUploadsStillSignAsTheCollector() async throws {
        try await UploadHarness.run(store: "key_file = \"secrets/store-key\"", prepare: { dir in
            try dir.write("secrets/store-key", String(repeating: "5e", count: 32) + "\n")
        }) { h in
            try await h.send("sealed-1", user: "jane", events: [Events.move(1, plant: Tags.plant(145))])
            try await h.waitFor(["sealed-1"], states: ["uploaded"])
            #expect(await h.appliedWrites().contains { $0.user == "jane" && $0.label == Tags.plant(145) })
            let state = h.daemon.directory.file("state")
            // Every file the daemon writes there, in folders too (the retention archives).
            let files = try #require(FileManager.default.subpathsOfDirectory(atPath: state) as [String]?)
            var read = 0
            for file in files {
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: state + "/" + file, isDirectory: &isFolder), !isFolder.boolValue else { continue }
                let bytes = try Data(contentsOf: URL(fileURLWithPath: state + "/" + file))
                #expect(bytes.range(of: Data(SandboxDemo.janeKey.utf8)) == nil, "jane's key in \(file)")
                read += 1
            }
            #expect(read > 0, "no file read in \(state)")
        }
    }
}
