import Foundation
import Logging
import MetrcSandbox

/// The figures of one `sandbox-writes` run: 100-object writes against a small and a big sandbox.
struct SandboxWriteFigures: Sendable {
    struct Run: Sendable {
        var records = 0
        var seedSeconds = 0.0
        /// Per 100-object write, in milliseconds.
        var latency = Latencies()
    }

    var small = Run()
    var big = Run()
    var writes = 0
    var objectsPerWrite = 0
    var warmup = 0
}

/// Issue 21, item 0: "a 100-object write answered in ≤ 5 ms with 1,000,000 plants and packages stored". The sandbox's
/// whole request path (faults, keys, body parsing, the write, the write log, the answer) through
/// `MetrcSandboxServer.response(to:)`, without a socket, first against 1,000 records (the baseline), then against
/// 1,000,000: half plants and half packages over the demo's two licenses. Writes alternate plant moves
/// (`PUT /plants/v2/location`) and package moves (`PUT /packages/v2/location`) of 100 distinct random tags.
enum SandboxWriteBench {
    static let writes = 200
    static let warmup = 10
    static let objectsPerWrite = 100
    static let target = 5.0

    static func run() async throws -> SandboxWriteFigures {
        var figures = SandboxWriteFigures(writes: writes, objectsPerWrite: objectsPerWrite, warmup: warmup)
        figures.small = try await measure(records: 1_000)
        log("sandbox writes, 1,000 records: p50 \(ms(figures.small.latency.p50)) ms")
        figures.big = try await measure(records: 1_000_000)
        report(figures)
        return figures
    }

    static func measure(records: Int) async throws -> SandboxWriteFigures.Run {
        let licenses = [SandboxDemo.license, SandboxDemo.secondLicense]
        let now = Date()
        var state = SandboxState.demo()
        state.plants = []
        state.packages = []
        let start = ContinuousClock.now
        var plantTags: [[String]] = []
        var packageTags: [[String]] = []
        for (i, license) in licenses.enumerated() {
            // Each license a quarter of the records as plants, a quarter as packages (the first takes any rest).
            let share = records / 4 + (i == 0 ? (records % 4) / 2 : 0)
            let packageShare = records / 4 + (i == 0 ? records % 4 - (records % 4) / 2 : 0)
            let seeded = try state.seed(license: license, plants: share, packages: packageShare, now: now)
            plantTags.append(seeded.plantLabels)
            packageTags.append(seeded.packageLabels)
        }
        let seedSeconds = since(start)
        guard state.plants.count + state.packages.count == records else {
            throw BenchError("sandbox-writes: seeded \(state.plants.count + state.packages.count) records, not \(records)")
        }
        log("sandbox writes: \(records) records seeded in " + String(format: "%.2f s", seedSeconds))

        var logger = Logger(label: "outlawd-bench.sandbox-writes")
        logger.logLevel = .warning
        let server = MetrcSandboxServer(state: state, configuration: SandboxConfiguration(rateLimits: .unlimited),
                                        logger: logger)
        state = SandboxState()  // the server holds the only copy: a write must not copy a million records
        let authorization = BasicCredentials(vendorKey: SandboxDemo.vendorKey, userKey: SandboxDemo.janeKey).headerValue
        let today = JSONValue.string(MetrcDay(now).description)
        let plantPlaces = ["Veg Room", "Flower Room 1", "Flower Room 2"]
        let packagePlaces = ["Vault", "Quarantine", "Processing Room"]
        var random = SeededGenerator(seed: 21)
        var requests: [SandboxRequest] = []
        for n in 0..<(warmup + writes) {
            let forPlants = n % 2 == 0
            let licenseIndex = (n / 2) % licenses.count
            let tags = forPlants ? plantTags[licenseIndex] : packageTags[licenseIndex]
            var picked = Set<Int>()
            while picked.count < min(objectsPerWrite, tags.count) { picked.insert(Int.random(in: 0..<tags.count, using: &random)) }
            let objects: [JSONValue] = picked.sorted().map { i in
                forPlants
                    ? ["Id": nil, "Label": .string(tags[i]), "Location": .string(plantPlaces[n % 3]), "Sublocation": nil,
                       "ActualDate": today]
                    : ["Label": .string(tags[i]), "Location": .string(packagePlaces[n % 3]), "Sublocation": nil,
                       "MoveDate": today]
            }
            let path = forPlants ? "/plants/v2/location" : "/packages/v2/location"
            requests.append(SandboxRequest(method: "PUT", uri: "\(path)?licenseNumber=\(licenses[licenseIndex])",
                                           authorization: authorization, body: JSONValue.array(objects).bytes))
        }

        var times: [Double] = []
        times.reserveCapacity(writes)
        for (n, request) in requests.enumerated() {
            let begin = ContinuousClock.now
            let response = await server.response(to: request)
            let seconds = since(begin)
            guard let response, response.status == 200 else {
                throw BenchError("sandbox-writes: write \(n) answered \(response.map { "\($0.status) \($0.bodyText)" } ?? "nothing")")
            }
            if n >= warmup { times.append(seconds * 1000) }
        }
        // The last write took effect.
        let last = requests[requests.count - 1]
        if let label = JSONValue.parse(last.body)?[0]?[field: "Label"]?.stringValue {
            let license = licenses[((requests.count - 1) / 2) % licenses.count]
            var moved = await server.package(label: label, license: license)?.location
            if moved == nil { moved = await server.plant(label: label, license: license)?.location }
            guard moved == packagePlaces[(requests.count - 1) % 3] || moved == plantPlaces[(requests.count - 1) % 3] else {
                throw BenchError("sandbox-writes: \(label) is in \(moved ?? "no location") after the last write")
            }
        }
        return SandboxWriteFigures.Run(records: records, seedSeconds: seedSeconds, latency: Latencies(times))
    }

    static func ms(_ v: Double) -> String { v < 10 ? String(format: "%.2f", v) : String(format: "%.1f", v) }

    static func report(_ f: SandboxWriteFigures) {
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        func line(_ run: SandboxWriteFigures.Run) -> String {
            var digits = String(run.records)
            var records = ""
            while digits.count > 3 {
                records = "," + digits.suffix(3) + records
                digits.removeLast(3)
            }
            records = digits + records
            return "  \(records) records: p50 / p99 / max \(ms(run.latency.p50)) / \(ms(run.latency.p99)) / \(ms(run.latency.max)) ms"
                + String(format: " per write (seeded in %.2f s)", run.seedSeconds)
        }
        let met = f.big.latency.count > 0 && f.big.latency.p99 <= target
        print("""
            sandbox writes (\(build) build): \(f.writes) writes × \(f.objectsPerWrite) objects (plant and package moves, two \
            licenses), the whole request path minus the socket; \(f.warmup) warm-up writes not counted
            \(line(f.small))   (baseline)
            \(line(f.big))   target ≤ \(ms(target)) ms: \(met ? "met (p99)" : "NOT met (p99)")
              1,000,000 ÷ 1,000: p50 \(String(format: "%.2f", f.big.latency.p50 / max(f.small.latency.p50, 1e-9)))×, \
            p99 \(String(format: "%.2f", f.big.latency.p99 / max(f.small.latency.p99, 1e-9)))×
            """)
    }
}
