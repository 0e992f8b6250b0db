import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// The tablet's Manicure and Waste functions through the real daemon into the sandbox: signed like every
/// other event, kept in order per plant, and applied exactly once whatever happens to the request.
@Suite("Manicure and waste, end to end", .serialized, .timeLimit(.minutes(5)))
struct ManicureAndWasteTests {
    /// How many times each plant was manicured and wasted, from the sandbox's write log.
    func applications(_ h: UploadHarness) async -> (manicures: [String: Int], wastes: [String: Int]) {
        var manicures: [String: Int] = [:]
        var wastes: [String: Int] = [:]
        for write in await h.appliedWrites() {
            if write.action == "manicurePlants" { manicures[write.label, default: 0] += 1 }
            if write.action == "wastePlants" { wastes[write.label, default: 0] += 1 }
        }
        return (manicures, wastes)
    }

    @Test func eachIsSignedByItsCollectorsKey() async throws {
        try await UploadHarness.run { h in
            try await h.send("jane-m", user: "jane", events: [Events.manicure(1, plant: Tags.plant(151))])
            try await h.send("john-w", user: "john", events: [Events.waste(1, plants: [Tags.plant(10), Tags.plant(11), Tags.plant(12)])])
            try await h.waitFor(["jane-m", "john-w"], states: ["uploaded"])
            let writes = await h.appliedWrites()
            #expect(writes.filter { $0.action == "manicurePlants" }.map(\.user) == ["jane"])
            #expect(writes.filter { $0.action == "wastePlants" }.map(\.user) == ["owner", "owner", "owner"])
            #expect(Set(writes.filter { $0.action == "wastePlants" }.map(\.label)) == [Tags.plant(10), Tags.plant(11), Tags.plant(12)])
            // One waste record for the three plants, not three.
            #expect(await h.sandbox.writes().filter { $0.action.rawValue == "wastePlants" }.count == 1)
        }
    }

    @Test func aWasteOfThreePlantsWaitsForAMoveOfOneAndADestroyOfAnotherWaitsForIt() async throws {
        try await UploadHarness.run { h in
            try await h.send("order", user: "jane", events: [
                Events.move(1, plant: Tags.plant(20), to: "Flower Room 1"),
                Events.waste(2, plants: [Tags.plant(20), Tags.plant(21), Tags.plant(22)]),
                Events.destroy(3, plant: Tags.plant(21)),
            ])
            try await h.waitFor(["order"], states: ["uploaded"])
            let actions = await h.sandbox.writes().map(\.action.rawValue)
            #expect(actions == ["movePlants", "wastePlants", "destroyPlants"])
        }
    }

    @Test func aBadReasonAndAnUnknownDryingLocationFailWithMetrcsMessageAndTheRestGoesThrough() async throws {
        try await UploadHarness.run { h in
            try await h.send("mixed", user: "jane", events: [
                Events.manicure(1, plant: Tags.plant(152)),
                Events.manicure(2, plant: Tags.plant(153), dryingLocation: "Nowhere Room"),
                Events.waste(3, plants: [Tags.plant(30)]),
                Events.waste(4, plants: [Tags.plant(31)], reason: "Other"),
            ])
            let status = try await h.waitFor(["mixed"], states: ["partial", "failed", "uploaded"], timeout: 60)
            let item = try #require(status["mixed"])
            #expect(item["state"] as? String == "partial")
            let errors = (item["errors"] as? [[String: Any]] ?? []).map { ($0["seq"] as? Int ?? 0, $0["message"] as? String ?? "") }
            #expect(errors.map(\.0) == [2, 4])
            #expect(errors.first?.1.contains("Nowhere Room") == true, "\(errors)")
            #expect(errors.last?.1.hasPrefix("Metrc:") == true && errors.last?.1.lowercased().contains("note") == true, "\(errors)")
            let (manicures, wastes) = await applications(h)
            #expect(manicures == [Tags.plant(152): 1])
            #expect(wastes == [Tags.plant(30): 1])
            // outlawctl failed shows the same messages, for the replay script.
            let failed = try await h.daemon.ctl(["failed"])
            #expect(failed.stdout.contains("Nowhere Room"))
        }
    }

    @Test(arguments: [false, true])
    func appliedThenFailedIsReadBackAndAppliedOnce(drop: Bool) async throws {
        try await UploadHarness.run { h in
            try await h.sandbox.setFaults(.applyThenFail(status: 500, drop: drop, count: 1, path: "/plants/v2/manicure"),
                                          .applyThenFail(status: 503, drop: drop, count: 1, path: "/plants/v2/waste"))
            try await h.send("atf", user: "jane", events: [
                Events.manicure(1, plant: Tags.plant(160)),
                Events.waste(2, plants: [Tags.plant(40), Tags.plant(41)]),
            ])
            try await h.waitFor(["atf"], states: ["uploaded"], timeout: 60)
            let (manicures, wastes) = await applications(h)
            #expect(manicures == [Tags.plant(160): 1])
            #expect(wastes == [Tags.plant(40): 1, Tags.plant(41): 1])
            #expect(h.daemon.log.contains("read Metrc back"))
        }
    }

    @Test func kill9DuringUploadsAppliesEveryManicureAndWasteOnce() async throws {
        // The request timeout outlasts the sandbox's hold on the write in flight at the kill.
        try await UploadHarness.run(metrc: "objects_per_request = 3\nconcurrency = 2", requestTimeout: 20) { h in
            // Slow Metrc down so that more requests are in flight at the kill than the one held.
            try await h.sandbox.setFaults(.latency(milliseconds: 300))
            // Paused while the batches are stored, so that the first write waits for the hold set below.
            #expect(try await h.daemon.ctl(["pause"]).status == 0)
            var ids: [String] = []
            for b in 0..<4 {
                let manicures = (0..<3).map { Events.manicure($0 + 1, plant: Tags.plant(170 + b * 3 + $0)) }
                let wastes = (0..<3).map { Events.waste($0 + 4, plants: [Tags.plant(50 + b * 3 + $0)]) }
                try await h.send("k-\(b)", user: b % 2 == 0 ? "jane" : "john", events: manicures + wastes)
                ids.append("k-\(b)")
            }
            // Killed with a manicure or waste POST at Metrc, applied there after the kill, its answer never read.
            try await h.kill9WithAWriteInFlight(method: "POST") { () async throws in
                #expect(try await h.daemon.ctl(["resume"]).status == 0)
            }
            try await h.daemon.start()
            try await eventually("the restarted daemon to find the writes in flight", detail: { h.daemon.log }) {
                h.daemon.log.contains("events were being uploaded when outlawd stopped") ? true : nil
            }
            try await h.waitFor(ids, states: ["uploaded"], timeout: 90)
            // What Metrc applied after the kill was found by reading it back, not sent again.
            #expect(h.daemon.log.range(of: #"read Metrc back[^\n]* applied=[1-9]"#, options: .regularExpression) != nil,
                    "\(h.daemon.log.suffix(3000))")
            let (manicures, wastes) = await applications(h)
            #expect(manicures == Dictionary(uniqueKeysWithValues: (170..<182).map { (Tags.plant($0), 1) }))
            #expect(wastes == Dictionary(uniqueKeysWithValues: (50..<62).map { (Tags.plant($0), 1) }))
        }
    }
}
