import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// `/metrics` checked with the real tools: Debian's `prometheus` package (`scripts/bootstrap --test` installs it)
/// gives `promtool` for the scrape and the alert rules, and a real Prometheus server that scrapes the real outlawd.
@Suite("Metrics with Prometheus, end to end", .serialized, .timeLimit(.minutes(5)))
struct PrometheusTests {
    static let rules = BootstrapTests.repository + "/packaging/prometheus"
    static let promtool = "/usr/bin/promtool"
    static let prometheus = "/usr/bin/prometheus"

    static func requireTools() throws {
        for tool in [promtool, prometheus] {
            try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: scripts/bootstrap --test installs prometheus")
        }
    }

    @Test func alertRulesPassPromtoolAndTheirUnitTests() async throws {
        try Self.requireTools()
        let check = try await runCommand(Self.promtool, ["check", "rules", Self.rules + "/outlawd-alerts.yml"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("SUCCESS"))
        let unit = try await runCommand(Self.promtool, ["test", "rules", Self.rules + "/outlawd-alerts.test.yml"])
        #expect(unit.status == 0, "\(unit.stdout)\(unit.stderr)")
        #expect(unit.stdout.contains("SUCCESS"))
        // The dashboard beside them is JSON Grafana can import, on outlawd's metrics.
        let dashboard = try Data(contentsOf: URL(fileURLWithPath: Self.rules + "/outlawd-dashboard.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: dashboard) as? [String: Any])
        #expect((object["panels"] as? [Any])?.isEmpty == false)
        #expect(String(decoding: dashboard, as: UTF8.self).contains("outlawd_ack_duration_seconds_bucket"))
    }

    @Test func promtoolAcceptsAScrapeAndPrometheusCountsTheBatchesSent() async throws {
        try Self.requireTools()
        try await DaemonProcess.withCrew(users: [.jane]) { d, crew in
            let token = crew.token
            let (c, _) = try await d.session(device: "HH-1", token: token)
            for n in 1...3 {
                try c.send(json: DeviceProtocolTests.batch("m-\(n)", events: [DeviceProtocolTests.harvest(seq: 1), DeviceProtocolTests.harvest(seq: 2)]))
                #expect(try await c.readJSON()["op"] as? String == "ack")
            }
            try c.send(json: DeviceProtocolTests.batch("m-1", events: [DeviceProtocolTests.harvest(seq: 1), DeviceProtocolTests.harvest(seq: 2)]))
            #expect(try await c.readJSON()["duplicate"] as? Bool == true)
            try c.send(json: DeviceProtocolTests.batch("m-ghost", user: "ghost"))
            #expect(try await c.readJSON()["code"] as? String == "unknown_user")

            let port = try await d.metricsPort()
            let scrape = try await runCommand("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(port)/metrics"])
            #expect(scrape.status == 0, "\(scrape.stderr)")
            let text = scrape.stdout
            #expect(text.contains(#"outlawd_batches_total{result="stored"} 3"#), "\(text)")
            #expect(text.contains(#"outlawd_batches_total{result="duplicate"} 1"#))
            #expect(text.contains(#"outlawd_batches_total{result="unknown_user"} 1"#))
            #expect(text.contains(#"outlawd_events_total{type="plant.harvest",result="stored"} 6"#))
            #expect(text.contains("outlawd_ack_duration_seconds_count 5"))
            #expect(text.contains("outlawd_devices_connected 1"))
            #expect(text.contains(#"outlawd_build_info{version=""#))
            // No label names a person, a device, a tag or a token.
            for name in ["jane", "ghost", "HH-1", DeviceProtocolTests.plant, token] {
                #expect(!text.contains(name), "the scrape names \(name)")
            }
            let lint = try await runCommand(Self.promtool, ["check", "metrics"], stdin: text)
            #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool check metrics: \(lint.stdout)\(lint.stderr)")

            let server = try await PrometheusServer.start(scraping: port, rules: Self.rules + "/outlawd-alerts.yml")
            defer { server.kill() }
            // A scrape has happened once Prometheus reports the target up; its samples are then queryable.
            let up = try await eventually(timeout: .seconds(60), every: .milliseconds(200)) { () -> Bool? in
                let targets = try await server.api("targets")
                let active = (targets["activeTargets"] as? [[String: Any]]) ?? []
                return active.contains { $0["health"] as? String == "up" } ? true : nil
            }
            #expect(up == true, "Prometheus never scraped outlawd: \(server.log)")
            let stored = try await eventually(timeout: .seconds(30), every: .milliseconds(200)) { () -> String? in
                let result = try await server.api("query", query: #"outlawd_batches_total{result="stored"}"#)["result"] as? [[String: Any]]
                return (result?.first?["value"] as? [Any])?.last as? String
            }
            #expect(stored == "3", "\(server.log)")
            // The alert rules load in the real server too.
            let groups = try await server.api("rules")["groups"] as? [[String: Any]]
            #expect(groups?.contains { $0["name"] as? String == "outlawd" } == true, "\(server.log)")
            // Every query of the dashboard is PromQL this Prometheus runs, and those on outlawd's counters find series.
            let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.rules + "/outlawd-dashboard.json")))
            let panels = ((dashboard as? [String: Any])?["panels"] as? [[String: Any]]) ?? []
            let queries = panels.flatMap { ($0["targets"] as? [[String: Any]]) ?? [] }.compactMap { $0["expr"] as? String }
            #expect(queries.count >= 10)
            for query in queries {
                let expr = query.replacingOccurrences(of: "$__rate_interval", with: "1m").replacingOccurrences(of: "$instance", with: ".*")
                let answer = try await server.api("query", query: expr)
                #expect(answer["resultType"] != nil, "the dashboard's query does not run: \(expr)")
            }
            #expect(await d.stop() == 0, "outlawd stops cleanly with Prometheus's connection open: \(d.log)")
            await server.stop()
        }
    }

    @Test func uploadsShowAsMetrcRequestsPerActionWithKeysAndReferenceAges() async throws {
        try Self.requireTools()
        try await UploadHarness.run(referenceSync: true) { h in
            try await h.send("jane-1", user: "jane", events: [
                Events.move(1, plant: Tags.plant(1)), Events.move(2, plant: Tags.plant(2)), Events.adjust(3, package: Tags.package(2)),
            ])
            try await h.waitFor(["jane-1"], states: ["uploaded"])
            let port = try await h.daemon.metricsPort()
            // The store's gauges are read at most every few seconds: scrape until they show the upload.
            let text = try await eventually(timeout: .seconds(30), every: .milliseconds(500)) { () -> String? in
                let text = try await runCommand("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(port)/metrics"]).stdout
                let settled = Self.value(#"outlawd_events_waiting{state="queued"}"#, in: text) == 0
                    && Self.value(#"outlawd_keys{kind="personal",status="ok"}"#, in: text) == 1
                    && Self.value(#"outlawd_reference_age_seconds{kind="plants"}"#, in: text) != nil
                return settled ? text : nil
            }
            let scrape = try #require(text, "the gauges never showed the upload")
            #expect(Self.value(#"outlawd_events_total{type="plant.move",result="uploaded"}"#, in: scrape) == 2)
            #expect(Self.value(#"outlawd_events_total{type="package.adjust",result="uploaded"}"#, in: scrape) == 1)
            #expect((Self.value(#"outlawd_metrc_requests_total{action="move_plants",status_class="2xx"}"#, in: scrape) ?? 0) >= 1)
            #expect((Self.value(#"outlawd_metrc_requests_total{action="reference",status_class="2xx"}"#, in: scrape) ?? 0) >= 1)
            #expect((Self.value(#"outlawd_metrc_request_duration_seconds_count{action="adjust_packages"}"#, in: scrape) ?? 0) >= 1)
            #expect((Self.value("outlawd_commit_duration_seconds_count", in: scrape) ?? 0) >= 1)
            for secret in [SandboxDemo.janeKey, SandboxDemo.ownerKey, SandboxDemo.vendorKey, "jane", Tags.plant(1)] {
                #expect(!scrape.contains(secret))
            }
            let lint = try await runCommand(Self.promtool, ["check", "metrics"], stdin: scrape)
            #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool check metrics: \(lint.stdout)\(lint.stderr)")
        }
    }

    /// The value of one series in a scrape (`name{labels}` exactly as served).
    static func value(_ series: String, in text: String) -> Double? { DaemonProcess.value(series, in: text) }
}

/// A real Prometheus on loopback: a free port, a data folder of its own, scraping one target every second.
final class PrometheusServer: @unchecked Sendable {
    let process: Process
    let port: Int
    let directory: TempDirectory

    private init(process: Process, port: Int, directory: TempDirectory) {
        self.process = process
        self.port = port
        self.directory = directory
    }

    static func start(scraping target: Int, rules: String) async throws -> PrometheusServer {
        let directory = try TempDirectory("prometheus")
        let config = try directory.write("prometheus.yml", """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            rule_files:
              - \(rules)
            scrape_configs:
              - job_name: outlawd
                static_configs:
                  - targets: ['127.0.0.1:\(target)']
            """)
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: PrometheusTests.prometheus)
        process.arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(directory.file("data"))",
                             "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        // Its log goes to a file: a pipe nobody reads would fill and stall it.
        _ = FileManager.default.createFile(atPath: directory.file("prometheus.log"), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.file("prometheus.log")))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return PrometheusServer(process: process, port: port, directory: directory)
    }

    var log: String { (try? String(contentsOfFile: directory.file("prometheus.log"), encoding: .utf8)) ?? "" }

    /// `GET /api/v1/PATH`; its `data`, or nil while the server is not answering yet.
    func api(_ path: String, query: String? = nil) async throws -> [String: Any] {
        var arguments = ["-s", "http://127.0.0.1:\(port)/api/v1/\(path)"]
        if let query { arguments = ["-s", "-G", "http://127.0.0.1:\(port)/api/v1/\(path)", "--data-urlencode", "query=\(query)"] }
        let answer = try await runCommand("/usr/bin/curl", arguments)
        guard answer.status == 0,
              let object = try? JSONSerialization.jsonObject(with: Data(answer.stdout.utf8)) as? [String: Any],
              object["status"] as? String == "success", let data = object["data"] as? [String: Any] else { return [:] }
        return data
    }

    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        _ = try? await offload { self.process.waitUntilExit() }
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    /// A port nothing listens on now: bound to 0 and let go (the kernel does not hand it out again at once).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LineClient.Failure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw LineClient.Failure(description: "cannot find a free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { kill() }
}
