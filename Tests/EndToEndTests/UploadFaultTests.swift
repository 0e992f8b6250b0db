import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// Metrc misbehaving: everything still arrives, exactly once.
@Suite("Uploads under Metrc faults", .serialized, .timeLimit(.minutes(5)))
struct UploadFaultTests {
    func events(_ n: Int, from: Int = 1) -> [[String: Any]] {
        (0..<n).map { Events.move($0 + 1, plant: Tags.plant(from + $0)) }
    }

    func expectExactlyOnce(_ h: UploadHarness, labels: [String]) async {
        let applied = await h.appliedWrites().map(\.label)
        for label in labels { #expect(applied.filter { $0 == label }.count == 1, "\(label) applied \(applied.filter { $0 == label }.count) times") }
    }

    @Test(arguments: ["500", "503", "429", "400message", "outage", "hang"])
    func everythingArrivesOnce(fault: String) async throws {
        // A move is sent again, unread, after a request timed out: so only the hang may time out here. The
        // sandbox answering late on a loaded machine must not, or it applies the timed-out move and its resend.
        try await UploadHarness.run(sandboxConfiguration: SandboxConfiguration(), requestTimeout: fault == "hang" ? 3 : 20) { h in
            switch fault {
            case "500": try await h.sandbox.setFaults(.error(status: 500, count: 2))
            case "503": try await h.sandbox.setFaults(.error(status: 503, count: 2))
            case "429": try await h.sandbox.setFaults(.error(status: 429, count: 2))
            case "400message": try await h.sandbox.setFaults(.error(status: 400, message: "An unexpected error has occurred.", count: 2))
            case "outage": try await h.sandbox.setFaults(.outage(mode: .reset, count: 3))
            default: try await h.sandbox.setFaults(.hang(count: 1, method: "PUT"))
            }
            try await h.send("f-jane", user: "jane", events: events(5, from: 80))
            try await h.send("f-john", user: "john", events: events(5, from: 90))
            try await h.waitFor(["f-jane", "f-john"], states: ["uploaded"], timeout: 60)
            await expectExactlyOnce(h, labels: (80..<85).map(Tags.plant) + (90..<95).map(Tags.plant))
        }
    }

    @Test(arguments: [false, true])
    func applyThenFailOnAnAdjustmentAppliesItOnce(drop: Bool) async throws {
        try await UploadHarness.run() { h in
            let before = await h.sandbox.package(label: Tags.gramPackage(5))?.quantity ?? 0
            try await h.sandbox.setFaults(.applyThenFail(status: 500, drop: drop, count: 1, method: "POST"))
            try await h.send("adj", user: "jane", events: [Events.adjust(1, package: Tags.gramPackage(5), quantity: -3)])
            try await h.waitFor(["adj"], states: ["uploaded"], timeout: 60)
            let after = await h.sandbox.package(label: Tags.gramPackage(5))?.quantity ?? 0
            #expect(after == before - 3)
            #expect(await h.sandbox.adjustments(license: SandboxDemo.license).filter { $0.packageLabel == Tags.gramPackage(5) }.count == 1)
        }
    }

    @Test func kill9DuringUploadsLosesNothingAndDuplicatesNothing() async throws {
        // The request timeout outlasts the sandbox's hold on the write in flight at the kill.
        try await UploadHarness.run(metrc: "objects_per_request = 5\nconcurrency = 2", requestTimeout: 20) { h in
            // Slow Metrc down so that more requests are in flight at the kill than the one held.
            try await h.sandbox.setFaults(.latency(milliseconds: 300))
            // Paused while the batches are stored, so that the first write waits for the hold set below.
            #expect(try await h.daemon.ctl(["pause"]).status == 0)
            var all: [String] = []
            for b in 0..<6 {
                let plants = (0..<5).map { Events.move($0 + 1, plant: Tags.plant(100 + b * 5 + $0)) }
                let adjusts = (0..<5).map { Events.adjust($0 + 6, package: Tags.gramPackage(30 + b * 5 + $0), quantity: -1) }
                try await h.send("k-\(b)", user: b % 2 == 0 ? "jane" : "john", events: plants + adjusts)
                all.append("k-\(b)")
            }
            // Killed with an adjustment (not idempotent) at Metrc, applied there after the kill, its answer never read.
            try await h.kill9WithAWriteInFlight(method: "POST") { () async throws in
                #expect(try await h.daemon.ctl(["resume"]).status == 0)
            }
            try await h.daemon.start()
            try await eventually("the restarted daemon to find the writes in flight", detail: { h.daemon.log }) {
                h.daemon.log.contains("events were being uploaded when outlawd stopped") ? true : nil
            }
            try await h.waitFor(all, states: ["uploaded"], timeout: 90)
            // What Metrc applied after the kill was found by reading it back, not sent again.
            #expect(h.daemon.log.range(of: #"read Metrc back[^\n]* applied=[1-9]"#, options: .regularExpression) != nil,
                    "\(h.daemon.log.suffix(3000))")
            await expectExactlyOnce(h, labels: (100..<130).map(Tags.plant) + (30..<60).map(Tags.gramPackage))
            let adjustments = await h.sandbox.adjustments(license: SandboxDemo.license)
            for k in 30..<60 {
                #expect(adjustments.filter { $0.packageLabel == Tags.gramPackage(k) }.count == 1)
            }
        }
    }
}
