import Foundation
import OutlawProtocol

/// The benchmark's options (`outlawd-bench --help`).
struct BenchOptions: Sendable {
    enum Part: String, CaseIterable, Sendable {
        case flat, baseline, paced, backup, drain, reference, sandboxWrites = "sandbox-writes"
        case backlog100k = "backlog-100k", backlog1m = "backlog-1m", chains, store10m = "store-10m", retention
        case console

        /// The long parts (minutes each in release) run only when named with --only.
        static let onlyWhenNamed: Set<Part> = [.backlog1m, .store10m, .retention]
    }

    var seconds = 20.0
    var parts = Set(Part.allCases).subtracting(Part.onlyWhenNamed)
    var handhelds = 32
    var eventsPerBatch = 500
    var window = 16
    var pacedHandhelds = 50
    /// Events a second per handheld, paced and light.
    var pacedRate = 100
    var lightRate = 20
    var pacedEventsPerBatch = 20
    /// Paced: seconds of sending before the measured run (not counted).
    var warmup = 2.0
    /// Plants and packages seeded into the sandbox (the ingest events name them; the reference sync reads them).
    var plants = 5000
    var packages = 2000
    var drainEvents = 10_000
    var drainUsers = 5
    var drainTags = 600
    var drainLatencyMs = 200
    var drainConcurrency = 4
    var drainObjects = 100
    /// Events of the backlog parts; nil: 100,000 and 1,000,000.
    var backlogEvents: Int?
    var chainTags = 450
    var chainLength = 20
    /// Finished events the store-10m part seeds.
    var storeEvents = 10_000_000
    /// Finished events, 401 to 500 days old, the retention part's first run archives.
    var retentionEvents = 1_000_000
    var doc: String?
    var command: String
    var quick = false
    /// Whether the ingest daemons serve /metrics (on by default, as in production): `--metrics off` measures
    /// what the instrumentation costs.
    var metrics = true

    static let usage = """
        outlawd-bench: the real outlawd under load, every figure against its limit measured in the same run.
        Run through scripts/bench (it builds outlawd, outlawctl and this in one configuration, release by default).

          --seconds N           length of each ingest run (default 20)
          --quick               a smoke run: 3 s runs, 8 flat-out handhelds × 100-event batches, 10 paced handhelds,
                                1 s warm-up, 2,000-event drain, 1,000 plants / 400 packages, 5,000-event backlogs,
                                100×10 chains, a 100,000-event store (each still settable)
          --only LIST           parts to run, comma-separated: flat,baseline,paced,backup,drain,reference,sandbox-writes,
                                backlog-100k,backlog-1m,chains,store-10m,retention,console (default all but backlog-1m, store-10m, retention;
                                backup: a paced run during back-to-back backups, after paced)
          --handhelds N         flat-out handhelds (default 32)      --events N   events a flat-out batch (500)
          --paced-handhelds N   paced handhelds (default 50)         --paced-rate N   events/s each (100; light: 20)
          --warmup N            paced: seconds at the same pace before each measured run, not counted (2)
          --plants N --packages N   seeded into the sandbox (5000, 2000)
          --drain-events N      backlog to upload (10000)            --drain-latency-ms N   added to each write (200)
          --drain-users N --drain-tags N --drain-concurrency N --drain-objects N   (5, 600, 4, 100)
          --backlog-events N    backlog-100k / backlog-1m: the backlog's size instead (e.g. 5000 for a smoke run)
          --chain-tags N --chain-length N   chains: tags, and moves each (450, 20)
          --store-events N      store-10m: finished events seeded (10000000)
          --retention-events N  retention: finished events 401-500 days old that its first run archives (1000000)
          --window N            flat-out batches in flight (16)      --light-rate N   light load events/s each (20)
          --metrics on|off      ingest daemons serve /metrics (default on); off: to measure what metrics cost
          --doc PATH            add the figures to PATH (docs/performance.md) under a dated heading
          --command TEXT        the command to record in the doc (scripts/bench sets it)
          --version             the version, as every outlawd executable prints it
        """

    init(arguments: [String]) throws {
        command = ProcessInfo.processInfo.environment["OUTLAWD_BENCH_COMMAND"] ?? arguments.joined(separator: " ")
        var explicitSeconds: Double?
        var explicit: Set<String> = []
        var i = 1
        func value() throws -> String {
            guard i + 1 < arguments.count else { throw BenchError("\(arguments[i]) needs a value") }
            i += 1
            return arguments[i]
        }
        func int() throws -> Int {
            let name = arguments[i]
            let text = try value()
            guard let v = Int(text), v > 0 else { throw BenchError("\(name) needs a whole number above 0, not \(text)") }
            explicit.insert(name)
            return v
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--seconds":
                let text = try value()
                guard let v = Double(text), v > 0 else { throw BenchError("--seconds needs a number above 0, not \(text)") }
                explicitSeconds = v
            case "--quick": quick = true
            case "--only":
                let names = try value().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                parts = []
                for name in names {
                    guard let part = Part(rawValue: name) else {
                        throw BenchError("--only: unknown part \(name) (known: \(Part.allCases.map(\.rawValue).joined(separator: ",")))")
                    }
                    parts.insert(part)
                }
            case "--handhelds": handhelds = try int()
            case "--events": eventsPerBatch = try int()
            case "--window": window = try int()
            case "--paced-handhelds": pacedHandhelds = try int()
            case "--warmup":
                explicit.insert("--warmup")
                let text = try value()
                guard let v = Double(text), v >= 0 else { throw BenchError("--warmup needs a number of seconds, not \(text)") }
                warmup = v
            case "--paced-rate": pacedRate = try int()
            case "--light-rate": lightRate = try int()
            case "--plants": plants = try int()
            case "--packages": packages = try int()
            case "--drain-events": drainEvents = try int()
            case "--drain-users": drainUsers = try int()
            case "--drain-tags": drainTags = try int()
            case "--drain-latency-ms": drainLatencyMs = try int()
            case "--drain-concurrency": drainConcurrency = try int()
            case "--drain-objects": drainObjects = try int()
            case "--backlog-events": backlogEvents = try int()
            case "--chain-tags": chainTags = try int()
            case "--chain-length": chainLength = try int()
            case "--store-events": storeEvents = try int()
            case "--retention-events": retentionEvents = try int()
            case "--metrics":
                let v = try value()
                guard v == "on" || v == "off" else { throw BenchError("--metrics takes on or off, not \(v)") }
                metrics = v == "on"
            case "--doc": doc = try value()
            case "--command": command = try value()
            case "--help", "-h":
                print(Self.usage)
                exit(0)
            case "--version":
                print(OutlawBuild.version)
                exit(0)
            default:
                throw BenchError("unknown option \(arguments[i]) (see --help)")
            }
            i += 1
        }
        if quick {
            seconds = 3
            if !explicit.contains("--handhelds") { handhelds = 8 }
            if !explicit.contains("--events") { eventsPerBatch = 100 }
            if !explicit.contains("--paced-handhelds") { pacedHandhelds = 10 }
            if !explicit.contains("--drain-events") { drainEvents = 2000 }
            if !explicit.contains("--warmup") { warmup = 1 }
            if !explicit.contains("--plants") { plants = 1000 }
            if !explicit.contains("--packages") { packages = 400 }
            if !explicit.contains("--backlog-events") { backlogEvents = 5000 }
            if !explicit.contains("--chain-tags") { chainTags = 100 }
            if !explicit.contains("--chain-length") { chainLength = 10 }
            if !explicit.contains("--store-events") { storeEvents = 100_000 }
            if !explicit.contains("--retention-events") { retentionEvents = 50_000 }
        }
        if let explicitSeconds { seconds = explicitSeconds }
        guard plants >= eventsPerBatch, packages >= 100 else {
            throw BenchError("--plants must be at least --events (tags within a batch are distinct) and --packages at least 100")
        }
    }
}
