import Foundation
import OutlawTestSupport
import Testing

/// The audit chain with the real binaries: the daemon's start row and the head it logs (the journal's witness;
/// stderr here), `outlawctl audit verify`, and an edit made with the sqlite3 shell behind the daemon's back.
@Suite("Audit chain, end to end", .serialized, .timeLimit(.minutes(5)))
struct AuditTests {
    /// The id and full hash of the last "audit chain head" line in the daemon's log.
    static func loggedHead(_ log: String) throws -> (id: String, hash: String) {
        let line = try #require(log.split(separator: "\n").last { $0.contains("audit chain head") }, "no head line in: \(log)")
        func value(_ key: String) throws -> String {
            let range = try #require(line.range(of: key + #"=[0-9a-f]+"#, options: .regularExpression), "\(key) missing: \(line)")
            return String(line[range].dropFirst(key.count + 1))
        }
        return (try value("audit_head_id"), try value("audit_head_hash"))
    }

    @Test func verifyNamesTheLoggedHeadAndAnEditedRow() async throws {
        let d = try await DaemonProcess(server: "")  // from a config file (`DaemonProcess()` is dev mode)
        try await d.whileRunning { d in
            // The daemon's first act on a new store: the daemon.start row, whose head it logs.
            var logged = try Self.loggedHead(d.log)
            #expect(logged.id == "1" && logged.hash.count == 64)
            var verified = try await d.ctl(["audit", "verify"])
            #expect(verified.status == 0, "\(verified.stderr)")
            #expect(verified.stdout == "audit chain intact: 1 row, head #1 \(logged.hash.prefix(16))\n")

            // The start row names the configuration file and the SHA-256 of its bytes.
            let sum = try await runCommand("/usr/bin/sha256sum", [d.configPath])
            let digest = try #require(sum.stdout.split(separator: " ").first.map(String.init))
            let listed = try await d.ctl(["audit", "--json"])
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
            let start = try #require(entries.first { $0["action"] as? String == "daemon.start" })
            #expect(start["subject"] as? String == d.configPath)
            #expect(start["detail"] as? String == "version=0.1.0 config_sha256=\(digest)")

            // outlawctl's rows and a restart extend the chain; the restart logs the new head, which verify names.
            try await d.addCrew(users: [CrewMember("jane")])
            #expect(await d.stop() == 0, "the daily head loop ends on SIGTERM")
            try await d.start()
            logged = try Self.loggedHead(d.log)
            #expect(logged.id == "4")
            verified = try await d.ctl(["audit", "verify", "--json"])
            #expect(verified.status == 0)
            let report = try #require(try JSONSerialization.jsonObject(with: Data(verified.stdout.utf8)) as? [String: Any])
            #expect(report["intact"] as? Bool == true && report["rows"] as? Int == 4)
            let head = try #require(report["head"] as? [String: Any])
            #expect(head["id"] as? Int == 4 && head["hash"] as? String == logged.hash)

            // An edit with the sqlite3 shell, the append-only trigger dropped first, while the daemon runs.
            let sqlite3 = "/usr/bin/sqlite3"
            try #require(FileManager.default.isExecutableFile(atPath: sqlite3), "needs the sqlite3 package (scripts/bootstrap --test)")
            let edit = try await runCommand(sqlite3, [d.directory.file("state/outlawd.sqlite"),
                                                      "DROP TRIGGER audit_no_update; UPDATE audit SET actor='mallory' WHERE id=2;"])
            try #require(edit.status == 0, "\(edit.stderr)")
            let broken = try await d.ctl(["audit", "verify"])
            #expect(broken.status == 1)
            #expect(broken.stdout.isEmpty)
            #expect(broken.stderr == "outlawctl: audit chain broken at row 2: its content does not match its hash (edited?); 1 row before it verified\n")
            let brokenJSON = try await d.ctl(["audit", "verify", "--json"])
            #expect(brokenJSON.status == 1)
            let bad = (try JSONSerialization.jsonObject(with: Data(brokenJSON.stdout.utf8)) as? [String: Any])?["firstBad"] as? [String: Any]
            #expect(bad?["id"] as? Int == 2 && bad?["kind"] as? String == "content")

            // The listing is still the plain command, with its options.
            let list = try await d.ctl(["audit", "--limit", "3"])
            #expect(list.status == 0 && list.stdout.contains("mallory") && list.stdout.contains("daemon.start"))
            #expect(await d.stop() == 0)
        }
    }
}
