import Foundation
import OutlawTestSupport
import Testing

@Suite("Crash safety and the command line", .serialized, .timeLimit(.minutes(5)))
struct CrashAndCLITests {
    @Test func everyAckedBatchSurvivesKill9ExactlyOnce() async throws {
        try await DeviceProtocolTests.withDaemon { d, token in
            // Several connections pipelining at once, so acks come from group commits.
            let acked = try await withThrowingTaskGroup(of: [String].self) { group in
                for conn in 0..<4 {
                    group.addTask {
                        let (c, _) = try await d.session(device: "HH-1", token: token)
                        var ids: [String] = []
                        for i in 0..<25 {
                            try c.send(json: DeviceProtocolTests.batch("k-\(conn)-\(i)", events: (1...10).map { DeviceProtocolTests.harvest(seq: $0) }))
                        }
                        for _ in 0..<25 {
                            let m = try await c.readJSON()
                            if m["op"] as? String == "ack", let id = m["id"] as? String { ids.append(id) }
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(acked.count == 100)
            await d.kill9()
            try await d.start()
            // Resending everything after the crash, as devices do, stores nothing twice.
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send(json: DeviceProtocolTests.batch("k-0-0", events: (1...10).map { DeviceProtocolTests.harvest(seq: $0) }))
            #expect(try await c.readJSON()["duplicate"] as? Bool == true)
            let listed = try await d.ctl(["batches", "--json"])
            let batches = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]] ?? []
            let ids = batches.compactMap { $0["id"] as? String }
            #expect(ids.count == Set(ids).count)
            #expect(Set(ids) == Set(acked))
            #expect(batches.allSatisfy { ($0["events"] as? [String: Any])?["total"] as? Int == 10 })
        }
    }

    @Test func sigtermStopsCleanly() async throws {
        try await DeviceProtocolTests.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            #expect(await d.stop() == 0)
            #expect(try await c.readJSON()["op"] as? String == "bye")
            #expect(await c.waitForClose())
        }
    }

    @Test func badConfigIsOneLineAndExit2() async throws {
        let dir = try TempDirectory()
        let path = try dir.write("outlawd.toml", "[server]\nwindow = 0\n")
        let r = try await runCommand(Binaries.path("outlawd"), ["--config", path])
        #expect(r.status == 2)
        #expect(r.stderr == "outlawd: \(path): server.window: must be from 1 to 1024, not 0\n")
        let missing = try await runCommand(Binaries.path("outlawd"), ["--config", dir.file("nope.toml")])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("nope.toml: no such file"))
    }

    @Test func outlawctlExitCodesAndListings() async throws {
        try await DeviceProtocolTests.withDaemon { d, _ in
            #expect(try await d.ctl(["device", "add", "HH-1"]).status == 1)  // exists already
            #expect(try await d.ctl(["user", "add", "x", "--role", "boss"], stdin: "1234\n").status == 2)
            #expect(try await d.ctl(["frobnicate"]).status == 2)
            let help = try await runCommand(Binaries.path("outlawctl"), ["--help"])
            #expect(help.status == 0 && help.stdout.contains("replay"))
            // --config before the subcommand works too.
            let early = try await runCommand(Binaries.path("outlawctl"), ["--config", d.configPath, "device", "list"])
            #expect(early.status == 0 && early.stdout.contains("HH-1"))
            #expect(try await d.ctl(["batch", "show", "HH-1", "nope"]).status == 1)
            #expect(try await d.ctl(["batches", "--state", "bogus"]).status == 2)
            let users = try await d.ctl(["user", "list"])
            #expect(users.status == 0 && users.stdout.contains("jane") && users.stdout.contains("admin"))
            let devices = try await d.ctl(["device", "list", "--json"])
            #expect(devices.stdout.contains("\"HH-1\""))
            #expect(!devices.stdout.contains("token"))
            let audit = try await d.ctl(["audit"])
            #expect(audit.stdout.contains("device.add") && audit.stdout.contains("user.add"))
            let noConfig = try await runCommand(Binaries.path("outlawctl"), ["device", "list", "--config", "/nonexistent.toml"])
            #expect(noConfig.status == 2)
        }
    }

    @Test func batchShowNamesTheCollector() async throws {
        try await DeviceProtocolTests.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send(json: DeviceProtocolTests.batch("show-me", user: "john", events: [DeviceProtocolTests.harvest(seq: 1)]))
            #expect(try await c.readJSON()["op"] as? String == "ack")
            let shown = try await d.ctl(["batch", "show", "HH-1", "show-me", "--json"])
            #expect(shown.status == 0)
            let detail = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any]
            let events = detail?["events"] as? [[String: Any]]
            #expect(events?.first?["user"] as? String == "john")
            #expect(events?.first?["state"] as? String == "queued")
            #expect((detail?["batch"] as? [String: Any])?["user"] as? String == "john")
        }
    }
}
