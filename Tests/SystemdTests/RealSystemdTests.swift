import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A throw-away systemd booted with scripts/systemd-box.
final class SystemdBox: Sendable {
    static var script: String { TestSupport.repositoryRoot() + "/scripts/systemd-box" }
    static var available: Bool {
        TestSupport.isRoot && FileManager.default.isExecutableFile(atPath: script)
            && FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd")
    }

    let directory: String

    private init(directory: String) { self.directory = directory }

    /// Boots a box; `options` are systemd-box start options (`--unit`, `--file`, `--bind`, ...).
    static func start(_ options: [String]) async throws -> SystemdBox {
        let dir = try TestSupport.makeTempDir("sdbox")
        let out = try await TestSupport.run(script, ["start", "--dir", dir] + options)
        guard out.status == 0 else {
            throw TestFailure("systemd-box start failed (\(out.status)): \(out.stderr)")
        }
        return SystemdBox(directory: dir)
    }

    /// Runs a command inside the box.
    @discardableResult
    func run(_ command: [String], stdin: String? = nil) async throws -> TestSupport.Output {
        try await TestSupport.run(Self.script, ["exec", "--dir", directory] + command, stdin: stdin)
    }

    /// Trimmed stdout of a command inside the box.
    func output(_ command: [String]) async throws -> String {
        try await run(command).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func show(_ unit: String, _ property: String) async throws -> String {
        try await output(["systemctl", "show", "-P", property, unit])
    }

    /// Journal entries of the box matching journalctl arguments, as JSON objects.
    func journal(_ arguments: [String]) async throws -> [[String: Any]] {
        let out = try await run(["journalctl", "--no-pager", "-o", "json"] + arguments)
        return out.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    func stop() async throws {
        let out = try await TestSupport.run(Self.script, ["stop", "--dir", directory])
        if out.status != 0 { Issue.record("systemd-box stop: \(out.stderr)") }
        TestSupport.removeTree(directory)
    }
}

/// The project's units and a tiny Swift service under a real, booted systemd.
@Suite("Real systemd", .enabled(if: SystemdBox.available, "needs root, systemd and scripts/systemd-box"))
struct RealSystemdTests {
    /// The `[Service]` lines of systemd/outlawd.service except those naming outlawd's own program,
    /// files and timings, so the tiny service runs under exactly the same sandbox and settings (this
    /// is what proves MemoryDenyWriteExecute= and the system call filter leave a Swift program
    /// working, and that a watchdog SIGABRT ends it promptly).
    static func outlawdServiceLines() throws -> [String] {
        let unit = try String(contentsOfFile: TestSupport.repositoryRoot() + "/systemd/outlawd.service", encoding: .utf8)
        let own: Set<String> = [
            "ExecStart", "ExecStartPre", "WatchdogSec", "RestartSec", "StateDirectory", "StateDirectoryMode",
            "ConfigurationDirectory", "LoadCredential", "SetCredential",
        ]
        var lines: [String] = []
        var inService = false
        for line in unit.split(separator: "\n") {
            if line.hasPrefix("[") { inService = line == "[Service]"; continue }
            guard inService, !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            if !own.contains(String(line[..<eq])) { lines.append(String(line)) }
        }
        return lines
    }

    @Test func tinyNotifyServiceUnderRealSystemd() async throws {
        let work = try TestSupport.makeTempDir("sdtiny")
        defer { TestSupport.removeTree(work) }
        let port = try TestSupport.freePort()
        let runner = (TestSupport.testRunner as NSString).lastPathComponent
        let outlawd = try Self.outlawdServiceLines()
        #expect(outlawd.contains("MemoryDenyWriteExecute=yes"))
        #expect(outlawd.contains("SystemCallFilter=@system-service"))
        #expect(outlawd.contains("Type=notify"))

        try """
            [Unit]
            Description=tiny notify service (SystemdTests)
            Requires=tiny.socket
            After=tiny.socket

            [Service]
            ExecStart=/opt/sdtests/\(runner) \(TestSupport.childRoleArguments.joined(separator: " "))
            Environment=SYSTEMD_TESTS_ROLE=service
            WatchdogSec=2s
            RestartSec=1s
            StateDirectory=tiny
            LoadCredential=greeting:/etc/tiny/greeting
            # The rest as in systemd/outlawd.service:
            \(outlawd.joined(separator: "\n"))

            """.write(toFile: work + "/tiny.service", atomically: true, encoding: .utf8)
        try """
            [Socket]
            ListenStream=127.0.0.1:\(port)
            FileDescriptorName=devices

            """.write(toFile: work + "/tiny.socket", atomically: true, encoding: .utf8)
        try "hello-from-credential\n".write(toFile: work + "/greeting", atomically: true, encoding: .utf8)
        // Only for `systemd-analyze verify` of the project's units inside the box.
        let root = TestSupport.repositoryRoot()

        let box = try await SystemdBox.start([
            "--unit", work + "/tiny.service", "--unit", work + "/tiny.socket",
            "--file", work + "/greeting:/etc/tiny/greeting",
            "--bind", TestSupport.buildDirectory + ":/opt/sdtests",
            "--unit", root + "/systemd/outlawd.service", "--unit", root + "/systemd/outlawd.socket",
            "--bind", "/bin/true:/usr/local/bin/outlawd",
        ])
        do {
            // The project's units, offline checks, in a root where ExecStart= exists.
            let verify = try await box.run([
                "systemd-analyze", "verify", "--man=no",
                "/etc/systemd/system/outlawd.service", "/etc/systemd/system/outlawd.socket",
            ])
            #expect(verify.stdout + verify.stderr == "", "systemd-analyze verify must print nothing")
            #expect(verify.status == 0)
            let security = try await box.run(["systemd-analyze", "security", "--offline=yes", "/etc/systemd/system/outlawd.service"])
            let exposure = security.stdout.split(separator: "\n").last { $0.contains("Overall exposure level") }
                .flatMap { line in line.split(separator: " ").compactMap { Double($0) }.last }
            #expect(exposure != nil && exposure! <= 2.0, "exposure \(String(describing: exposure)): \(security.stdout)")

            // Socket activation: the first connection starts the service with the socket named "devices".
            try #require(try await box.run(["systemctl", "start", "tiny.socket"]).status == 0)
            #expect(try await box.output(["systemctl", "is-active", "tiny.socket"]) == "active")
            let reply = try await TestSupport.tcpExchange(port: port, timeout: .seconds(10), readTimeout: 60)
            #expect(reply == "tiny names=devices credential=hello-from-credential target=journal watchdog=2000000\n")

            // Type=notify: active only after READY=1; STATUS= shown by systemctl.
            #expect(try await box.output(["systemctl", "is-active", "tiny.service"]) == "active")
            #expect(try await box.show("tiny.service", "StatusText") == "serving; credential read")
            #expect(try await box.show("tiny.service", "NRestarts") == "0")

            // journalctl -u finds the structured line.
            let batch = try #require(try await TestSupport.eventually(timeout: .seconds(10)) {
                try await box.journal(["-u", "tiny.service", "BATCH_ID=tiny-1"]).first
            })
            #expect(batch["MESSAGE"] as? String == "tiny batch")
            #expect(batch["DEVICE"] as? String == "HH-TINY")
            #expect(batch["OUTLAW_USER"] as? String == "jane")
            #expect(batch["EVENTS"] as? String == "3")
            #expect(batch["PRIORITY"] as? String == "6")
            #expect(batch["SYSLOG_IDENTIFIER"] as? String == "tiny")

            // Watchdog: a SIGSTOPped service stops pinging, is killed and restarted.
            let firstPID = try await box.show("tiny.service", "MainPID")
            try #require(try await box.run(["kill", "-STOP", firstPID]).status == 0)
            let restarted = try await TestSupport.eventually(timeout: .seconds(40), interval: .milliseconds(500)) { () -> Bool? in
                let restarts = try await box.show("tiny.service", "NRestarts")
                let active = try await box.output(["systemctl", "is-active", "tiny.service"])
                let pid = try await box.show("tiny.service", "MainPID")
                return restarts == "1" && active == "active" && pid != firstPID && pid != "0" ? true : nil
            }
            #expect(restarted == true, "not restarted after the watchdog")
            let log = try await box.output(["journalctl", "--no-pager", "-o", "cat", "-u", "tiny.service"])
            #expect(log.contains("Watchdog timeout"), "\(log)")
            #expect(log.contains("Failed with result 'watchdog'"), "\(log)")
            let again = try await TestSupport.tcpExchange(port: port, timeout: .seconds(10), readTimeout: 60)
            #expect(again.hasPrefix("tiny names=devices credential=hello-from-credential"))

            // Clean stop: SIGTERM → STOPPING=1 → exit 0.
            let stop = try await box.run(["systemctl", "stop", "tiny.service", "tiny.socket"])
            #expect(stop.status == 0, "\(stop.stderr)")
            #expect(try await box.output(["systemctl", "is-active", "tiny.service"]) == "inactive")
            #expect(try await box.show("tiny.service", "Result") == "success")
            #expect(try await box.show("tiny.service", "ExecMainStatus") == "0")
            let stopping = try await box.journal(["-u", "tiny.service", "MESSAGE=tiny stopping"])
            #expect(stopping.last?["REASON"] as? String == "SIGTERM")
        } catch {
            try? await box.stop()
            throw error
        }
        try await box.stop()
    }

    /// outlawd and outlawctl built next to the test runner.
    static var outlawdBuilt: Bool {
        FileManager.default.isExecutableFile(atPath: TestSupport.buildDirectory + "/outlawd")
            && FileManager.default.isExecutableFile(atPath: TestSupport.buildDirectory + "/outlawctl")
    }

    /// The real daemon, installed as docs/operations.md says, under the project's own units.
    /// outlawd.toml for a free loopback port and test-only Metrc credentials, in `work`.
    static func writeOutlawdFiles(work: String, port: UInt16) throws {
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
        // The unit loads these two as well and does not start without them: a store key, and a TLS key this
        // configuration leaves unused (no tls_certificate_file: plain TCP, which loopback allows).
        try (String(repeating: "5a", count: 32) + "\n").write(toFile: work + "/outlawd-store-key", atomically: true, encoding: .utf8)
        try "unused: no tls_certificate_file\n".write(toFile: work + "/outlawd-tls-key", atomically: true, encoding: .utf8)
    }

    /// systemd-box options putting writeOutlawdFiles' four credentials where the unit loads them from.
    static func credentialFiles(work: String) -> [String] {
        ["metrc-vendor-key", "metrc-default-key", "outlawd-store-key", "outlawd-tls-key"].flatMap {
            ["--file", work + "/" + $0 + ":/etc/outlawd/credentials/" + $0]
        }
    }

    @Test(.enabled(if: RealSystemdTests.outlawdBuilt, "outlawd/outlawctl not built next to the test runner yet"))
    func outlawdUnderRealSystemd() async throws {
        let build = TestSupport.buildDirectory
        let root = TestSupport.repositoryRoot()
        let work = try TestSupport.makeTempDir("sdoutlawd")
        defer { TestSupport.removeTree(work) }
        let port = try TestSupport.freePort()
        let config = "/etc/outlawd/outlawd.toml"
        try Self.writeOutlawdFiles(work: work, port: port)
        // Test-only drop-ins: a free port on loopback instead of 7420 on every address (the box
        // shares the host's network), and a short watchdog so the SIGSTOP check is quick.
        try "[Socket]\nListenStream=\nListenStream=127.0.0.1:\(port)\n"
            .write(toFile: work + "/socket-port.conf", atomically: true, encoding: .utf8)
        try "[Service]\nWatchdogSec=4s\nRestartSec=1s\n"
            .write(toFile: work + "/watchdog.conf", atomically: true, encoding: .utf8)

        let box = try await SystemdBox.start([
            "--unit", root + "/systemd/outlawd.service", "--unit", root + "/systemd/outlawd.socket",
            "--file", work + "/socket-port.conf:/etc/systemd/system/outlawd.socket.d/port.conf",
            "--file", work + "/watchdog.conf:/etc/systemd/system/outlawd.service.d/watchdog.conf",
            "--bind", build + "/outlawd:/usr/local/bin/outlawd",
            "--bind", build + "/outlawctl:/usr/local/bin/outlawctl",
            "--file", work + "/outlawd.toml:" + config,
        ] + Self.credentialFiles(work: work))
        do {
            // outlawd creates and migrates its store; outlawctl only opens one that exists.
            let started = try await box.run(["systemctl", "start", "outlawd.service"])
            if started.status != 0 {
                let journal = try await box.output(["journalctl", "--no-pager", "-n", "60"])
                Issue.record("systemctl start outlawd.service: \(started.status) \(started.stderr)\njournal:\n\(journal)")
                throw TestFailure("outlawd.service did not start")
            }
            // Provision a device and a user as the service's own (dynamic) user, in its state dir.
            let admin = [
                "systemd-run", "--wait", "--pipe", "--quiet", "-p", "DynamicUser=yes", "-p", "User=outlawd",
                "-p", "StateDirectory=outlawd", "-p", "StateDirectoryMode=0700", "/usr/local/bin/outlawctl",
            ]
            // outlawctl takes --config after the subcommand.
            let device = try await box.run(admin + ["device", "add", "HH-0042", "--config", config])
            try #require(device.status == 0, "outlawctl device add: \(device.stderr)")
            let token = try #require(device.stdout.split(whereSeparator: \.isWhitespace).last.map(String.init))
            let user = try await box.run(admin + ["user", "add", "jane", "--role", "user", "--config", config], stdin: "4821\n")
            try #require(user.status == 0, "outlawctl user add: \(user.stderr)")

            // Stopped again, so the device's connection below is what starts it (socket activation).
            try #require(try await box.run(["systemctl", "stop", "outlawd.service"]).status == 0)
            try #require(try await box.run(["systemctl", "start", "outlawd.socket"]).status == 0)
            #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "active")
            #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "inactive")

            // A device connects (this starts outlawd through the socket), says hello, jane logs in, and it sends
            // her batch with her login's ticket.
            let batchID = "b-\(UInt32.random(in: 0...UInt32.max))"
            let answer = try await TestSupport.offPool { () -> String in
                let (conn, result) = Handheld.open(port: port)
                guard let conn else { return "connect: \(result)" }
                return conn.oneBatch(token: token, id: batchID)
            }
            if answer != "ack" {
                let journal = try await box.output(["journalctl", "--no-pager", "-u", "outlawd", "-n", "40"])
                Issue.record("batch \(batchID): \(answer); outlawd's journal:\n\(journal)")
            }
            #expect(answer == "ack")

            #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "active")
            let status = try await box.show("outlawd.service", "StatusText")
            #expect(!status.isEmpty, "outlawd sends STATUS=")

            // systemctl reload (ExecReload=kill -HUP): RELOADING=1, the file read again, READY=1; active again after.
            let reload = try await box.run(["systemctl", "reload", "outlawd.service"])
            #expect(reload.status == 0, "systemctl reload: \(reload.stderr)")
            let reloaded = try await TestSupport.eventually(timeout: .seconds(20)) {
                try await box.journal(["-u", "outlawd", "MESSAGE=configuration reloaded"]).first
            }
            #expect((reloaded?["CONFIG_SHA256"] as? String)?.count == 64, "no reload in the journal")
            let activeAgain = try await TestSupport.eventually(timeout: .seconds(20)) { () -> Bool? in
                try await box.output(["systemctl", "is-active", "outlawd.service"]) == "active" ? true : nil
            }
            #expect(activeAgain == true, "outlawd not active after the reload")

            // The batch line in the journal, with its fields.
            let line = try await TestSupport.eventually(timeout: .seconds(10)) {
                try await box.journal(["-u", "outlawd", "BATCH_ID=\(batchID)"]).first
            }
            let entry = try #require(line, "no journal line with BATCH_ID=\(batchID)")
            #expect(entry["DEVICE"] as? String == "HH-0042")
            #expect(entry["OUTLAW_USER"] as? String == "jane")
            #expect(entry["EVENTS"] as? String == "1")
            #expect(entry["PRIORITY"] != nil)
            // Never a token, key or PIN in the journal.
            let everything = try await box.output(["journalctl", "--no-pager", "-o", "json", "-u", "outlawd"])
            #expect(!everything.contains(token))
            #expect(!everything.contains("vendor-key-for-tests") && !everything.contains("default-key-for-tests"))

            // The credentials were delivered to the service.
            let credentials = try await box.output(["ls", "/run/credentials/outlawd.service"])
            #expect(credentials.split(separator: "\n").sorted() == ["metrc-default-key", "metrc-vendor-key", "outlawd-store-key", "outlawd-tls-key"])

            // Watchdog: a SIGSTOPped daemon is killed and restarted.
            let firstPID = try await box.show("outlawd.service", "MainPID")
            try #require(try await box.run(["kill", "-STOP", firstPID]).status == 0)
            let restarted = try await TestSupport.eventually(timeout: .seconds(60), interval: .milliseconds(500)) { () -> Bool? in
                let restarts = try await box.show("outlawd.service", "NRestarts")
                let active = try await box.output(["systemctl", "is-active", "outlawd.service"])
                let pid = try await box.show("outlawd.service", "MainPID")
                return restarts == "1" && active == "active" && pid != firstPID && pid != "0" ? true : nil
            }
            #expect(restarted == true, "outlawd not restarted after the watchdog")
            let log = try await box.output(["journalctl", "--no-pager", "-o", "cat", "-u", "outlawd.service"])
            #expect(log.contains("Failed with result 'watchdog'"))

            // Clean stop within TimeoutStopSec, exit 0.
            let stop = try await box.run(["systemctl", "stop", "outlawd.service", "outlawd.socket"])
            #expect(stop.status == 0, "\(stop.stderr)")
            #expect(try await box.show("outlawd.service", "Result") == "success")
            #expect(try await box.show("outlawd.service", "ExecMainStatus") == "0")
        } catch {
            try? await box.stop()
            throw error
        }
        try await box.stop()
    }
}
