import Foundation
import MetrcSandbox
import OutlawProtocol
import OutlawStore
import OutlawTestSupport

/// The figures of one ingest run (many handhelds, one daemon).
struct IngestFigures: Sendable {
    var label: String
    var handhelds: Int
    var eventsPerBatch: Int
    var seconds: Double
    var offeredPerSecond = 0.0
    var ackedPerSecond = 0.0
    var batchesPerSecond = 0.0
    var ackedEvents = 0
    var latency = Latencies()
    /// The daemon's VmHWM when the run ended (its peak since it started).
    var peakRSS: Int?
    /// Daemon CPU (user + system) over the run, per 100,000 events acknowledged.
    var cpuPer100k: Double?
    var daemonCPUSeconds: Double?
    /// The time the rates are over: flat out, from the start to the last answer; paced, the run's length.
    var busySeconds = 0.0
    var nacks = 0
    var errors: [String] = []
    var latestStartMs = 0.0
}

/// A real outlawd (the build's own binary) in a temp folder, pointed at the in-process sandbox, with devices and
/// users added and uploads paused: what the ingest runs measure.
final class IngestDaemon: Sendable {
    let daemon: DaemonProcess
    let devices: [(name: String, token: String)]

    init(daemon: DaemonProcess, devices: [(name: String, token: String)]) {
        self.daemon = daemon
        self.devices = devices
    }

    /// Starts the daemon, waits for its first reference sync (so the scan check runs as in production, against a
    /// full copy of Metrc's lists), adds `deviceCount` devices and jane and john, and pauses uploads.
    static func start(sandbox: MetrcSandboxServer, deviceCount: Int, label: String, metrics: Bool = true) async throws -> IngestDaemon {
        let dir = try TempDirectory("outlawd-bench-\(label)")
        try dir.write("secrets/vendor-key", SandboxDemo.vendorKey)
        try dir.write("secrets/default-key", SandboxDemo.ownerKey)
        // The daemon's GET budget is raised only so its first sync of the seeded lists takes a second, not ten;
        // reads play no part in ingest.
        // Every handheld of the bench connects from 127.0.0.1 at once: the per-address cap before hello (meant for one
        // attacker's address) is raised, as an operator whose handhelds share one NAT address would.
        let daemon = try await DaemonProcess(server: "max_unauthenticated_per_address = 1024", metrc: IngestDaemon.metrcSettings(sandbox.baseURL), metrics: metrics ? "listen = \"127.0.0.1:0\"" : "listen = \"\"", directory: dir,
            environment: ProcessInfo.processInfo.environment["BENCH_DAEMON_JOURNAL"] == "1" ? ["OUTLAWD_LOG_TARGET": "journal"] : [:])
        let store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 10_000, opening: .currentSchemaOnly)
        try await waitForReferenceSync(store, daemon: daemon)
        for user in ["jane", "john"] {
            try store.addUser(name: user, role: .user, pin: "4821", actor: "outlawd-bench")
        }
        var devices: [(name: String, token: String)] = []
        for i in 0..<deviceCount {
            let name = "HH-\(String(format: "%03d", i))"
            devices.append((name, try store.addDevice(name: name, actor: "outlawd-bench")))
        }
        let paused = try await daemon.ctl(["pause"])
        guard paused.status == 0 else { throw BenchError("outlawctl pause failed: \(paused.stderr)") }
        return IngestDaemon(daemon: daemon, devices: devices)
    }

    /// Polls the store until every reference list has synced once (or failed), at most two minutes.
    /// `[metrc]` for a bench daemon against `baseURL`: the key files in `secrets/`, and a GET budget raised only so its
    /// first sync of the seeded lists takes a second, not ten (reads play no part in what is measured).
    static func metrcSettings(_ baseURL: String) -> String {
        """
        base_url = "\(baseURL)"
        vendor_key_file = "secrets/vendor-key"
        default_key_file = "secrets/default-key"
        gets_per_second_per_facility = 2000
        concurrent_gets_per_facility = 20
        gets_per_second_per_vendor_key = 2000
        concurrent_gets_per_vendor_key = 40
        """
    }

    static func waitForReferenceSync(_ store: Store, daemon: DaemonProcess) async throws {
        let started = ContinuousClock.now
        let kinds = ReferenceKind.allCases.count
        while since(started) < 120 {
            let states = try store.referenceSyncStates(license: EventMix.license)
            if states.filter({ $0.lastSuccessAt != nil || $0.lastError != nil }).count >= kinds {
                let failed = states.filter { $0.lastSuccessAt == nil }
                if !failed.isEmpty {
                    log("reference sync failed for \(failed.map(\.kind.rawValue)): \(failed[0].lastError ?? "")")
                }
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        log("the daemon's first reference sync did not finish in 120 s; measuring anyway")
    }

    func stop() async {
        await daemon.stop()
    }
}

enum IngestBench {
    /// Runs `handhelds` handheld processes (devices 0..<handhelds of the rig) against the daemon at once, gathers their figures.
    static func run(_ rig: IngestDaemon, label: String, template: HandheldPlan, handhelds: Int) async throws -> IngestFigures {
        precondition(handhelds <= rig.devices.count)
        let pid = rig.daemon.pid
        // Time for every process to start, connect and say hello before the common start.
        let warmup = template.mode == .paced ? template.warmup : 0
        let startAt = Date().timeIntervalSince1970 + 2 + 0.08 * Double(handhelds) + warmup
        var plans: [HandheldPlan] = []
        for i in 0..<handhelds {
            var plan = template
            plan.port = rig.daemon.port
            plan.device = rig.devices[i].name
            plan.token = rig.devices[i].token
            plan.index = i
            plan.phase = Double(i) / Double(handhelds)
            plan.startAt = startAt
            plans.append(plan)
        }
        let executable = ownExecutable()
        async let gathered = gather(plans, executable: executable)
        try await Task.sleep(for: .seconds(max(0, startAt - Date().timeIntervalSince1970)))
        let cpuBefore = ProcessFigures.cpuSeconds(pid: pid)
        let summaries = try await gathered
        let cpuAfter = ProcessFigures.cpuSeconds(pid: pid)

        var figures = IngestFigures(label: label, handhelds: handhelds, eventsPerBatch: template.eventsPerBatch, seconds: template.seconds)
        var latencies: [Double] = []
        var offered = 0
        var batches = 0
        var lastAck = 0.0
        for s in summaries {
            latencies += s.latenciesMs
            offered += s.offeredEvents
            figures.ackedEvents += s.ackedEvents
            batches += s.ackedBatches
            lastAck = max(lastAck, s.lastAckSeconds)
            figures.nacks += s.nacks
            figures.errors += s.errors.map { "\(s.device): \($0)" }
            figures.latestStartMs = max(figures.latestStartMs, s.lateStartMs)
        }
        figures.latency = Latencies(latencies)
        figures.offeredPerSecond = Double(offered) / template.seconds
        // Flat out, the daemon is saturated from the start until the last answer: every event acked over that time
        // (the events still in the window when sending stops included; counting only answers before the end would
        // leave out the first answers' wait). Paced, what was due during the run against what was acked for it.
        let busy = template.mode == .flat ? max(lastAck, 0.001) : template.seconds
        figures.ackedPerSecond = Double(figures.ackedEvents) / busy
        figures.batchesPerSecond = Double(batches) / busy
        figures.busySeconds = busy
        figures.peakRSS = ProcessFigures.peakRSS(pid: pid)
        if let cpuBefore, let cpuAfter {
            figures.daemonCPUSeconds = cpuAfter - cpuBefore
            if figures.ackedEvents > 0 { figures.cpuPer100k = (cpuAfter - cpuBefore) / Double(figures.ackedEvents) * 100_000 }
        }
        if figures.latestStartMs > 100 {
            figures.errors.append(String(format: "a handheld started %.0f ms late (slow process start)", figures.latestStartMs))
        }
        return figures
    }

    static func gather(_ plans: [HandheldPlan], executable: String) async throws -> [HandheldSummary] {
        try await withThrowingTaskGroup(of: HandheldSummary.self) { group in
            for plan in plans {
                group.addTask {
                    // runCommand waits on a thread of its own, never on the small cooperative pool.
                    let result = try await runCommand(executable, plan.arguments)
                    let last = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
                    guard result.status == 0,
                          let summary = try? JSONDecoder().decode(HandheldSummary.self, from: Data(last.utf8)) else {
                        throw BenchError("handheld \(plan.device) exited \(result.status): \(result.stderr.suffix(500)) \(last.prefix(300))")
                    }
                    return summary
                }
            }
            var all: [HandheldSummary] = []
            for try await summary in group { all.append(summary) }
            return all
        }
    }
}
