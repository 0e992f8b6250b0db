import Foundation
import Metrc
import MetrcSandbox
import OutlawProtocol
import Testing

@Suite("Key check and reads against the sandbox")
struct ReadTests {
    @Test func checkKeyValidRejectedUnreachable() async throws {
        let server = MetrcSandboxServer(state: .demo())
        try await server.start()
        // No request here waits for a timeout (down is a refused connection): the timeout is only a safety net,
        // and a short one turned a busy machine's slow answer into a wrong outcome.
        let client = MetrcClient(configuration: .init(baseURL: server.baseURL, vendorKey: SandboxDemo.vendorKey,
                                                      requestTimeout: 30))
        #expect(await client.checkKey(SandboxDemo.janeKey) == .valid(licenses: ["LIC-0001", "LIC-0002"]))
        #expect(await client.checkKey(SandboxDemo.johnKey) == .valid(licenses: ["LIC-0001"]))
        #expect(await client.checkKey("no-such-key") == .rejected)
        await server.revokeUserKey(SandboxDemo.janeKey)
        #expect(await client.checkKey(SandboxDemo.janeKey) == .rejected)
        try await server.setFaults(.error(status: 503, count: 1))
        guard case .unreachable = await client.checkKey(SandboxDemo.ownerKey) else {
            Issue.record("expected unreachable on 503")
            return
        }
        #expect(await client.checkKey(SandboxDemo.ownerKey) == .valid(licenses: ["LIC-0001", "LIC-0002"]))
        try await server.shutdown()
        guard case .unreachable(let reason) = await client.checkKey(SandboxDemo.ownerKey) else {
            Issue.record("expected unreachable with the sandbox down")
            return
        }
        #expect(!reason.contains(SandboxDemo.ownerKey))
        #expect(!reason.contains(SandboxDemo.vendorKey))
        try await client.shutdown()
    }

    @Test func wrongVendorKeyIsRejected() async throws {
        let server = MetrcSandboxServer(state: .demo())
        try await server.start()
        let client = MetrcClient(configuration: .init(baseURL: server.baseURL, vendorKey: "other-vendor", requestTimeout: 30))
        #expect(await client.checkKey(SandboxDemo.janeKey) == .rejected)
        try await client.shutdown()
        try await server.shutdown()
    }

    @Test func rateLimitedReads() async throws {
        let frozen = Date()
        let limits = RateLimits(getsPerSecondPerFacility: 1, getsPerSecondPerVendorKey: 2,
                                concurrentGetsPerFacility: 10, concurrentGetsPerVendorKey: 30)
        // No retries: with the sandbox's clock frozen its second never ends, so every retry would be refused too.
        try await withSandbox(SandboxConfiguration(rateLimits: limits, now: { frozen }), rateLimitedRetries: 0) { server, client in
            _ = try await client.list(path: "/locations/v2/active", license: SandboxDemo.license,
                                      userKey: SandboxDemo.janeKey, since: nil, until: nil)
            do {
                _ = try await client.list(path: "/locations/v2/active", license: SandboxDemo.license,
                                          userKey: SandboxDemo.janeKey, since: nil, until: nil)
                Issue.record("expected 429")
            } catch let error as MetrcReadError {
                #expect(error.status == 429)
                #expect(error.retryAfter.map { $0 >= 1 } == true, "\(error)")
            }
            // The vendor key still has one GET this second; the next is 429 → unreachable.
            #expect(await client.checkKey(SandboxDemo.janeKey) == .valid(licenses: ["LIC-0001", "LIC-0002"]))
            guard case .unreachable = await client.checkKey(SandboxDemo.janeKey) else {
                Issue.record("expected unreachable on 429")
                return
            }
        }
    }

    @Test func aGetAnswered429WaitsThePauseAndGoesAgain() async throws {
        try await withSandbox { server, client in
            try await server.setFaults(.error(status: 429, message: "slow down", count: 2, method: "GET"))
            let tally = ReadTally()
            let started = ContinuousClock.now
            let locations = try await MetrcClient.$readTally.withValue(tally) {
                try await client.list(path: "/locations/v2/active", license: SandboxDemo.license, userKey: SandboxDemo.janeKey,
                                      since: nil, until: nil)
            }
            #expect(!locations.isEmpty)
            #expect(tally.requests == 3 && tally.rateLimited == 2)
            // Without Retry-After the pauses are 1 s then 2 s.
            #expect(ContinuousClock.now - started >= .seconds(3))
        }
    }

    @Test func listFollowsPages() async throws {
        try await withSandbox { server, client in
            let vegetative = try await client.list(path: "/plants/v2/vegetative", license: SandboxDemo.license,
                                                   userKey: SandboxDemo.janeKey, since: nil, until: nil)
            #expect(vegetative.count == 150)
            #expect(Set(vegetative.compactMap { $0["Label"]?.stringValue }).count == 150)
            #expect(vegetative.first?["Label"] == .string(SandboxDemo.plantTag(1)))
            #expect(vegetative.last?["Label"] == .string(SandboxDemo.plantTag(150)))
            // Exactly 20 records: one full page, then stop.
            let packages = try await client.list(
                path: "/packages/v2/active", license: SandboxDemo.license, userKey: SandboxDemo.janeKey,
                since: SandboxDemo.baseDate.addingTimeInterval(3600), until: SandboxDemo.baseDate.addingTimeInterval(20 * 3600))
            #expect(packages.map { $0["Label"]?.stringValue } == (1...20).map { SandboxDemo.packageTag($0) })
        }
    }

    @Test func listWindowIsInclusiveAndBareArraysWork() async throws {
        try await withSandbox { server, client in
            // Plants n are modified at baseDate + n hours; a window of [151h, 153h] holds 151...153.
            let flowering = try await client.list(
                path: "/plants/v2/flowering", license: SandboxDemo.license, userKey: SandboxDemo.janeKey,
                since: SandboxDemo.baseDate.addingTimeInterval(151 * 3600),
                until: SandboxDemo.baseDate.addingTimeInterval(153 * 3600))
            #expect(flowering.compactMap { $0["Label"]?.stringValue } == (151...153).map { SandboxDemo.plantTag($0) })
            let units = try await client.list(path: "/unitsofmeasure/v2/active", license: nil,
                                              userKey: SandboxDemo.janeKey, since: nil, until: nil)
            #expect(units.count == 12)
            #expect(units.contains { $0["Name"] == "Grams" })
            let reasons = try await client.list(path: "/packages/v2/adjust/reasons", license: SandboxDemo.license,
                                                userKey: SandboxDemo.janeKey, since: nil, until: nil)
            #expect(reasons.count == 7)
        }
    }

    @Test func listErrors() async throws {
        try await withSandbox { server, client in
            await server.revokeUserKey(SandboxDemo.janeKey)
            do {
                _ = try await client.list(path: "/locations/v2/active", license: SandboxDemo.license,
                                          userKey: SandboxDemo.janeKey, since: nil, until: nil)
                Issue.record("expected 401")
            } catch let error as MetrcReadError {
                #expect(error.status == 401)
            }
            try await server.setFaults(.hang(count: 1))
            do {
                _ = try await client.list(path: "/locations/v2/active", license: SandboxDemo.license,
                                          userKey: SandboxDemo.ownerKey, since: nil, until: nil)
                Issue.record("expected a timeout")
            } catch let error as MetrcReadError {
                #expect(error.isTransportFailure)
            }
        }
    }

    @Test func adjustmentsAfterPost() async throws {
        try await withSandbox { server, client in
            let before = Date()
            let tag = SandboxDemo.packageTag(2)
            let result = await client.send(.adjustPackages, license: SandboxDemo.license,
                                           objects: [metrcObject(.packageAdjust, Events.adjust(tag, quantity: -1.25, reason: "Scale Variance", note: "recalibrated"))],
                                           userKey: SandboxDemo.janeKey)
            guard case .accepted(let ids) = result, let id = ids.first else {
                Issue.record("expected accepted, got \(result)")
                return
            }
            let found = try await client.adjustments(license: SandboxDemo.license, userKey: SandboxDemo.ownerKey,
                                                     since: before, until: Date())
            #expect(found == [MetrcClient.Adjustment(id: id, packageLabel: tag, quantity: -1.25, unit: "Grams",
                                                     reason: "Scale Variance", date: today, note: "recalibrated")])
            // A window before the write sees nothing.
            let earlier = try await client.adjustments(license: SandboxDemo.license, userKey: SandboxDemo.ownerKey,
                                                       since: before.addingTimeInterval(-7200),
                                                       until: before.addingTimeInterval(-3600))
            #expect(earlier.isEmpty)
        }
    }

    @Test func adjustmentsAfterApplyThenFail() async throws {
        try await withSandbox { server, client in
            let before = Date()
            try await server.setFaults(.applyThenFail(drop: true, count: 1, method: "POST", path: "/packages/v2/adjust"))
            // Weight packages only ((n-1) % 6 < 4): the events adjust in grams.
            let tags = (1...60).filter { ($0 - 1) % 6 < 4 }.prefix(25).map { SandboxDemo.packageTag($0) }
            let objects = tags.map { metrcObject(.packageAdjust, Events.adjust($0, quantity: -1)) }
            let result = await client.send(.adjustPackages, license: SandboxDemo.license, objects: objects,
                                           userKey: SandboxDemo.janeKey)
            guard case .transportFailure = result else {
                Issue.record("expected an unknown outcome, got \(result)")
                return
            }
            // Applied all the same: the history shows all 25, across two pages.
            let found = try await client.adjustments(license: SandboxDemo.license, userKey: SandboxDemo.janeKey,
                                                     since: before, until: Date())
            #expect(found.map(\.packageLabel) == tags)
            #expect(found.allSatisfy { $0.quantity == -1 && $0.reason == "Drying" && $0.note == nil && $0.date == today })
            #expect(Set(found.map(\.id)).count == 25)
        }
    }
}
