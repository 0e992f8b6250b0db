import Foundation
import Testing
@testable import MetrcSandbox

@Suite("Pure parts: demo, auth, write validation, rate limiter, faults")
struct StateLogicTests {
    let now = MetrcTimestamp.parse("2025-07-01T12:00:00Z")!
    var context: WriteContext { WriteContext(license: SandboxDemo.license, userName: "jane", now: now) }

    @Test func demoIsDeterministicAndWellFormed() throws {
        let demo = SandboxState.demo()
        #expect(demo == SandboxState.demo())
        let lic1Plants = demo.plants.filter { $0.license == SandboxDemo.license }
        #expect(lic1Plants.count == 300)
        #expect(lic1Plants.filter { $0.growthPhase == .vegetative }.count == 150)
        #expect(demo.packages.filter { $0.license == SandboxDemo.license }.count == 300)
        #expect(SandboxDemo.plantTag(1) == "1A4FF0100000022000000001")
        #expect(SandboxDemo.packageTag(300) == "1A4FF0300000022000000300")
        #expect(demo.plants.allSatisfy { isWellFormedTag($0.label) })
        #expect(demo.packages.allSatisfy { isWellFormedTag($0.label) })
        #expect(Set(demo.plants.map(\.label)).count == demo.plants.count)
        #expect(demo.plant(label: SandboxDemo.floweringPlantTag(1), license: SandboxDemo.license)?.growthPhase == .flowering)
        for name in ["Drying Room", "Flower Room 1", "Veg Room", "Vault"] {
            #expect(demo.location(name, license: SandboxDemo.license) != nil)
        }
        #expect(demo.unit("Grams")?.quantityType == .weightBased)
        #expect(demo.unit("Each")?.quantityType == .countBased)
        #expect(demo.adjustmentReasons.contains { $0.requiresNote })
        #expect(demo.wasteReasons.contains { $0.requiresNote })
        #expect(demo.user(named: "owner")?.key == SandboxDemo.ownerKey)
        #expect(demo.facility(SandboxDemo.license)?.ownerUserName == "owner")
    }

    @Test func stateFileRoundTrips() throws {
        var state = SandboxState.demo()
        state.users[1].expiresAt = now
        let decoded = try SandboxState.decode(json: try state.encodedJSON())
        #expect(decoded == state)
        let minimal = try SandboxState.decode(json: Data(#"{"vendorKeys":["v"]}"#.utf8))
        #expect(minimal.vendorKeys == ["v"])
        #expect(minimal.plants.isEmpty)
    }

    @Test func authorizationFollowsMetrcOrder() {
        var state = SandboxState.demo()
        let jane = BasicCredentials(vendorKey: SandboxDemo.vendorKey, userKey: SandboxDemo.janeKey)
        func allowed(_ result: AuthResult) -> Bool { if case .allowed = result { true } else { false } }
        #expect(allowed(state.authorize(jane, license: SandboxDemo.license, permission: .adjustPackages, now: now)))
        #expect(!allowed(state.authorize(nil, license: nil, permission: nil, now: now)))
        #expect(!allowed(state.authorize(BasicCredentials(vendorKey: "other", userKey: SandboxDemo.janeKey), license: nil, permission: nil, now: now)))
        #expect(!allowed(state.authorize(BasicCredentials(vendorKey: SandboxDemo.vendorKey, userKey: "nope"), license: nil, permission: nil, now: now)))
        let john = BasicCredentials(vendorKey: SandboxDemo.vendorKey, userKey: SandboxDemo.johnKey)
        #expect(!allowed(state.authorize(john, license: SandboxDemo.secondLicense, permission: .view, now: now)))
        #expect(!allowed(state.authorize(john, license: "LIC-9999", permission: .view, now: now)))
        let viewer = BasicCredentials(vendorKey: SandboxDemo.vendorKey, userKey: SandboxDemo.viewerKey)
        #expect(allowed(state.authorize(viewer, license: SandboxDemo.license, permission: .view, now: now)))
        #expect(!allowed(state.authorize(viewer, license: SandboxDemo.license, permission: .movePackages, now: now)))
        state.users[1].expiresAt = now
        #expect(!allowed(state.authorize(jane, license: nil, permission: nil, now: now)))
        #expect(allowed(state.authorize(jane, license: nil, permission: nil, now: now.addingTimeInterval(-1))))
        state.users[1].expiresAt = nil
        state.users[1].revoked = true
        #expect(!allowed(state.authorize(jane, license: nil, permission: nil, now: now)))
    }

    @Test func adjustmentValidationListsEveryProblemAndAppliesNothing() throws {
        var state = SandboxState.demo()
        let before = state
        let grams = SandboxDemo.packageTag(1)  // Blue Dream Buds, 101 g
        let objects: [JSONValue] = [
            ["Label": .string(grams), "Quantity": -1, "UnitOfMeasure": "Grams", "AdjustmentReason": "Drying", "AdjustmentDate": "2025-06-10"],
            ["Label": "NOTATAG", "Quantity": 0, "UnitOfMeasure": "Furlongs", "AdjustmentReason": "Scale Variance", "AdjustmentDate": "06/10/2025"],
            ["Label": .string(grams), "Quantity": -500, "UnitOfMeasure": "Each", "AdjustmentReason": "Nope", "AdjustmentDate": "2025-06-10"],
        ]
        let outcome = state.apply(.adjustPackages, objects: objects, context: context)
        guard case .rejected(let errors) = outcome else {
            Issue.record("expected rejection, got \(outcome)")
            return
        }
        #expect(!errors.contains { $0.row == 0 })
        let row1 = errors.filter { $0.row == 1 }.map(\.message)
        #expect(row1.contains { $0.contains("Tag NOTATAG is not valid") })
        #expect(row1.contains { $0.contains("Quantity cannot be 0") })
        #expect(row1.contains { $0.contains("Furlongs") })
        #expect(row1.contains { $0.contains("ReasonNote is required") })
        #expect(row1.contains { $0.contains("AdjustmentDate") })
        let row2 = errors.filter { $0.row == 2 }.map(\.message)
        #expect(row2.contains { $0.contains("Each") })
        #expect(row2.contains { $0.contains("Nope") })
        #expect(state == before)
    }

    @Test func adjustmentsConvertUnitsAndRefuseNegativeQuantities() throws {
        var state = SandboxState.demo()
        let ounces = SandboxDemo.packageTag(4)  // Northern Lights Buds, 16 oz
        let outcome = state.apply(.adjustPackages, objects: [
            ["Label": .string(ounces), "Quantity": -28.349523125, "UnitOfMeasure": "Grams", "AdjustmentReason": "Drying", "AdjustmentDate": "2025-06-10"],
        ], context: context)
        guard case .applied(let ids) = outcome else {
            Issue.record("expected success, got \(outcome)")
            return
        }
        #expect(ids.count == 1)
        #expect(state.package(label: ounces, license: SandboxDemo.license)?.quantity == 15)
        #expect(state.adjustments.last?.adjustedByUserName == "jane")
        let negative = state.apply(.adjustPackages, objects: [
            ["Label": .string(ounces), "Quantity": -16, "UnitOfMeasure": "Ounces", "AdjustmentReason": "Drying", "AdjustmentDate": "2025-06-10"],
        ], context: context)
        guard case .rejected(let errors) = negative else {
            Issue.record("expected rejection")
            return
        }
        #expect(errors.first?.message.contains("negative") == true)
    }

    @Test func harvestRulesAndRequestOrderWithinOneRequest() {
        var state = SandboxState.demo()
        let flowering = SandboxDemo.floweringPlantTag(1)
        let vegetative = SandboxDemo.vegetativePlantTag(1)
        func harvest(_ tag: String, weight: JSONValue = 10, unit: JSONValue = "Grams", date: JSONValue = "2025-06-30") -> JSONValue {
            ["Plant": .string(tag), "Weight": weight, "UnitOfWeight": unit, "DryingLocation": "Drying Room", "ActualDate": date]
        }
        let outcome = state.apply(.harvestPlants, objects: [
            harvest(flowering), harvest(flowering), harvest(vegetative), harvest(SandboxDemo.floweringPlantTag(2), weight: -1, unit: "Each"),
            harvest(SandboxDemo.floweringPlantTag(3), date: "2025-07-05"), harvest(SandboxDemo.floweringPlantTag(4), date: "2025-01-01"),
        ], context: context)
        guard case .rejected(let errors) = outcome else {
            Issue.record("expected rejection")
            return
        }
        #expect(Set(errors.map(\.row)) == [1, 2, 3, 4, 5])
        #expect(errors.first { $0.row == 1 }?.message.contains("already been harvested") == true)
        #expect(errors.first { $0.row == 2 }?.message.contains("flowering") == true)
        #expect(errors.filter { $0.row == 3 }.count == 2)
        #expect(errors.first { $0.row == 4 }?.message.contains("future") == true)
        #expect(errors.first { $0.row == 5 }?.message.contains("planted") == true)
        #expect(state.plant(label: flowering, license: SandboxDemo.license)?.state == .tracked)
    }

    @Test func destroyNeedsReasonFlags() {
        var state = SandboxState.demo()
        let tag = SandboxDemo.vegetativePlantTag(5)
        let outcome = state.apply(.destroyPlants, objects: [
            ["Label": .string(tag), "WasteMethodName": "Compost", "WasteMaterialMixed": "Soil", "WasteWeight": 0,
             "WasteReasonName": "Mold", "ActualDate": "2025-06-30"],
            ["Label": .string(tag), "WasteMethodName": "Compost", "WasteMaterialMixed": "Soil", "WasteWeight": 5,
             "WasteUnitOfMeasureName": "grams", "WasteReasonName": "Other", "ActualDate": "2025-06-30"],
        ], context: context)
        guard case .rejected(let errors) = outcome else {
            Issue.record("expected rejection")
            return
        }
        #expect(errors.first { $0.row == 0 }?.message.contains("WasteWeight") == true)
        #expect(errors.first { $0.row == 1 }?.message.contains("ReasonNote") == true)
    }

    @Test func rateLimiterCountsPerSecondAndInFlight() {
        var limiter = RateLimiter(limits: RateLimits(getsPerSecondPerFacility: 3, getsPerSecondPerVendorKey: 5,
                                                     concurrentGetsPerFacility: 2, concurrentGetsPerVendorKey: 10))
        var tickets: [RateLimiter.Ticket] = []
        for _ in 0..<2 {
            guard case .admitted(let ticket) = limiter.admit(vendorKey: "v", facility: "A", now: 100) else {
                Issue.record("should be admitted")
                return
            }
            tickets.append(ticket)
        }
        #expect(limiter.inFlight(facility: "A") == 2)
        if case .limited(let retry, _) = limiter.admit(vendorKey: "v", facility: "A", now: 100) {
            #expect(retry == 1)
        } else {
            Issue.record("third concurrent GET must be limited")
        }
        limiter.release(tickets.removeFirst())
        guard case .admitted(let third) = limiter.admit(vendorKey: "v", facility: "A", now: 100.1) else {
            Issue.record("a released slot must admit")
            return
        }
        limiter.release(third)
        limiter.release(tickets.removeFirst())
        // 3 per second per facility used up at t=100...100.1.
        if case .limited = limiter.admit(vendorKey: "v", facility: "A", now: 100.5) {} else {
            Issue.record("fourth GET in one second must be limited")
        }
        // Another facility still has room, but the vendor key only 2 more.
        for _ in 0..<2 {
            if case .admitted(let ticket) = limiter.admit(vendorKey: "v", facility: "B", now: 100.5) {
                limiter.release(ticket)
            } else {
                Issue.record("facility B should be admitted")
            }
        }
        if case .limited = limiter.admit(vendorKey: "v", facility: "B", now: 100.6) {} else {
            Issue.record("vendor key limit must apply across facilities")
        }
        // A second later the window has slid.
        if case .admitted = limiter.admit(vendorKey: "v", facility: "A", now: 101.2) {} else {
            Issue.record("window must slide")
        }
    }

    @Test func faultsCountMatchAndRepeatWithTheSeed() {
        var injector = FaultInjector(seed: 7)
        injector.add(.latency(milliseconds: 50))
        injector.add(.error(status: 503, count: 2, method: "POST", path: "/packages/v2/*"))
        #expect(injector.plan(method: "GET", path: "/packages/v2/active", isWrite: false)
            == FaultPlan(latencyMilliseconds: 50, terminal: nil))
        let first = injector.plan(method: "POST", path: "/packages/v2/adjust", isWrite: true)
        #expect(first.terminal == .respond(status: 503, message: "The service is unavailable."))
        #expect(first.latencyMilliseconds == 50)
        _ = injector.plan(method: "POST", path: "/packages/v2/adjust", isWrite: true)
        #expect(injector.plan(method: "POST", path: "/packages/v2/adjust", isWrite: true).terminal == nil)
        #expect(injector.faults.count == 1)

        func sequence(seed: UInt64) -> [Bool] {
            var random = FaultInjector(seed: seed)
            random.add(.error(status: 500, probability: 0.5))
            return (0..<64).map { _ in random.plan(method: "GET", path: "/x", isWrite: false).terminal != nil }
        }
        #expect(sequence(seed: 42) == sequence(seed: 42))
        #expect(sequence(seed: 42) != sequence(seed: 43))
        let hits = sequence(seed: 42).filter { $0 }.count
        #expect(hits > 16 && hits < 48)

        var writesOnly = FaultInjector(seed: 1)
        writesOnly.add(.applyThenFail())
        #expect(writesOnly.plan(method: "GET", path: "/plants/v2/vegetative", isWrite: false).terminal == nil)
        #expect(writesOnly.plan(method: "PUT", path: "/plants/v2/harvest", isWrite: true).terminal == .applyThenFail(status: 500))
    }
}
