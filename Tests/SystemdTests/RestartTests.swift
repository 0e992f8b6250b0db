import Foundation
import Testing

/// `systemctl restart outlawd` while handhelds are sending, under a real systemd with socket activation:
/// the listening socket stays with systemd, so no connection is refused, and a stopping daemon answers
/// every batch it committed before it goes. Prints its figures.
@Suite("Restarts under load", .enabled(if: SystemdBox.available && RealSystemdTests.outlawdBuilt, "needs root, systemd and the built outlawd"))
struct RestartTests {
    static let handhelds = 4
    static let restarts = 10

    @Test func tenRestartsRefuseNoConnectionAndLoseNoAckedBatch() async throws {
        let build = TestSupport.buildDirectory
        let root = TestSupport.repositoryRoot()
        let work = try TestSupport.makeTempDir("sdrestart")
        defer { TestSupport.removeTree(work) }
        let port = try TestSupport.freePort()
        let config = "/etc/outlawd/outlawd.toml"
        try """
            [server]
            listen = "127.0.0.1:\(port)"

            [store]
            path = "/var/lib/outlawd/outlaw.sqlite"

            [facility]
            license = "LIC-0001"

            """.write(toFile: work + "/outlawd.toml", atomically: true, encoding: .utf8)
        try "vendor-key-for-tests\n".write(toFile: work + "/metrc-vendor-key", atomically: true, encoding: .utf8)
        try "default-key-for-tests\n".write(toFile: work + "/metrc-default-key", atomically: true, encoding: .utf8)
        // Test-only drop-ins: a free loopback port (the box shares the host's network), and no start limit,
        // which would otherwise stop a unit restarted more than 5 times in 10 s, as on any host.
        try "[Socket]\nListenStream=\nListenStream=127.0.0.1:\(port)\n"
            .write(toFile: work + "/socket-port.conf", atomically: true, encoding: .utf8)
        try "[Unit]\nStartLimitIntervalSec=0\n".write(toFile: work + "/no-start-limit.conf", atomically: true, encoding: .utf8)

        let box = try await SystemdBox.start([
            "--unit", root + "/systemd/outlawd.service", "--unit", root + "/systemd/outlawd.socket",
            "--file", work + "/socket-port.conf:/etc/systemd/system/outlawd.socket.d/port.conf",
            "--file", work + "/no-start-limit.conf:/etc/systemd/system/outlawd.service.d/no-start-limit.conf",
            "--bind", build + "/outlawd:/usr/local/bin/outlawd",
            "--bind", build + "/outlawctl:/usr/local/bin/outlawctl",
            "--file", work + "/outlawd.toml:" + config,
            "--file", work + "/metrc-vendor-key:/etc/outlawd/credentials/metrc-vendor-key",
            "--file", work + "/metrc-default-key:/etc/outlawd/credentials/metrc-default-key",
        ])
        do {
            let admin = [
                "systemd-run", "--wait", "--pipe", "--quiet", "-p", "DynamicUser=yes", "-p", "User=outlawd",
                "-p", "StateDirectory=outlawd", "-p", "StateDirectoryMode=0700", "/usr/local/bin/outlawctl",
            ]
            try #require(try await box.run(["systemctl", "start", "outlawd.socket", "outlawd.service"]).status == 0)
            let device = try await box.run(admin + ["device", "add", "HH-0042", "--config", config])
            try #require(device.status == 0, "outlawctl device add: \(device.stderr)")
            let token = try #require(device.stdout.split(whereSeparator: \.isWhitespace).last.map(String.init))
            let user = try await box.run(admin + ["user", "add", "jane", "--role", "user", "--config", config], stdin: "4821\n")
            try #require(user.status == 0, "outlawctl user add: \(user.stderr)")

            // N handhelds, each sending batch after batch until told to stop.
            let runs = (0..<Self.handhelds).map { _ in HandheldRun() }
            let loops = runs.map { run in Task { try await TestSupport.offPool { Handheld.loop(port: port, token: token, run: run) } } }
            var restarted: [String] = []
            var failure: (any Error)?
            do {
                for run in runs {
                    let warm = try await TestSupport.eventually(timeout: .seconds(60)) { run.acked >= 2 ? true : nil }
                    #expect(warm == true, "a handheld got no acks before the restarts")
                }
                for _ in 0..<Self.restarts {
                    let before = runs.map(\.acked)
                    let restart = try await box.run(["systemctl", "restart", "outlawd.service"])
                    try #require(restart.status == 0, "systemctl restart: \(restart.stderr)")
                    restarted.append(try await box.show("outlawd.service", "MainPID"))
                    // Every handheld is served again by the new daemon before the next restart.
                    for (run, count) in zip(runs, before) {
                        let served = try await TestSupport.eventually(timeout: .seconds(60)) { run.acked > count ? true : nil }
                        #expect(served == true, "a handheld got no ack after a restart")
                    }
                }
            } catch {
                failure = error
            }
            for run in runs { run.requestStop() }
            var reports: [HandheldReport] = []
            for loop in loops { reports.append(try await loop.value) }
            if let failure { throw failure }

            let total = reports.reduce(into: HandheldReport()) { sum, r in
                sum.batches += r.batches
                sum.acks += r.acks
                sum.duplicates += r.duplicates
                sum.refused += r.refused
                sum.resends += r.resends
                sum.closedByServer += r.closedByServer
                sum.unacknowledged += r.unacknowledged
                sum.longestAckWait = max(sum.longestAckWait, r.longestAckWait)
                sum.failures += r.failures
            }
            print("RestartTests: \(Self.handhelds) handhelds, \(Self.restarts) restarts: \(total)")
            #expect(Set(restarted).count == Self.restarts, "each restart started a new daemon: \(restarted)")
            #expect(total.failures.isEmpty, "\(total.failures)")
            #expect(total.refused == 0, "connections refused across the restarts: \(total)")
            #expect(total.unacknowledged == 0, "\(total)")
            #expect(try await box.show("outlawd.socket", "NRefused") == "0")
            // Every acknowledged batch is in the store exactly once (a resend is acked as a duplicate, never stored twice).
            let listed = try await box.run(admin + ["batches", "--json", "--config", config])
            try #require(listed.status == 0, "outlawctl batches: \(listed.stderr)")
            let batches = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]] ?? []
            let ids = batches.compactMap { $0["id"] as? String }
            #expect(ids.count == total.acks, "stored \(ids.count) batches for \(total.acks) acks")
            #expect(Set(ids).count == ids.count)
        } catch {
            let journal = (try? await box.output(["journalctl", "--no-pager", "-u", "outlawd", "-n", "60"])) ?? ""
            try? await box.stop()
            Issue.record("journal:\n\(journal)")
            throw error
        }
        try await box.stop()
    }
}
