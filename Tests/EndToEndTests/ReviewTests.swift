import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// The review gate with the real daemon, outlawctl and the sandbox: events `[review]` names wait (`review` in
/// the device's `status`) until a person approves them, in their place in the order per tag, or rejects them,
/// and then they never reach Metrc; both decisions are audited with the operator.
@Suite("Review gate, end to end", .serialized, .timeLimit(.minutes(5)))
struct ReviewTests {
    static let operatorName = "review-op"

    /// outlawctl as an operator who came through sudo (the audit names `$SUDO_USER`).
    func ctl(_ h: UploadHarness, _ arguments: [String]) async throws -> CommandResult {
        var env = ProcessInfo.processInfo.environment
        env["SUDO_USER"] = Self.operatorName
        return try await runCommand(Binaries.path("outlawctl"), arguments + ["--config", h.daemon.configPath], environment: env)
    }

    /// Waits until Metrc applied a write for `label`.
    func waitForWrite(_ h: UploadHarness, label: String, timeout: Duration = .seconds(30)) async throws {
        try await eventually("a write for \(label)", timeout: timeout, every: .milliseconds(100),
                             detail: { "--- daemon log ---\n\(h.daemon.log.suffix(4000))" }) {
            await h.appliedWrites().contains(where: { $0.label == label }) ? true : nil
        }
    }

    func reviewRows(_ h: UploadHarness) async throws -> [[String: Any]] {
        let r = try await ctl(h, ["review", "list", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    }

    @Test func approveKeepsTheOrderPerTagAndRejectNeverReachesMetrc() async throws {
        // Flowering plants (151...300), so the harvest is one Metrc takes.
        let (p80, p81, p82) = (Tags.plant(230), Tags.plant(231), Tags.plant(232))
        try await UploadHarness.run(review: "event_types = [\"plant.destroy\"]\nusers = [\"john\"]") { h in
            // John's events wait for review; Jane's later harvest of p80 waits behind John's move of it.
            try await h.send("rv-john", user: "john", events: [Events.move(1, plant: p80), Events.move(2, plant: p82)])
            try await h.send("rv-jane", user: "jane", events: [Events.harvest(1, plant: p80), Events.move(2, plant: p81)])
            try await waitForWrite(h, label: p81)
            // Metrc's write log has p81 before the daemon has recorded Metrc's answer: wait for the record too.
            try await h.waitFor(["rv-jane"], states: ["uploading"])
            var status = try await h.status(["rv-john", "rv-jane"])
            #expect(status["rv-john"]?["state"] as? String == "review")
            #expect(status["rv-john"]?["reason"] as? String == "2 events wait for review")
            #expect((status["rv-john"]?["events"] as? [String: Any])?["pending"] as? Int == 2)
            #expect(status["rv-jane"]?["state"] as? String == "uploading")
            // A whole upload pass began after the batches were in review, and sent nothing of them.
            try await h.daemon.waitForUploadPasses()
            #expect(await h.appliedWrites().map(\.label) == [p81], "nothing of p80 or p82 went while in review")

            let list = try await ctl(h, ["review", "list"])
            #expect(list.status == 0 && list.stdout.contains("rv-john") && list.stdout.contains("john") && list.stdout.contains(p80))
            let rows = try await reviewRows(h)
            #expect(rows.count == 1 && rows.first?["id"] as? String == "rv-john" && rows.first?["user"] as? String == "john")
            #expect((rows.first?["events"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == [1, 2])
            let ctlStatus = try await ctl(h, ["status"])
            #expect(ctlStatus.stdout.contains("2 in review"), "\(ctlStatus.stdout)")
            let batches = try await ctl(h, ["batches", "--state", "review"])
            #expect(batches.stdout.contains("rv-john") && !batches.stdout.contains("rv-jane"))

            // Approving the move of p80 lets it go first, then Jane's harvest of p80 after it.
            let approve = try await ctl(h, ["review", "approve", "HH-1", "rv-john", "--events", "1"])
            #expect(approve.status == 0, "\(approve.stderr)")
            #expect(approve.stdout == "approved HH-1 rv-john: seq 1\n")
            try await h.waitFor(["rv-jane"], states: ["uploaded"])
            let p80Writes = await h.appliedWrites().filter { $0.label == p80 }
            #expect(p80Writes.map(\.action) == ["movePlants", "harvestPlants"])
            #expect(p80Writes.map(\.user) == ["owner", "jane"])
            status = try await h.status(["rv-john"])
            #expect(status["rv-john"]?["state"] as? String == "review", "seq 2 still waits")

            // Rejecting the rest: it never reaches Metrc; the device sees it as a failure with the reason.
            let reject = try await ctl(h, ["review", "reject", "HH-1", "rv-john", "--reason", "wrong plant"])
            #expect(reject.status == 0, "\(reject.stderr)")
            #expect(reject.stdout == "rejected HH-1 rv-john: seq 2 (wrong plant)\n")
            status = try await h.waitFor(["rv-john"], states: ["partial"], timeout: 10)
            let events = status["rv-john"]?["events"] as? [String: Any]
            #expect(events?["uploaded"] as? Int == 1 && events?["failed"] as? Int == 1 && events?["pending"] as? Int == 0)
            let errors = status["rv-john"]?["errors"] as? [[String: Any]]
            #expect(errors?.first?["seq"] as? Int == 2)
            #expect(errors?.first?["message"] as? String == "rejected in review by \(Self.operatorName): wrong plant")
            // A whole upload pass began after the rejection, and did not send it.
            try await h.daemon.waitForUploadPasses()
            #expect(!(await h.appliedWrites().contains { $0.label == p82 }))
            #expect(await h.appliedWrites().map(\.label).sorted() == [p80, p80, p81].sorted())
            #expect(try await reviewRows(h).isEmpty)
            #expect(try await ctl(h, ["review", "list"]).stdout == "no events in review\n")

            // Both decisions are in the audit table with the operator, and the chain holds.
            let audit = try await ctl(h, ["audit", "--json"])
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]])
            let decisions = entries.filter { ($0["action"] as? String)?.hasPrefix("review.") == true }
            #expect(decisions.map { $0["action"] as? String } == ["review.reject", "review.approve"])
            #expect(decisions.allSatisfy { $0["actor"] as? String == Self.operatorName && $0["subject"] as? String == "HH-1:rv-john" })
            #expect(decisions.first?["detail"] as? String == "seq 2 rejected: wrong plant")
            #expect(decisions.last?["detail"] as? String == "seq 1 approved")
            #expect(try await ctl(h, ["audit", "verify"]).status == 0)
        }
    }

    /// A destroy rejected in review never reaches Metrc, and the later move of the same plant, which waited for
    /// the decision, goes; mistakes in the command change nothing.
    @Test func aRejectedDestroyNeverReachesMetrcAndTheLaterMoveGoes() async throws {
        let (p84, p85, p86) = (Tags.plant(84), Tags.plant(85), Tags.plant(86))
        try await UploadHarness.run(review: "event_types = [\"plant.destroy\"]") { h in
            try await h.send("rv-d", user: "jane", events: [Events.destroy(1, plant: p84), Events.move(2, plant: p84),
                                                             Events.scan(3, plant: p85), Events.move(4, plant: p86)])
            try await waitForWrite(h, label: p86)
            #expect(try await h.status(["rv-d"])["rv-d"]?["state"] as? String == "review")
            #expect(await h.appliedWrites().map(\.label) == [p86])

            let notInReview = try await ctl(h, ["review", "approve", "HH-1", "rv-d", "--events", "2"])
            #expect(notInReview.status == 1)
            #expect(notInReview.stderr == "outlawctl: HH-1:rv-d: seq 2 is queued, not in review; nothing changed\n")
            #expect(try await ctl(h, ["review", "reject", "HH-1", "rv-d"]).status == 2, "a rejection needs --reason")
            #expect(try await ctl(h, ["review", "approve", "HH-1", "nope"]).status == 1)
            #expect(try await ctl(h, ["review", "approve", "HH-1", "rv-d", "--events", "x"]).status == 2)
            #expect(try await h.status(["rv-d"])["rv-d"]?["state"] as? String == "review")

            let reject = try await ctl(h, ["review", "reject", "HH-1", "rv-d", "--events", "1", "--reason", "not dead yet"])
            #expect(reject.status == 0, "\(reject.stderr)")
            try await h.waitFor(["rv-d"], states: ["partial"], timeout: 10)
            let writes = await h.appliedWrites()
            #expect(!writes.contains { $0.action == "destroyPlants" }, "the rejected destroy never reached Metrc")
            #expect(writes.filter { $0.label == p84 }.map(\.action) == ["movePlants"])
            let again = try await ctl(h, ["review", "approve", "HH-1", "rv-d"])
            #expect(again.status == 1 && again.stderr == "outlawctl: HH-1:rv-d has no events in review\n")
            let show = try await ctl(h, ["batch", "show", "HH-1", "rv-d"])
            #expect(show.stdout.contains("rejected") && show.stdout.contains("not dead yet"))
            // Replay does not bring it back either.
            #expect(try await ctl(h, ["replay", "HH-1", "rv-d"]).stdout.contains("0 events requeued"))
            let failed = try await ctl(h, ["failed"])
            #expect(!failed.stdout.contains("rv-d"))
        }
    }
}
