import Foundation
import Testing

/// The project's unit on a fresh installation, before the operator has put the Metrc keys in place: it starts
/// (no status=243/CREDENTIALS), its ExecStartPre check passes with warnings, batches are stored and acknowledged, and
/// the journal and `outlawctl status` name the files to fill; the keys put in place later and a reload start the
/// uploads without a restart. A configuration that cannot work stops at ExecStartPre.
@Suite(
    "Fresh installation under systemd",
    .enabled(if: SystemdBox.available, "needs root, systemd and scripts/systemd-box"),
    .enabled(if: RealSystemdTests.outlawdBuilt, "outlawd/outlawctl not built next to the test runner yet"))
struct FreshInstallTests {
    static let config = "/etc/outlawd/outlawd.toml"
    static let files = "/etc/outlawd/credentials/metrc-vendor-key and /etc/outlawd/credentials/metrc-default-key"
    /// outlawctl as the service's own dynamic user, in its state directory (as RealSystemdTests provisions).
    static let admin = [
        "systemd-run", "--wait", "--pipe", "--quiet", "-p", "DynamicUser=yes", "-p", "User=outlawd",
        "-p", "StateDirectory=outlawd", "-p", "StateDirectoryMode=0700", "/usr/local/bin/outlawctl",
    ]

    @Test func startsWithoutMetrcKeysTakesBatchesAndNamesTheFiles() async throws {
        let build = TestSupport.buildDirectory
        let root = TestSupport.repositoryRoot()
        let work = try TestSupport.makeTempDir("sdfresh")
        defer { TestSupport.removeTree(work) }
        let port = try TestSupport.freePort()
        let metrcPort = try TestSupport.freePort()
        try RealSystemdTests.writeOutlawdFiles(work: work, port: port)
        // Metrc is the sandbox, run in the box as a service of its own (the box shares this machine's network).
        let toml = try String(contentsOfFile: work + "/outlawd.toml", encoding: .utf8)
        try (toml + "\n[metrc]\nbase_url = \"http://127.0.0.1:\(metrcPort)\"\n").write(toFile: work + "/outlawd.toml", atomically: true, encoding: .utf8)
        try "[Socket]\nListenStream=\nListenStream=127.0.0.1:\(port)\n".write(toFile: work + "/socket-port.conf", atomically: true, encoding: .utf8)
        // The store key and the TLS key (made by the package at installation); no Metrc key files at all.
        let box = try await SystemdBox.start([
            "--unit", root + "/systemd/outlawd.service", "--unit", root + "/systemd/outlawd.socket",
            "--file", work + "/socket-port.conf:/etc/systemd/system/outlawd.socket.d/port.conf",
            "--bind", build + "/outlawd:/usr/local/bin/outlawd",
            "--bind", build + "/outlawctl:/usr/local/bin/outlawctl",
            "--bind", build + "/metrc-sandbox:/usr/local/bin/metrc-sandbox",
            "--file", work + "/outlawd.toml:" + Self.config,
            "--file", work + "/outlawd-store-key:/etc/outlawd/credentials/outlawd-store-key",
            "--file", work + "/outlawd-tls-key:/etc/outlawd/credentials/outlawd-tls-key",
        ])
        do {
            #expect(try await box.run(["test", "-e", "/etc/outlawd/credentials/metrc-vendor-key"]).status != 0)
            let started = try await box.run(["systemctl", "start", "outlawd.socket", "outlawd.service"])
            if started.status != 0 {
                let journal = try await box.output(["journalctl", "--no-pager", "-n", "60"])
                Issue.record("systemctl start outlawd.service: \(started.status) \(started.stderr)\njournal:\n\(journal)")
                throw TestFailure("outlawd.service did not start without the Metrc key files")
            }
            #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "active")

            let device = try await box.run(Self.admin + ["device", "add", "HH-0042", "--config", Self.config])
            try #require(device.status == 0, "outlawctl device add: \(device.stderr)")
            let token = try #require(device.stdout.split(whereSeparator: \.isWhitespace).last.map(String.init))
            let user = try await box.run(Self.admin + ["user", "add", "jane", "--role", "user", "--config", Self.config], stdin: "4821\n")
            try #require(user.status == 0, "outlawctl user add: \(user.stderr)")
            let answer = try await TestSupport.offPool { () -> String in
                let (conn, result) = Handheld.open(port: port)
                guard let conn else { return "connect: \(result)" }
                return conn.oneBatch(token: token, id: "fresh-1")
            }
            #expect(answer == "ack")

            // The check before the start warned, and the daemon said it once, naming the files an operator fills.
            let log = try await box.output(["journalctl", "--no-pager", "-o", "cat", "-u", "outlawd.service"])
            let sentence = "uploads wait for the Metrc keys: put them in \(Self.files) (root only, 0600), then systemctl reload outlawd"
            #expect(log.contains("outlawd: warning: \(sentence)"), "ExecStartPre's warning:\n\(log)")
            #expect(log.components(separatedBy: sentence).count - 1 == 2, "once from the check, once from the daemon:\n\(log)")
            #expect(log.contains("configuration OK"))

            let status = try await box.run(Self.admin + ["status", "--config", Self.config])
            #expect(status.status == 1, "degraded: \(status.stdout)\(status.stderr)")
            #expect(status.stdout.contains("  - \(sentence)"), "\(status.stdout)")

            // The keys arrive later: put in place and reloaded, they start the uploads without a restart (systemd
            // loads credentials only at a start; the unit's ExecReload= copies them) and a connected handheld stays.
            let sandbox = try await box.run(["systemd-run", "--unit", "metrc-sandbox", "/usr/local/bin/metrc-sandbox",
                                             "--port", "\(metrcPort)", "--demo"])
            try #require(sandbox.status == 0, "metrc-sandbox: \(sandbox.stderr)")
            let mainPID = try await box.output(["systemctl", "show", "-P", "MainPID", "outlawd.service"])
            let connected = try #require(try await TestSupport.offPool { Handheld.open(port: port).0 }, "no connection to outlawd")
            try #require(try await TestSupport.offPool { connected.hello(token: token) })
            for (name, key) in [("metrc-vendor-key", "sandbox-vendor-key"), ("metrc-default-key", "sandbox-owner-key")] {
                let put = try await box.run(["install", "-m", "0600", "/dev/stdin", "/etc/outlawd/credentials/" + name], stdin: key + "\n")
                try #require(put.status == 0, "\(put.stderr)")
            }
            let reload = try await box.run(["systemctl", "reload", "outlawd.service"])
            #expect(reload.status == 0, "systemctl reload: \(reload.stderr)")
            #expect(try await box.output(["systemctl", "show", "-P", "MainPID", "outlawd.service"]) == mainPID, "reloaded, not restarted")
            // The Default key downloads Metrc's reference data: proof that the Metrc side runs with the new keys.
            let synced = try await TestSupport.eventually(timeout: .seconds(60)) {
                let log = try await box.output(["journalctl", "--no-pager", "-o", "cat", "-u", "outlawd.service"])
                return log.contains("reference data synced") ? log : nil
            }
            #expect(synced?.contains("configuration reloaded") == true, "\(synced ?? "no reference sync after the reload")")
            let pong = try await TestSupport.offPool { connected.send(#"{"op":"ping"}"#) && connected.read()?["op"] as? String == "pong" }
            #expect(pong, "the handheld's connection survived the reload")
            let after = try await box.run(Self.admin + ["status", "--config", Self.config])
            #expect(!after.stdout.contains("uploads wait for the Metrc keys"), "\(after.stdout)")

            // A store key that is not one: ExecStartPre stops the start with one line naming it.
            try #require(try await box.run(["sh", "-c", "echo not-a-key > /etc/outlawd/credentials/outlawd-store-key"]).status == 0)
            let restart = try await box.run(["systemctl", "restart", "outlawd.service"])
            #expect(restart.status != 0)
            // ExecStartPre's line reaches the journal through its stderr stream, after systemd's own "Failed to start":
            // wait for it rather than read once.
            let line = "outlawd: \(Self.config): credential outlawd-store-key must hold 32 bytes as hex or base64"
            var failed = ""
            let named = try await TestSupport.eventually(timeout: .seconds(30)) { () -> Bool? in
                failed = try await box.output(["journalctl", "--no-pager", "-o", "cat", "-u", "outlawd.service"])
                return failed.contains(line) ? true : nil
            }
            #expect(named == true, "\(failed)")
        } catch {
            try? await box.stop()
            throw error
        }
        try await box.stop()
    }
}
