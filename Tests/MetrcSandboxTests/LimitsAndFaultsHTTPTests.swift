import AsyncHTTPClient
import Foundation
import Testing
import MetrcSandbox
import NIOCore
import NIOHTTP1

@Suite("Rate limits and faults over HTTP")
struct LimitsAndFaultsHTTPTests {
    @Test func aBurstOfGetsGets429PastFiftyPerSecond() async throws {
        // The clock stands still, so all 60 fall in one second however slow the machine is. They go one after
        // another: the per-second count does not depend on how many are open at once (that limit has its own
        // test), and 60 simultaneous connections only made the outcome depend on how busy the machine was.
        let clock = ManualClock()
        let limits = RateLimits(concurrentGetsPerFacility: 1000, concurrentGetsPerVendorKey: 1000)
        try await withSandbox(configuration: SandboxConfiguration(rateLimits: limits, now: { clock.now })) { (h: Harness) async throws in
            var statuses: [HTTPResult] = []
            for _ in 0..<60 {
                statuses.append(try await h.get("/locations/v2/active"))
            }
            let ok = statuses.filter { $0.status == 200 }.count
            let limited = statuses.filter { $0.status == 429 }
            #expect(ok == 50)
            #expect(limited.count == 10)
            #expect(limited.allSatisfy { $0.headers.first(name: "Retry-After") == "1" })
            // Writes are not limited.
            #expect(try await h.write(.PUT, "/plants/v2/location", [movePlantObject(SandboxDemo.plantTag(1))]).status == 200)
            // Another facility has its own budget (the vendor key's 150 is not reached yet).
            #expect(try await h.get("/locations/v2/active", license: SandboxDemo.secondLicense).status == 200)
            clock.advance(seconds: 1.5)
            #expect(try await h.get("/locations/v2/active").status == 200)
        }
    }

    @Test func retryAfterCanBeLeftOutAndVendorLimitsApply() async throws {
        let clock = ManualClock()
        let limits = RateLimits(getsPerSecondPerFacility: 100, getsPerSecondPerVendorKey: 3)
        try await withSandbox(configuration: SandboxConfiguration(rateLimits: limits, sendRetryAfter: false, now: { clock.now })) { (h: Harness) async throws in
            for license in ["LIC-0001", "LIC-0002", "LIC-0001"] {
                #expect(try await h.get("/strains/v2/active", license: license).status == 200)
            }
            let limited = try await h.get("/strains/v2/active", license: "LIC-0002")
            #expect(limited.status == 429)
            #expect(limited.headers.first(name: "Retry-After") == nil)
        }
    }

    @Test func tooManyConcurrentGetsGet429() async throws {
        let limits = RateLimits(getsPerSecondPerFacility: 1000, getsPerSecondPerVendorKey: 1000,
                                concurrentGetsPerFacility: 3, concurrentGetsPerVendorKey: 30)
        try await withSandbox(configuration: SandboxConfiguration(rateLimits: limits)) { (h: Harness) async throws in
            // The admitted GETs hold their slots for as long as the latency: long enough that all 8 have arrived
            // before any slot frees, even when a busy machine spreads out their connections.
            try await h.server.setFaults(.latency(milliseconds: 4000, method: "GET"))
            let results = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await h.get("/items/v2/active") }
                }
                return try await group.reduce(into: [HTTPResult]()) { $0.append($1) }
            }
            let ok = results.filter { $0.status == 200 }.count
            #expect(ok >= 1 && ok <= 3, "\(results.map(\.status))")
            #expect(results.filter { $0.status == 429 }.count >= 5)
        }
    }

    @Test func latencyFaultDelaysAnswers() async throws {
        try await withSandbox { (h: Harness) async throws in
            try await h.server.setFaults(.latency(milliseconds: 1200, count: 1, path: "/plants/v2/flowering"))
            let clock = ContinuousClock()
            let slow = try await clock.measure { _ = try await h.get("/plants/v2/flowering") }
            #expect(slow >= .milliseconds(1200))
            #expect(await h.server.faults().isEmpty)
            // The fault was used up (checked above), so the next answer is not delayed; no speed is compared,
            // since a plain answer took 3.9 s on a loaded cold CI run.
            #expect(try await h.get("/plants/v2/flowering").status == 200)
        }
    }

    @Test func errorFaultsAnswerMessagesAndApplyNothing() async throws {
        try await withSandbox { (h: Harness) async throws in
            let faults: JSONValue = [
                ["kind": "error", "status": 500, "count": 1, "method": "POST"],
                ["kind": "error", "status": 503, "count": 1, "method": "POST"],
                ["kind": "error", "status": 400, "message": "Server fault, try again.", "count": 1, "method": "POST"],
            ]
            #expect(try await h.control(.POST, "faults", faults).status == 200)
            let body = [adjustObject(SandboxDemo.packageTag(1))]
            let first = try await h.write(.POST, "/packages/v2/adjust", body)
            #expect(first.status == 500)
            #expect(first.json?[field: "Message"]?.stringValue != nil)
            // A GET is not matched by the POST-only faults.
            #expect(try await h.get("/packages/v2/active").status == 200)
            let second = try await h.write(.POST, "/packages/v2/adjust", body)
            #expect(second.status == 503)
            let third = try await h.write(.POST, "/packages/v2/adjust", body)
            #expect(third.status == 400)
            #expect(third.json?[field: "Message"]?.stringValue == "Server fault, try again.")
            #expect(await h.server.package(label: SandboxDemo.packageTag(1))?.quantity == 101)
            #expect(await h.server.writes().isEmpty)
            // The counts are used up: the fourth goes through.
            #expect(try await h.write(.POST, "/packages/v2/adjust", body).status == 200)
            #expect(await h.server.package(label: SandboxDemo.packageTag(1))?.quantity == 99)
            #expect(try await h.control(.GET, "faults").json?.arrayValue?.isEmpty == true)
        }
    }

    @Test func hangFaultHoldsUntilTheClientTimesOut() async throws {
        try await withSandbox { (h: Harness) async throws in
            #expect(try await h.control(.POST, "faults", ["kind": "hang", "count": 1, "path": "/plants/v2/*"]).status == 200)
            let start = ContinuousClock.now
            await #expect(throws: (any Error).self) {
                _ = try await h.write(.PUT, "/plants/v2/harvest", [harvestObject(SandboxDemo.floweringPlantTag(1))],
                                      timeout: .milliseconds(500))
            }
            #expect(ContinuousClock.now - start >= .milliseconds(450))
            #expect(await h.server.plant(label: SandboxDemo.floweringPlantTag(1))?.state == .tracked)
            #expect(try await h.get("/plants/v2/flowering").status == 200)
        }
    }

    @Test func applyThenFailAppliesTheWriteThenAnswers500() async throws {
        try await withSandbox { (h: Harness) async throws in
            try await h.server.setFaults(.applyThenFail(status: 500, count: 1, path: "/packages/v2/adjust"))
            let tag = SandboxDemo.packageTag(2)
            let result = try await h.write(.POST, "/packages/v2/adjust", [adjustObject(tag, quantity: -2)])
            #expect(result.status == 500)
            #expect(await h.server.package(label: tag)?.quantity == 100)
            let history = try await h.get("/packages/v2/adjustments")
            #expect(history.json?.data.first?[field: "PackageLabel"]?.stringValue == tag)
            #expect(await h.server.writes().count == 1)
        }
    }

    @Test func applyThenDropAppliesTheWriteThenClosesTheConnection() async throws {
        try await withSandbox { (h: Harness) async throws in
            #expect(try await h.control(.POST, "faults", ["kind": "applyThenFail", "drop": true, "count": 1]).status == 200)
            let tag = SandboxDemo.floweringPlantTag(3)
            await #expect(throws: (any Error).self) {
                _ = try await h.write(.PUT, "/plants/v2/harvest", [harvestObject(tag)])
            }
            #expect(await h.server.plant(label: tag)?.state == .harvested)
            #expect(await h.server.writes().first?.userName == "jane")
            // A rejected write under the fault is answered normally.
            try await h.server.setFaults(.applyThenFail(drop: true, count: 1))
            let rejected = try await h.write(.PUT, "/plants/v2/harvest", [harvestObject(tag)])
            #expect(rejected.status == 400)
        }
    }

    @Test func outageResetsConnectionsUntilCleared() async throws {
        try await withSandbox { (h: Harness) async throws in
            #expect(try await h.control(.POST, "faults", ["kind": "outage", "mode": "reset"]).status == 200)
            for _ in 0..<2 {
                await #expect(throws: (any Error).self) { _ = try await h.get("/facilities/v2/", license: nil) }
            }
            // The control API stays up.
            #expect(try await h.control(.DELETE, "faults").status == 200)
            #expect(try await h.get("/facilities/v2/", license: nil).status == 200)
        }
    }

    @Test func refusingOutageClosesThePortForItsDuration() async throws {
        try await withSandbox { (h: Harness) async throws in
            #expect(try await h.control(.POST, "faults", ["kind": "outage", "mode": "refuse"]).status == 400)
            let set = try await h.control(.POST, "faults", ["kind": "outage", "mode": "refuse", "durationMilliseconds": 3000])
            #expect(set.status == 200)
            let fresh = HTTPClient(eventLoopGroupProvider: .singleton)
            var request = HTTPClientRequest(url: h.base + "/_sandbox/health")
            request.method = .GET
            var refused = false
            do {
                _ = try await fresh.execute(request, timeout: .seconds(2))
            } catch {
                refused = true
            }
            #expect(refused, "connection should be refused during the outage")
            // The port opens again by itself once the duration has passed: wait for that event, bounded.
            var status: HTTPResponseStatus?
            for _ in 0..<100 where status != .ok {
                status = try? await fresh.execute(request, timeout: .seconds(5)).status
                if status != .ok { try await Task.sleep(for: .milliseconds(100)) }
            }
            try await fresh.shutdown()
            #expect(status == .ok)
            #expect(try await h.get("/facilities/v2/", license: nil).status == 200)
        }
    }

    @Test func refusingOutageEndsWhenFaultsAreClearedInProcess() async throws {
        try await withSandbox { (h: Harness) async throws in
            try await h.server.setFaults(.outage(mode: .refuse))
            await #expect(throws: (any Error).self) {
                _ = try await h.get("/facilities/v2/", license: nil, timeout: .milliseconds(500))
            }
            await h.server.clearFaults()
            #expect(try await h.get("/facilities/v2/", license: nil).status == 200)
        }
    }

    /// While a refuse-mode outage has no listener, the port stays the sandbox's: nothing else can bind it (another
    /// test's server, a client's source port), so it can always listen there again. Once, in the parallel suite, the
    /// port was taken meanwhile and a GET after the outage reached whatever had it.
    @Test func aRefusingOutageHoldsItsPortUntilItListensAgain() async throws {
        try await withSandbox { (h: Harness) async throws in
            try await h.server.setFaults(.outage(mode: .refuse))
            await #expect(throws: (any Error).self) {
                _ = try await h.get("/facilities/v2/", license: nil, timeout: .milliseconds(500))
            }
            // A plain bind to the port, as any other server would try: refused, the port is in use.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            try #require(fd >= 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(h.server.port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            let code = errno
            #expect(bound == -1 && code == EADDRINUSE, "the port was free during the outage (bind: \(bound), errno \(code))")
            await h.server.clearFaults()
            #expect(try await h.get("/facilities/v2/", license: nil).status == 200)
        }
    }

    @Test func probabilisticFaultsRepeatWithTheSeed() async throws {
        func run(seed: UInt64) async throws -> [Int] {
            var statuses: [Int] = []
            try await withSandbox(configuration: SandboxConfiguration(faultSeed: seed)) { (h: Harness) async throws in
                try await h.server.setFaults(.error(status: 503, probability: 0.5))
                for _ in 0..<24 {
                    statuses.append(try await h.get("/strains/v2/active").status)
                }
            }
            return statuses
        }
        let first = try await run(seed: 99)
        #expect(first.contains(503) && first.contains(200))
        #expect(try await run(seed: 99) == first)
    }
}
