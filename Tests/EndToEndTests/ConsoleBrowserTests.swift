import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// The web console in a real headless browser (Tests/Browser/console_browser.py: Debian's chromium and chromedriver,
/// selenium from PyPI) against the real outlawd over TLS and the Metrc sandbox; between the browser's phases a
/// handheld sends batches, and the sandbox's write log says whose key signed them.
///
/// Screenshots go to a temporary folder, or to `OUTLAW_CONSOLE_SCREENSHOTS` when set (docs/console is made so).
@Suite("Web console in a browser", .serialized, .timeLimit(.minutes(10)))
struct ConsoleBrowserTests {
    static let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let crew = [CrewMember("jane", role: "console", pin: "4821"), CrewMember("john", pin: "1357"),
                       CrewMember("admin", role: "admin", pin: "0000"), CrewMember("lockme", pin: "2468")]

    @Test func peopleUseTheConsoleInABrowser() async throws {
        let sandbox = MetrcSandboxServer(state: .demo())
        let sandboxPort = try await sandbox.start()
        let dir = try TempDirectory("outlawd-console")
        try dir.write("secrets/vendor-key", SandboxDemo.vendorKey + "\n")
        try dir.write("secrets/default-key", SandboxDemo.ownerKey + "\n")
        try await Self.makeCertificate(dir)
        let daemon = try await DaemonProcess(server: """
            tls_certificate_file = "tls/cert.pem"
            tls_key_file = "tls/key.pem"
            """, metrc: """
            base_url = "http://127.0.0.1:\(sandboxPort)"
            vendor_key_file = "secrets/vendor-key"
            default_key_file = "secrets/default-key"
            request_timeout_seconds = 20
            reference_sync = false
            [review]
            event_types = ["plant.destroy"]
            """, metrics: "listen = \"127.0.0.1:0\"\n[console]\nlisten = \"127.0.0.1:0\"", directory: dir)
        do {
            try await run(daemon: daemon, sandbox: sandbox)
        } catch {
            await daemon.expectCleanStop()
            try? await sandbox.shutdown()
            throw error
        }
        await daemon.expectCleanStop()
        try? await sandbox.shutdown()
    }

    func run(daemon: DaemonProcess, sandbox: MetrcSandboxServer) async throws {
        let token = try await daemon.addCrew(devices: ["HH-1"], users: Self.crew).tokens["HH-1"] ?? ""
        let port = try await Self.consolePort(daemon)
        let shots = ProcessInfo.processInfo.environment["OUTLAW_CONSOLE_SCREENSHOTS"] ?? daemon.directory.file("screenshots")
        let args: [String: Any] = [
            "url": "https://127.0.0.1:\(port)", "shots": shots, "device": "HH-1", "reviewBatch": "rv-1", "failedBatch": "fl-1",
            "janePIN": "4821", "johnPIN": "1357", "adminPIN": "0000", "lockmePIN": "2468",
            "janeKey": SandboxDemo.janeKey, "johnKey": SandboxDemo.johnKey,
        ]
        // The device port is TLS too (the daemon's one certificate): openssl's client is the handheld, as in TLSTests.
        let hello = #"{"op":"hello","proto":1,"device":"HH-1","token":"\#(token)"}"#
        func handheld(_ lines: [String]) async throws -> [[String: Any]] {
            let r = try await runCommand("/usr/bin/openssl", ["s_client", "-quiet", "-ign_eof", "-verify_quiet", "-connect", "127.0.0.1:\(daemon.port)"],
                                         stdin: ([hello] + lines + [#"{"op":"bye"}"#]).joined(separator: "\n") + "\n")
            return r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
        func send(_ id: String, user: String, _ events: [[String: Any]]) async throws {
            let batch = String(decoding: try JSONSerialization.data(withJSONObject: ["op": "batch", "id": id, "user": user, "events": events]), as: UTF8.self)
            let answers = try await handheld([batch])
            guard answers.dropFirst().first?["op"] as? String == "ack" else { throw LineClient.Failure(description: "\(id) not acked: \(answers)") }
        }
        func waitFor(_ id: String, _ state: String) async throws {
            var seen = ""
            try await eventually("\(id) \(state)", timeout: .seconds(60), every: .milliseconds(200), detail: { "last: \(seen)\n\(daemon.log.suffix(3000))" }) {
                let shown = try await daemon.ctl(["batches", "--json"])
                let list = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [[String: Any]] ?? []
                seen = list.first { $0["id"] as? String == id }?["state"] as? String ?? ""
                return seen == state ? true : nil
            }
        }
        func signedBy(_ label: String) async -> [String] {
            await sandbox.writes().filter { w in
                (w.objects.arrayValue ?? []).contains { $0[field: "Label"]?.stringValue == label }
            }.map(\.userName)
        }

        // Work for Review (john's destroys wait for a person) and Failed (a location Metrc does not have).
        try await send("rv-1", user: "john", [Events.destroy(1, plant: Tags.plant(150)), Events.destroy(2, plant: Tags.plant(151))])
        try await send("fl-1", user: "john", [Events.move(1, plant: Tags.plant(152), to: "Greenhouse 9")])
        try await waitFor("fl-1", "failed")

        // jane pastes her key; her next batch from a handheld is signed by jane.
        try await browser("jane", args)
        try await send("jane-1", user: "jane", [Events.move(1, plant: Tags.plant(140))])
        try await waitFor("jane-1", "uploaded")
        #expect(await signedBy(Tags.plant(140)) == ["jane"])

        // An admin sets john's key from Users; john's next upload is signed by john.
        try await browser("admin", args)
        try await send("john-1", user: "john", [Events.move(1, plant: Tags.plant(141))])
        try await waitFor("john-1", "uploaded")
        #expect(await signedBy(Tags.plant(141)) == ["john"])

        try await browser("roles", args)

        // Five wrong PINs in the console lock the name for handhelds too.
        try await browser("lock", args)
        let login = try await handheld([#"{"op":"login","user":"lockme","pin":"2468"}"#]).dropFirst().first ?? [:]
        #expect(login["ok"] as? Bool == false && login["code"] as? String == "locked", "\(login)")

        // Review and Failed, each seen in the audit with the person who did it.
        try await browser("work", args)
        let audit = try await daemon.ctl(["audit", "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]] ?? []
        func audited(_ action: String, _ actor: String) -> Bool {
            rows.contains { $0["action"] as? String == action && $0["actor"] as? String == actor }
        }
        #expect(audited("review.reject", "admin"), "\(audit.stdout.prefix(2000))")
        #expect(audited("review.approve", "admin"))
        #expect(audited("replay", "admin"))
        #expect(audited("key.set", "jane") && audited("key.set", "admin"))
        #expect(audited("key.refused", "jane") == false)
        // No key in the daemon's log.
        #expect(!daemon.log.contains(SandboxDemo.janeKey) && !daemon.log.contains(SandboxDemo.johnKey))
    }

    /// Runs one phase of the browser script; its failures become this test's.
    func browser(_ phase: String, _ args: [String: Any]) async throws {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: args), as: UTF8.self)
        var environment = ProcessInfo.processInfo.environment
        environment["SE_AVOID_STATS"] = "true"
        let script = Self.root.appendingPathComponent("Tests/Browser/console_browser.py").path
        let r = try await runCommand("/usr/bin/env", ["python3", script, phase, json], environment: environment)
        let last = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let result = (try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any]
        guard let result else {
            Issue.record("the browser's \(phase) phase gave no result (exit \(r.status)): \(r.stdout.suffix(2000)) \(r.stderr.suffix(3000))")
            return
        }
        let failures = result["failures"] as? [String] ?? ["no failures list"]
        #expect(failures.isEmpty, "browser phase \(phase): \(failures)")
    }

    static func consolePort(_ daemon: DaemonProcess) async throws -> Int {
        try await eventually("the console's port in the daemon's log", timeout: .seconds(30), detail: { daemon.log.suffix(3000).description }) { () -> Int? in
            let text = daemon.log
            guard let range = text.range(of: #"serving the web console.* console_port=\d+"#, options: .regularExpression) else { return nil }
            return text[range].split(separator: "=").last.flatMap { Int($0) }
        }
    }

    static func makeCertificate(_ dir: TempDirectory) async throws {
        try FileManager.default.createDirectory(atPath: dir.file("tls"), withIntermediateDirectories: true)
        let r = try await runCommand("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("tls/key.pem"),
                                                          "-out", dir.file("tls/cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1"])
        try #require(r.status == 0, "openssl: \(r.stderr)")
    }
}
