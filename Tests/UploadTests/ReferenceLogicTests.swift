import Foundation
@testable import Metrc
import OutlawProtocol
import OutlawStore
@testable import Reference
import Testing

/// The reference sync's pure parts: the GET budget's bookkeeping, the sync plan, the pull cursor, the mapping of
/// Metrc records and the scan-check lookups. No I/O.
@Suite("Reference data: pure logic", .timeLimit(.minutes(1)))
struct ReferenceLogicTests {
    // MARK: GET budget

    @Test func budgetCountsAReadFromItsStartUntilASecondAfterItsAnswer() {
        var budget = ReadBudgetState(limits: ReadLimits(perSecondPerFacility: 3, concurrentPerFacility: 10,
                                                        perSecondPerVendorKey: 100, concurrentPerVendorKey: 100))
        for _ in 0..<3 { #expect(budget.start(facility: "LIC-1", now: 10) == nil) }
        // Three in flight use the second: a fourth waits, though none has answered yet.
        #expect(budget.start(facility: "LIC-1", now: 10) == 10)
        // Another facility has its own budget.
        #expect(budget.start(facility: "LIC-2", now: 10) == nil)
        budget.finish(facility: "LIC-1", now: 10.2)
        budget.finish(facility: "LIC-1", now: 10.5)
        budget.finish(facility: "LIC-1", now: 10.6)
        // The answers hold the second until one second after they arrived.
        #expect(budget.start(facility: "LIC-1", now: 11.1) == 11.2)
        #expect(budget.start(facility: "LIC-1", now: 11.2) == nil)
        #expect(budget.start(facility: "LIC-1", now: 11.3) == 11.5)
    }

    @Test func budgetLimitsConcurrencyAndTheVendorKey() {
        var budget = ReadBudgetState(limits: ReadLimits(perSecondPerFacility: 100, concurrentPerFacility: 2,
                                                        perSecondPerVendorKey: 3, concurrentPerVendorKey: 100))
        #expect(budget.start(facility: "A", now: 0) == nil)
        #expect(budget.start(facility: "A", now: 0) == nil)
        // Two at once for A: the third waits for an answer (asked again at `now`).
        #expect(budget.start(facility: "A", now: 0) == 0)
        #expect(budget.start(facility: "B", now: 0) == nil)
        // The vendor key's three a second are used by A and B together, and by the global lists (no facility).
        #expect(budget.start(facility: nil, now: 0) == 0)
        budget.finish(facility: "A", now: 0.4)
        #expect(budget.start(facility: nil, now: 0.5) == 1.4)
    }

    @Test func aRateLimitPausesTheFacilityForRetryAfterOrTheFallback() {
        var budget = ReadBudgetState(limits: ReadLimits())
        budget.rateLimited(facility: "A", now: 100, retryAfter: 7, fallback: 1)
        #expect(budget.start(facility: "A", now: 101) == 107)
        #expect(budget.start(facility: "B", now: 101) == nil)
        #expect(budget.start(facility: "A", now: 107) == nil)
        budget.rateLimited(facility: nil, now: 200, retryAfter: nil, fallback: 2)
        #expect(budget.start(facility: "B", now: 201) == 202)
    }

    // MARK: Plan

    @Test func firstSyncIsFullThenWindowsOverlapUntilTheDailyFullSync() throws {
        let now = Date(timeIntervalSince1970: 2_000_000_000)
        let first = SyncPlan.steps(kinds: [.plants, .units], states: [:], now: now, fullEvery: 86_400, forceFull: false)
        #expect(first.allSatisfy { $0.full && $0.window == SyncPlan.Window(start: SyncPlan.historyStart, end: now) })
        let lastEnd = now.addingTimeInterval(-300)
        let states: [ReferenceKind: ReferenceSyncState] = [
            .plants: ReferenceSyncState(license: "L", kind: .plants, count: 5, lastSuccessAt: lastEnd,
                                        lastFullAt: now.addingTimeInterval(-3600), windowEnd: lastEnd, lastError: nil, lastErrorAt: nil),
            .units: ReferenceSyncState(license: "L", kind: .units, count: 5, lastSuccessAt: lastEnd,
                                       lastFullAt: now.addingTimeInterval(-3600), windowEnd: lastEnd, lastError: nil, lastErrorAt: nil),
        ]
        let next = SyncPlan.steps(kinds: [.plants, .units], states: states, now: now, fullEvery: 86_400, forceFull: false)
        #expect(next[0] == SyncPlan.Step(kind: .plants, full: false,
                                         window: SyncPlan.Window(start: lastEnd.addingTimeInterval(-SyncPlan.overlap), end: now)))
        // Units carry no LastModified: always read whole.
        #expect(next[1].full)
        let daily = SyncPlan.steps(kinds: [.plants], states: states, now: now.addingTimeInterval(86_400), fullEvery: 86_400, forceFull: false)
        #expect(daily[0].full)
        #expect(SyncPlan.steps(kinds: [.plants], states: states, now: now, fullEvery: 86_400, forceFull: true)[0].full)
    }

    @Test func aWindowTooWideIsSplitInHalvesDownToASecond() throws {
        let window = SyncPlan.Window(start: Date(timeIntervalSince1970: 0), end: Date(timeIntervalSince1970: 100))
        let halves = try #require(SyncPlan.split(window))
        #expect(halves == [SyncPlan.Window(start: window.start, end: Date(timeIntervalSince1970: 50)),
                           SyncPlan.Window(start: Date(timeIntervalSince1970: 50), end: window.end)])
        #expect(SyncPlan.split(SyncPlan.Window(start: window.start, end: Date(timeIntervalSince1970: 1))) == nil)
        #expect(SyncPlan.isTooWide(MetrcReadError(status: 400, message: "The lastModifiedStart and lastModifiedEnd parameters must not be more than 24 hours apart.")))
        #expect(!SyncPlan.isTooWide(MetrcReadError(status: 400, message: "The licenseNumber parameter is required.")))
        #expect(!SyncPlan.isTooWide(MetrcReadError(status: 500, message: "lastModified")))
        #expect(SyncPlan.isWorthRetrying(MetrcReadError(status: nil, message: "timed out")))
        #expect(SyncPlan.isWorthRetrying(MetrcReadError(status: 503, message: "busy")))
        #expect(!SyncPlan.isWorthRetrying(MetrcReadError(status: 401, message: "key rejected (401)")))
        #expect(!SyncPlan.isWorthRetrying(MetrcReadError(status: 400, message: "bad")))
    }

    // MARK: Cursor

    @Test func cursorRoundTripsAndRefusesWhatItDidNotWrite() throws {
        let cursor = PullCursor(license: "LIC-0001", change: 42, kinds: [.plants, .adjustReasons])
        #expect(PullCursor.parse(cursor.text) == cursor)
        #expect(!cursor.text.contains("LIC"), "opaque: \(cursor.text)")
        for bad in ["", "x", "c", "c!!!", "cMXxMSUMtMDAwMXwtNHwx", cursor.text + "AAAA", "1|LIC|4|1"] {
            #expect(PullCursor.parse(bad) == nil, "\(bad)")
        }
    }

    // MARK: Mapping

    @Test func metrcRecordsBecomeTheContractsItemsWhateverTheCase() throws {
        let plant: [String: JSON] = ["label": "1A4000000000000000000001", "STRAINNAME": "OG Kush", "LocationName": "Veg Room",
                                          "SublocationName": nil, "GrowthPhase": "Vegetative", "Id": 7]
        let item = try #require(ReferenceLists.item(.plants, plant))
        #expect(item.key == "1A4000000000000000000001")
        #expect(JSON.parse(Array(item.json.utf8)) == [
            "label": "1A4000000000000000000001", "strain": "OG Kush", "location": "Veg Room", "sublocation": nil, "phase": "Vegetative",
        ])
        let package: [String: JSON] = ["Label": "1A4000000000000000000002", "Item": ["Name": "Buds"], "Quantity": 12.5,
                                            "UnitOfMeasureName": "Grams", "LocationName": "Vault"]
        #expect(JSON.parse(Array(try #require(ReferenceLists.item(.packages, package)).json.utf8)) == [
            "label": "1A4000000000000000000002", "item": "Buds", "quantity": 12.5, "unit": "Grams", "location": "Vault", "sublocation": nil,
        ])
        let reason = try #require(ReferenceLists.item(.wasteReasons, ["Name": "Mold", "RequiresNote": true]))
        #expect(reason.json == #"{"name":"Mold","requires_note":true}"#)
        #expect(ReferenceLists.item(.locations, ["Id": 3]) == nil, "a record without a name is skipped")
    }

    // MARK: Scan checks

    @Test func scanLookupsNameEveryListedField() {
        let destroy = ReferenceChecks.lookups(type: .plantDestroy, fields: [
            "plant": "1A4000000000000000000001", "waste_unit": "Grams", "waste_method": "Compost", "reason": "Pests", "note": "x",
        ])
        #expect(destroy.map(\.kind) == [.plants, .units, .wasteMethods, .wasteReasons])
        let waste = ReferenceChecks.lookups(type: .plantWaste, fields: [
            "plants": ["A", "B"], "waste_unit": "Grams", "waste_method": "Compost", "reason": "Mold",
        ])
        #expect(waste.filter { $0.kind == .plants }.map(\.value) == ["A", "B"])
        #expect(ReferenceChecks.lookups(type: .packageMove, fields: ["package": "P", "location": "Vault"]).map(\.kind) == [.packages, .locations])
        #expect(ReferenceChecks.warning([]) == nil)
        #expect(ReferenceChecks.warning([.init(field: "location", kind: .locations, value: "Attic"),
                                         .init(field: "plant", kind: .plants, value: "P1")])
            == #"location "Attic" is not in Metrc's locations; plant P1 is not an active plant in Metrc"#)
    }
}
