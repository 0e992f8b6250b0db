import Foundation
import Logging
import MetrcSandbox
import OutlawStore
import OutlawTestSupport

/// The web console's figures: each page's answer time on loopback over TLS with `batches` batches stored, and the
/// paced ingest's ack p99 without and with a browser refreshing Status every second (one curl stands in for it: one
/// request a second on one kept TLS connection, as a browser tab; it runs on this machine, so its own CPU counts).
struct ConsoleFigures: Sendable {
    var batches = 0
    var events = 0
    var pages: [(page: String, latency: Latencies)] = []
    var pacedAlone: IngestFigures?
    var pacedWithStatus: IngestFigures?
    /// Alone once more after the run with Status: the store has grown by two paced runs (uploads are paused), so the
    /// runs before and after bracket the one with Status.
    var pacedAloneAfter: IngestFigures?
    var statusRefreshes = 0

    var printed: String {
        func ms(_ v: Double) -> String { String(format: "%.1f", v) }
        func right(_ text: String, _ width: Int = 9) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        var lines = ["web console: \(batches) batches (\(events) events) stored; answers over TLS on loopback, connection kept",
                     "  page        answers   p50 ms   p99 ms   max ms"]
        for (page, l) in pages {
            lines.append("  " + page.padding(toLength: 10, withPad: " ", startingAt: 0) + right(String(l.count))
                         + right(ms(l.p50)) + right(ms(l.p99)) + right(ms(l.max)))
        }
        if let a = pacedAlone, let b = pacedWithStatus {
            let after = pacedAloneAfter.map { ", \(ms($0.latency.p99)) ms alone again after it (p50 \(ms($0.latency.p50)))" } ?? ""
            lines.append("  paced ingest ack p99: \(ms(a.latency.p99)) ms alone (p50 \(ms(a.latency.p50))), \(ms(b.latency.p99)) ms while Status is "
                         + "fetched every second (p50 \(ms(b.latency.p50)); \(statusRefreshes) answers)\(after)")
        }
        return lines.joined(separator: "\n")
    }
}

enum ConsoleBench {
    static let pages = ["settings", "users", "keys", "review", "failed", "status"]

    static func run(_ options: BenchOptions, batches: Int = 10_000, eventsPerBatch: Int = 5, answersPerPage: Int = 200) async throws -> ConsoleFigures {
        var state = SandboxState.demo()
        _ = try state.seed(license: EventMix.license, plants: options.plants, packages: options.packages, now: Date())
        var logger = Logger(label: "outlawd-bench.sandbox")
        logger.logLevel = .warning
        let sandbox = MetrcSandboxServer(state: state, configuration: SandboxConfiguration(rateLimits: .unlimited), logger: logger)
        try await sandbox.start()
        defer { Task { try? await sandbox.shutdown() } }
        let rig = try await start(sandbox: sandbox, deviceCount: max(options.pacedHandhelds, 8))
        do {
            let figures = try await measure(rig, options: options, batches: batches, eventsPerBatch: eventsPerBatch, answersPerPage: answersPerPage)
            await rig.stop()
            return figures
        } catch {
            await rig.stop()
            throw error
        }
    }

    static func measure(_ rig: IngestDaemon, options: BenchOptions, batches: Int, eventsPerBatch: Int, answersPerPage: Int) async throws -> ConsoleFigures {
        var figures = ConsoleFigures()
        log("console: storing \(batches) batches of \(eventsPerBatch) events")
        try await seed(rig, batches: batches, eventsPerBatch: eventsPerBatch, plants: options.plants, packages: options.packages)
        figures.batches = batches
        figures.events = batches * eventsPerBatch
        let port = try await consolePort(rig.daemon)
        let base = "https://127.0.0.1:\(port)"
        let jar = rig.daemon.directory.file("console-cookies")
        try await signIn(base: base, jar: jar, user: "jane", pin: EventMix.pin)
        for page in pages {
            // One curl, one kept connection, `answersPerPage` answers: the page's own time, not TLS handshakes.
            var arguments = ["-b", jar, "-w", "%{http_code} %{time_total}\n"]
            for _ in 0..<answersPerPage { arguments += [base + "/" + page, "-o", "/dev/null"] }
            let r = try await curl(arguments)
            var times: [Double] = []
            for line in r.stdout.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 2, parts[0] == "200", let t = Double(parts[1]) else {
                    throw BenchError("console page \(page) answered \(line): \(r.stderr)")
                }
                times.append(t * 1000)
            }
            figures.pages.append((page, Latencies(times)))
            log("  \(page): p99 " + String(format: "%.1f ms", Latencies(times).p99))
        }

        var plan = HandheldPlan.paced(options, eventsPerSecond: options.pacedRate, idPrefix: "console-alone")
        log("console: paced \(options.pacedHandhelds) handhelds × \(options.pacedRate) events/s, console idle")
        figures.pacedAlone = try await IngestBench.run(rig, label: "paced, console idle", template: plan, handhelds: options.pacedHandhelds)
        plan.idPrefix = "console-status"
        log("console: paced again, Status fetched every second")
        // One curl for the whole run, as one browser tab: its connection kept, one request a second (--rate).
        let refreshes = Int(options.seconds + options.warmup) + 10
        var arguments = ["-b", jar, "--rate", "1/s", "-w", "%{http_code}\n"]
        for _ in 0..<refreshes { arguments += [base + "/status", "-o", "/dev/null"] }
        let refresher = Task { [arguments] () -> Int in
            let r = try? await curl(arguments)
            return r?.stdout.split(separator: "\n").filter { $0 == "200" }.count ?? 0
        }
        figures.pacedWithStatus = try await IngestBench.run(rig, label: "paced, Status refreshed", template: plan, handhelds: options.pacedHandhelds)
        figures.statusRefreshes = await refresher.value
        plan.idPrefix = "console-after"
        log("console: paced once more, console idle")
        figures.pacedAloneAfter = try await IngestBench.run(rig, label: "paced, console idle again", template: plan, handhelds: options.pacedHandhelds)
        return figures
    }

    /// An ingest daemon as `IngestDaemon.start` makes it, plus the web console on a free port with a certificate
    /// of its own (the device port stays plain loopback TCP, as the handhelds of the bench speak it), and jane with
    /// the Console role.
    static func start(sandbox: MetrcSandboxServer, deviceCount: Int) async throws -> IngestDaemon {
        let dir = try TempDirectory("outlawd-bench-console")
        try dir.write("secrets/vendor-key", SandboxDemo.vendorKey)
        try dir.write("secrets/default-key", SandboxDemo.ownerKey)
        try FileManager.default.createDirectory(atPath: dir.file("tls"), withIntermediateDirectories: true)
        let cert = try await runCommand("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("tls/key.pem"),
                                                              "-out", dir.file("tls/cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1"])
        guard cert.status == 0 else { throw BenchError("openssl: \(cert.stderr)") }
        let daemon = try await DaemonProcess(server: "max_unauthenticated_per_address = 1024", metrc: IngestDaemon.metrcSettings(sandbox.baseURL), metrics: """
            listen = "127.0.0.1:0"
            [console]
            listen = "127.0.0.1:0"
            tls_certificate_file = "tls/cert.pem"
            tls_key_file = "tls/key.pem"
            """, directory: dir)
        let store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 10_000, opening: .currentSchemaOnly)
        try await IngestDaemon.waitForReferenceSync(store, daemon: daemon)
        try store.addUser(name: "jane", role: .console, pin: EventMix.pin, actor: "outlawd-bench")
        try store.addUser(name: "john", role: .user, pin: EventMix.pin, actor: "outlawd-bench")
        var devices: [(name: String, token: String)] = []
        for i in 0..<deviceCount {
            let name = "HH-\(String(format: "%03d", i))"
            devices.append((name, try store.addDevice(name: name, actor: "outlawd-bench")))
        }
        let paused = try await daemon.ctl(["pause"])
        guard paused.status == 0 else { throw BenchError("outlawctl pause failed: \(paused.stderr)") }
        return IngestDaemon(daemon: daemon, devices: devices)
    }

    /// Stores `batches` batches from 8 handhelds at once, 16 in flight on each connection.
    static func seed(_ rig: IngestDaemon, batches: Int, eventsPerBatch: Int, plants: Int, packages: Int) async throws {
        let connections = 8
        let now = Date().timeIntervalSince1970
        try await withThrowingTaskGroup(of: Void.self) { group in
            for h in 0..<connections {
                let device = rig.devices[h]
                group.addTask {
                    let (c, welcome) = try await rig.daemon.session(device: device.name, token: device.token)
                    guard welcome["op"] as? String == "welcome" else { throw BenchError("seed: \(welcome)") }
                    let mine = Array(stride(from: h, to: batches, by: connections))
                    for chunk in stride(from: 0, to: mine.count, by: 16) {
                        let part = mine[chunk..<min(chunk + 16, mine.count)]
                        for b in part {
                            try c.sendRaw(EventMix.batchLine(id: "seed-\(b)", handheld: h, batch: b, events: eventsPerBatch, plants: plants,
                                                             packages: packages, collectedAt: now))
                        }
                        for _ in part {
                            let answer = try await c.readJSON()
                            guard answer["op"] as? String == "ack" else { throw BenchError("seed batch not acked: \(answer)") }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static func signIn(base: String, jar: String, user: String, pin: String) async throws {
        let page = try await curl(["-c", jar, base + "/signin"])
        guard let range = page.stdout.range(of: #"name="csrf" value="[A-Za-z0-9_-]+""#, options: .regularExpression) else {
            throw BenchError("console sign-in page without a form token: \(page.stdout.prefix(300)) \(page.stderr)")
        }
        let csrf = String(page.stdout[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
        let r = try await curl(["-b", jar, "-c", jar, "-o", "/dev/null", "-w", "%{http_code}", "--data-urlencode", "csrf=\(csrf)",
                                "--data-urlencode", "user=\(user)", "--data-urlencode", "pin=\(pin)", base + "/signin"])
        guard r.stdout == "303" else { throw BenchError("console sign-in answered \(r.stdout): \(r.stderr)") }
    }

    static func curl(_ arguments: [String]) async throws -> CommandResult {
        try await runCommand("/usr/bin/curl", ["-sk", "--max-time", "60"] + arguments)
    }

    static func consolePort(_ daemon: DaemonProcess) async throws -> Int {
        let started = ContinuousClock.now
        while since(started) < 30 {
            if let range = daemon.log.range(of: #"serving the web console.* console_port=\d+"#, options: .regularExpression),
               let port = daemon.log[range].split(separator: "=").last.flatMap({ Int($0) }) {
                return port
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("outlawd never said where it serves the web console: \(daemon.log.suffix(2000))")
    }
}
