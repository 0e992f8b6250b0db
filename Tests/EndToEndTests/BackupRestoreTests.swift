import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// `outlawctl backup` while handhelds send and uploads run, then `outlawctl restore` of that copy: the daemon on the
/// restored store knows every batch acked before the backup, takes again those acked after it, and Metrc gets every
/// event exactly once, adjustments (not idempotent) included.
@Suite("Backup and restore with a running daemon", .serialized, .timeLimit(.minutes(6)))
struct BackupRestoreTests {
    /// Batch `b`: three adjustments of its own packages and three moves of its own plants.
    static func events(_ b: Int) -> [[String: Any]] {
        (0..<3).map { Events.adjust($0 + 1, package: Tags.gramPackage(60 + b * 3 + $0), quantity: -1) }
            + (0..<3).map { Events.move($0 + 4, plant: Tags.plant(200 + b * 3 + $0)) }
    }

    static func user(_ b: Int) -> String { b % 2 == 0 ? "jane" : "john" }

    /// Sends batch `b` on a fresh session; its ack.
    static func send(_ h: UploadHarness, _ b: Int, prefix: String) async throws -> [String: Any] {
        let (c, _) = try await h.daemon.session(device: "HH-1", token: h.token)
        try c.send(json: ["op": "batch", "id": "\(prefix)-\(b)", "user": user(b), "events": events(b)])
        return try await c.readJSON()
    }

    @Test func aDaemonOnARestoredCopyServesWhatWasAckedAndMetrcGetsEveryEventOnce() async throws {
        try await UploadHarness.run(metrc: "objects_per_request = 3\nconcurrency = 2", requestTimeout: 20) { h in
            // Metrc answers slowly: uploads are still going on while the copy is taken.
            try await h.sandbox.setFaults(.latency(milliseconds: 150))
            let beforeIDs = (0..<6).map { "before-\($0)" }
            for b in 0..<6 { #expect(try await Self.send(h, b, prefix: "before")["op"] as? String == "ack") }
            let copy = h.daemon.directory.file("backups/outlawd-copy.sqlite")
            let backup = try await h.daemon.ctl(["backup", copy, "--json"])
            try #require(backup.status == 0, "outlawctl backup: \(backup.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])
            #expect((report["bytes"] as? Int ?? 0) > 0 && report["current_schema"] as? Bool == true, "\(report)")
            let verified = try await h.daemon.ctl(["verify-backup", copy])
            #expect(verified.status == 0 && verified.stdout.contains("chain intact"), "\(verified.stdout)\(verified.stderr)")

            let afterIDs = (6..<10).map { "after-\($0)" }
            for b in 6..<10 { #expect(try await Self.send(h, b, prefix: "after")["op"] as? String == "ack") }
            try await h.waitFor(beforeIDs + afterIDs, states: ["uploaded"], timeout: 120)

            // Refused while outlawd runs, changing nothing.
            let refused = try await h.daemon.ctl(["restore", copy])
            #expect(refused.status == 1 && refused.stderr.contains("outlawd is running"), "\(refused.stderr)")
            #expect(await h.daemon.stop() == 0)
            let restored = try await h.daemon.ctl(["restore", copy])
            try #require(restored.status == 0, "outlawctl restore: \(restored.stderr)")
            #expect(restored.stdout.contains("the replaced store is kept at"))
            try await h.daemon.start()

            // Acked before the backup: known (a resend is a duplicate). Acked after: not in the copy, so taken again.
            for b in 0..<6 { #expect(try await Self.send(h, b, prefix: "before")["duplicate"] as? Bool == true, "before-\(b)") }
            for b in 6..<10 {
                let ack = try await Self.send(h, b, prefix: "after")
                #expect(ack["op"] as? String == "ack" && ack["duplicate"] as? Bool == false, "after-\(b): \(ack)")
            }
            try await h.waitFor(beforeIDs + afterIDs, states: ["uploaded"], timeout: 120)

            // Every adjustment applied once at Metrc, and every move sent once: what the replaced store had uploaded
            // was read back, not sent again.
            let adjustments = await h.sandbox.adjustments(license: SandboxDemo.license)
            for k in 0..<30 {
                let label = Tags.gramPackage(60 + k)
                #expect(adjustments.filter { $0.packageLabel == label }.count == 1, "\(label) adjusted \(adjustments.filter { $0.packageLabel == label }.count) times")
            }
            let moves = await h.appliedWrites().filter { $0.action == "movePlants" }.map(\.label)
            for k in 0..<30 {
                let label = Tags.plant(200 + k)
                #expect(moves.filter { $0 == label }.count == 1, "\(label) moved \(moves.filter { $0 == label }.count) times")
            }
            // The audit names the backup (in the store that was replaced) and the restore.
            let audit = try await h.daemon.ctl(["audit", "--limit", "50"])
            #expect(audit.stdout.contains("store.restore"), "\(audit.stdout)")
        }
    }

    @Test func aTruncatedCopyIsRefusedWithItsReasonAndTheStoreStaysAsItWas() async throws {
        try await DaemonProcess.withCrew { d, _ in
            let copy = d.directory.file("copy.sqlite")
            #expect(try await d.ctl(["backup", copy]).status == 0)
            await d.expectCleanStop()
            let bytes = try Data(contentsOf: URL(fileURLWithPath: copy))
            let truncated = d.directory.file("truncated.sqlite")
            _ = FileManager.default.createFile(atPath: truncated, contents: bytes.prefix(bytes.count / 3))
            let refused = try await d.ctl(["restore", truncated])
            #expect(refused.status == 1 && refused.stderr.contains("corrupted"), "\(refused.stderr)")
            // Nothing was replaced: the crew is still there and nothing was put aside.
            try await d.start()
            #expect(try await d.ctl(["user", "list"]).stdout.contains(Crew.users[0].name))
            let aside = (FileManager.default.enumerator(atPath: d.directory.path)?.allObjects as? [String] ?? []).filter { $0.contains("replaced") }
            #expect(aside.isEmpty, "\(aside)")
        }
    }
}
