import Foundation
import Metrc
import OutlawProtocol
import OutlawStore
import Testing
@testable import Upload

func pending(_ id: Int64, type: EventType = .plantMove, tag: String? = nil, license: String = "LIC-0001", user: Int64 = 1,
             name: String = "jane", attempts: Int = 0, fields: [String: JSONValue] = [:], date: String = "2026-11-28") -> PendingEvent
{
    PendingEvent(id: id, type: type, tag: tag ?? String(format: "1A4FF01000000220000%05d", id), license: license, userID: user,
                 userName: name, fields: fields, metrcDate: date, attempts: attempts, unknownSince: nil)
}

@Suite("Signing policy", .timeLimit(.minutes(1)))
struct SigningPolicyTests {
    let usable = DefaultKeyState.usable("DEFAULT")

    @Test func personalKeySignsForItsOwner() {
        #expect(SigningPolicy.decide(collector: "jane", personalKey: SigningKey(key: "J", status: .ok), defaultKey: usable,
                                     requirePersonalKeys: false) == .personal(key: "J"))
        #expect(SigningPolicy.decide(collector: "jane", personalKey: SigningKey(key: "J", status: .unverified), defaultKey: usable,
                                     requirePersonalKeys: true) == .personal(key: "J"))
    }

    @Test func rejectedPersonalKeyIsHeldNeverResignedWithDefault() {
        let d = SigningPolicy.decide(collector: "jane", personalKey: SigningKey(key: "J", status: .rejected), defaultKey: usable,
                                     requirePersonalKeys: false)
        #expect(d == .hold(code: .keyRejected, reason: "jane's Metrc key was rejected by Metrc"))
    }

    @Test func noPersonalKeyFallsBackToDefaultWithAReason() {
        #expect(SigningPolicy.decide(collector: "john", personalKey: nil, defaultKey: usable, requirePersonalKeys: false)
                == .defaultKey(key: "DEFAULT", reason: "john has no personal key"))
    }

    @Test func requiredPersonalKeysHoldUsersWithout() {
        guard case .hold(let code, _) = SigningPolicy.decide(collector: "john", personalKey: nil, defaultKey: usable, requirePersonalKeys: true) else {
            Issue.record("not held")
            return
        }
        #expect(code == .keyRequired)
    }

    @Test func badOrMissingDefaultKeyHolds() {
        guard case .hold(let c1, _) = SigningPolicy.decide(collector: "john", personalKey: nil, defaultKey: .rejected, requirePersonalKeys: false),
              case .hold(let c2, _) = SigningPolicy.decide(collector: "john", personalKey: nil, defaultKey: .missing, requirePersonalKeys: false)
        else {
            Issue.record("not held")
            return
        }
        #expect(c1 == .defaultKeyRejected && c2 == .defaultKeyMissing)
    }

    @Test func loginStatus() {
        #expect(SigningPolicy.loginStatus(personalKey: .ok, requirePersonalKeys: false) == .personal)
        #expect(SigningPolicy.loginStatus(personalKey: .unverified, requirePersonalKeys: true) == .personal)
        #expect(SigningPolicy.loginStatus(personalKey: .rejected, requirePersonalKeys: false) == .rejected)
        #expect(SigningPolicy.loginStatus(personalKey: nil, requirePersonalKeys: false) == .default)
        #expect(SigningPolicy.loginStatus(personalKey: nil, requirePersonalKeys: true) == .required)
    }
}

@Suite("Upload planning", .timeLimit(.minutes(1)))
struct UploadPlannerTests {
    @Test func groupsByActionSignerAndLicenseKeepingOrder() {
        let events = [
            pending(1, type: .plantMove, user: 1, name: "jane"),
            pending(2, type: .plantMove, user: 2, name: "john"),
            pending(3, type: .plantHarvest, user: 1, name: "jane"),
            pending(4, type: .plantMove, user: 1, name: "jane"),
            pending(5, type: .plantMove, license: "LIC-0002", user: 1, name: "jane"),
            pending(6, type: .plantScan, user: 1, name: "jane"),
        ]
        let plan = UploadPlanner.plan(events, objectsPerRequest: 100) { e in
            e.userID == 1 ? .personal(key: "J") : .defaultKey(key: "D", reason: "john has no personal key")
        }
        #expect(plan.requests.map { $0.events.map(\.id) } == [[1, 4], [2], [3], [5]])
        #expect(plan.requests.map(\.action) == [.movePlants, .movePlants, .harvestPlants, .movePlants])
        #expect(plan.requests.map(\.keyUser) == ["jane", nil, "jane", "jane"])
        #expect(plan.holds.isEmpty)
    }

    @Test func chunksAtObjectsPerRequest() {
        let events = (1...7).map { pending(Int64($0)) }
        let plan = UploadPlanner.plan(events, objectsPerRequest: 3) { _ in .personal(key: "J") }
        #expect(plan.requests.map { $0.events.count } == [3, 3, 1])
        #expect(plan.requests.flatMap { $0.events.map(\.id) } == (1...7).map(Int64.init))
    }

    @Test func inABacklogPartialRequestsWaitWhileFullOnesFillTheSlots() {
        // Two groups: jane's moves (7 events: 3, 3, 1) and john's (2 events: a partial of 2), three objects a request.
        let events = (1...7).map { pending(Int64($0)) } + [pending(8, user: 2, name: "john"), pending(9, user: 2, name: "john")]
        let plan = UploadPlanner.plan(events, objectsPerRequest: 3) { e in .personal(key: e.userName) }
        #expect(plan.requests.map { $0.events.count } == [3, 3, 1, 2])
        func sizes(concurrency: Int, hitLimit: Bool) -> [Int] {
            var waits = UploadPlanner.PartialWaits(patience: 100)
            return UploadPlanner.fullFirst(plan.requests, objectsPerRequest: 3, concurrency: concurrency, readHitLimit: hitLimit,
                                           waits: &waits).map { $0.events.count }
        }
        #expect(sizes(concurrency: 2, hitLimit: true) == [3, 3], "partials wait for a later read in a backlog")
        #expect(sizes(concurrency: 3, hitLimit: true) == [3, 3, 1, 2], "too few full requests to fill the slots")
        #expect(sizes(concurrency: 2, hitLimit: false) == [3, 3, 1, 2], "everything ready is in this plan: nothing to wait for")
    }

    @Test func aWaitingPartialRequestGoesOnceItsPatienceIsUsedUp() {
        // jane's moves fill two requests of three at every read; john's one move is a partial request that waits,
        // but only until four full requests have gone ahead of it.
        let events = (1...6).map { pending(Int64($0)) } + [pending(9, user: 2, name: "john")]
        let plan = UploadPlanner.plan(events, objectsPerRequest: 3) { e in .personal(key: e.userName) }
        var waits = UploadPlanner.PartialWaits(patience: 4)
        func read(backlog: Bool = true) -> [String] {
            UploadPlanner.fullFirst(plan.requests, objectsPerRequest: 3, concurrency: 2, readHitLimit: backlog, waits: &waits)
                .map { "\($0.keyUser!)×\($0.events.count)" }
        }
        #expect(read() == ["jane×3", "jane×3"], "waits: two full requests go ahead")
        #expect(read() == ["jane×3", "jane×3"], "waits: four have gone ahead")
        #expect(read() == ["john×1", "jane×3", "jane×3"], "its patience is used up: it goes, first")
        #expect(read() == ["jane×3", "jane×3"], "the group's next partial request waits afresh")
        #expect(read(backlog: false) == ["jane×3", "jane×3", "john×1"], "no backlog: everything goes")
        #expect(read() == ["jane×3", "jane×3"], "a wait ended by the backlog's end starts again from nothing")
        #expect(read() == ["jane×3", "jane×3"])
        #expect(read() == ["john×1", "jane×3", "jane×3"])
        // A group that fills a request sends what waited in it: its remainder starts waiting from nothing.
        let grown = (1...6).map { pending(Int64($0)) } + (9...12).map { pending($0, user: 2, name: "john") }
        let grownPlan = UploadPlanner.plan(grown, objectsPerRequest: 3) { e in .personal(key: e.userName) }
        _ = read()
        _ = read()
        #expect(waits.passedOver.values.first == 4, "john's move has waited for four full requests")
        #expect(UploadPlanner.fullFirst(grownPlan.requests, objectsPerRequest: 3, concurrency: 2, readHitLimit: true, waits: &waits)
            .map { "\($0.keyUser!)×\($0.events.count)" } == ["jane×3", "jane×3", "john×3"])
        #expect(waits.passedOver.values.first == 3, "john's remainder of one waits afresh")
    }

    @Test func heldEventsAreSetAside() {
        let events = [pending(1, user: 1), pending(2, user: 2, name: "john"), pending(3, user: 2, name: "john")]
        let plan = UploadPlanner.plan(events, objectsPerRequest: 100) { e in
            e.userID == 1 ? .personal(key: "J") : .hold(code: .keyRequired, reason: "no key")
        }
        #expect(plan.requests.map { $0.events.map(\.id) } == [[1]])
        #expect(plan.holds.count == 1)
        #expect(plan.holds.first?.events == [2, 3])
        #expect(plan.holds.first?.code == .keyRequired)
    }
}

@Suite("Backoff", .timeLimit(.minutes(1)))
struct BackoffTests {
    @Test func growsAndIsCapped() {
        let b = Backoff(base: 2, cap: 600)
        #expect(b.delay(afterAttempts: 1, jitter: 1) == 2)
        #expect(b.delay(afterAttempts: 2, jitter: 1) == 4)
        #expect(b.delay(afterAttempts: 5, jitter: 1) == 32)
        #expect(b.delay(afterAttempts: 50, jitter: 1) == 600)
        #expect(b.delay(afterAttempts: 50, jitter: 0) == 300)
        #expect(b.delay(afterAttempts: 3, jitter: 0.5) == 6)
    }
}

@Suite("Outcome policy", .timeLimit(.minutes(1)))
struct OutcomePolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let sentAt = Date(timeIntervalSince1970: 1_799_999_990)
    let backoff = Backoff(base: 2, cap: 600)
    let ten = (1...10).map { pending(Int64($0), attempts: 1) }

    func decide(_ r: MetrcResponse, _ action: MetrcAction = .movePlants, events: [PendingEvent]? = nil) -> OutcomePolicy.Decision {
        OutcomePolicy.decide(r, action: action, events: events ?? ten, sentAt: sentAt, now: now, backoff: backoff, jitter: 1)
    }

    @Test func acceptedUploadsAll() {
        guard case .results(let results, let outcome) = decide(.accepted(ids: [])) else { Issue.record("wrong decision"); return }
        #expect(outcome == .accepted)
        #expect(results.allSatisfy { $0.1 == .uploaded(metrcID: nil) })
    }

    @Test func oneRejectedRowFailsOnlyThatEvent() {
        guard case .results(let results, _) = decide(.rejected([MetrcRowError(row: 3, message: "Tag X is not valid.")])) else {
            Issue.record("wrong decision")
            return
        }
        #expect(results[3].1 == .failed(message: "Metrc: Tag X is not valid."))
        #expect(results.enumerated().filter { $0.offset != 3 }.allSatisfy { $0.element.1 == .retry(at: now, message: nil, unknownSince: nil) })
    }

    @Test func untrustworthyRowsSplitTheRequest() {
        #expect(decide(.rejected([MetrcRowError(row: 10, message: "x")])) == .split(outcome: .rowsUnclear))
        #expect(decide(.rejected([MetrcRowError(row: nil, message: "x")])) == .split(outcome: .rowsUnclear))
        #expect(decide(.rejected([])) == .split(outcome: .rowsUnclear))
        guard case .results(let one, _) = decide(.rejected([MetrcRowError(row: nil, message: "bad")]), events: [ten[0]]) else {
            Issue.record("wrong decision")
            return
        }
        #expect(one[0].1 == .failed(message: "Metrc: bad"))
    }

    @Test func unauthorizedIsAKeyProblem() {
        #expect(decide(.unauthorized(status: 401)) == .keyRejected(status: 401))
        #expect(decide(.unauthorized(status: 403)) == .keyRejected(status: 403))
    }

    @Test func tooLargeSplitsUntilOne() {
        #expect(decide(.tooLarge) == .split(outcome: .tooLarge))
        guard case .results(let r, _) = decide(.tooLarge, events: [ten[0]]), case .failed = r[0].1 else { Issue.record("not failed"); return }
    }

    @Test func rateLimitObeysRetryAfter() {
        guard case .results(let r, _) = decide(.rateLimited(retryAfter: 7)) else { Issue.record("wrong decision"); return }
        #expect(r.allSatisfy { $0.1 == .retry(at: now.addingTimeInterval(7), message: "Metrc: rate limited (429)", unknownSince: nil) })
        guard case .results(let r2, _) = decide(.rateLimited(retryAfter: nil)) else { Issue.record("wrong decision"); return }
        #expect(r2[0].1 == .retry(at: now.addingTimeInterval(4), message: "Metrc: rate limited (429)", unknownSince: nil))
    }

    /// One rule for `attempts`: an attempt that left for Metrc counts toward the backoff, one that never left does not.
    @Test func onlyAttemptsThatLeftCountTowardTheBackoff() {
        let twice = pending(1, attempts: 2)
        #expect(OutcomePolicy.retryTime(twice, after: .left, now: now, backoff: backoff, jitter: 1) == now.addingTimeInterval(8))
        #expect(OutcomePolicy.retryTime(twice, after: .neverLeft, now: now, backoff: backoff, jitter: 1) == now.addingTimeInterval(4))
        #expect(OutcomePolicy.retryTime(twice, after: .left, metrcSays: 7, now: now, backoff: backoff, jitter: 1) == now.addingTimeInterval(7))
        guard case .results(let results, .notFound) = decide(.notFound(message: "gone"), events: [twice]) else { Issue.record("wrong decision"); return }
        #expect(results[0].1 == .retry(at: now.addingTimeInterval(8), message: "Metrc: 404 gone", unknownSince: nil))
    }

    /// Metrc may have applied a request that got a 5xx or no answer, whatever its method: every action is read
    /// back before a resend. A 400 with rows means Metrc applied nothing, so even a POST goes again at once.
    @Test(arguments: MetrcAction.allCases)
    func unknownOutcomesAreReadBack(action: MetrcAction) {
        // Queued again, marked unknown since the request was sent; this attempt left, so the wait is the backoff's
        // second step (the events had one attempt before).
        func unknown(_ message: String) -> [(Int64, EventResult)] {
            ten.map { ($0.id, .retry(at: now.addingTimeInterval(4), message: message, unknownSince: sentAt)) }
        }
        #expect(decide(.serverFault(status: 503, message: "down"), action)
            == .reconcile(unknown("Metrc: 503 down"), outcome: .serverFault, message: "Metrc: 503 down"))
        #expect(decide(.transportFailure("timeout"), action)
            == .reconcile(unknown("Metrc unreachable: timeout"), outcome: .noAnswer, message: "Metrc unreachable: timeout"))
        guard case .results(let results, .rejected) = decide(.rejected([MetrcRowError(row: 0, message: "x")]), action) else {
            Issue.record("a 400 with rows is not read back")
            return
        }
        #expect(results.dropFirst().allSatisfy { $0.1 == .retry(at: now, message: nil, unknownSince: nil) })
    }
}

@Suite("Reconciliation", .timeLimit(.minutes(1)))
struct ReconciliationTests {
    let since = Timestamp("2026-11-29T10:00:00Z")!.date

    func plant(location: String = "Flower Room 2", modified: String = "2026-11-29T10:00:05+00:00", harvested: String? = nil,
               destroyed: String? = nil) -> [String: JSONValue]
    {
        var r: [String: JSONValue] = ["Label": "1A4FF0100000022000000001", "LocationName": .string(location), "LastModified": .string(modified)]
        if let harvested { r["HarvestedDate"] = .string(harvested) }
        if let destroyed { r["DestroyedDate"] = .string(destroyed) }
        return r
    }

    @Test func movesAreAppliedWhenTheTagIsThereAndChangedSince() {
        let fields: [String: JSONValue] = ["location": "Flower Room 2"]
        #expect(Reconciliation.isApplied(type: .plantMove, fields: fields, record: plant(), since: since))
        #expect(!Reconciliation.isApplied(type: .plantMove, fields: fields, record: plant(location: "Veg Room"), since: since))
        // Already in that room, but untouched since long before the attempt: our move did not happen.
        #expect(!Reconciliation.isApplied(type: .plantMove, fields: fields, record: plant(modified: "2026-11-28T10:00:00+00:00"), since: since))
        #expect(!Reconciliation.isApplied(type: .packageMove, fields: fields, record: nil, since: since))
        #expect(Reconciliation.isApplied(type: .plantMove, fields: ["location": "flower room 2"], record: plant(location: "Flower Room 2 "), since: since))
    }

    @Test func harvestsAndDestroysByTheirDates() {
        #expect(Reconciliation.isApplied(type: .plantHarvest, fields: [:], record: plant(harvested: "2026-11-29"), since: since))
        #expect(!Reconciliation.isApplied(type: .plantHarvest, fields: [:], record: plant(), since: since))
        #expect(Reconciliation.isApplied(type: .plantDestroy, fields: [:], record: plant(destroyed: "2026-11-29"), since: since))
        #expect(!Reconciliation.isApplied(type: .plantDestroy, fields: [:], record: plant(harvested: "2026-11-29"), since: since))
    }

    let fields: [String: JSONValue] = ["package": "1A4FF0300000022000000001", "quantity": -2, "unit": "Grams", "reason": "Drying"]

    func adjustment(_ id: Int64, quantity: Double = -2, reason: String = "Drying", date: String = "2026-11-28") -> MetrcClient.Adjustment {
        MetrcClient.Adjustment(id: id, packageLabel: "1A4FF0300000022000000001", quantity: quantity, unit: "Grams", reason: reason,
                               date: date, note: nil)
    }

    @Test func matchesAppliedAndNotApplied() {
        let e = pending(1, type: .packageAdjust, tag: "1A4FF0300000022000000001", fields: fields)
        let applied = Reconciliation.match([e], against: [adjustment(77)], alreadyClaimed: [])
        #expect(applied.applied.map(\.1) == [77] && applied.notApplied.isEmpty)
        let missing = Reconciliation.match([e], against: [adjustment(77, quantity: -3), adjustment(78, reason: "Waste"),
                                                          adjustment(79, date: "2026-11-27")], alreadyClaimed: [])
        #expect(missing.applied.isEmpty && missing.notApplied == [1])
        let claimed = Reconciliation.match([e], against: [adjustment(77)], alreadyClaimed: [77])
        #expect(claimed.notApplied == [1])
    }

    @Test func eachHistoryEntryMatchesOnlyOnce() {
        let a = pending(1, type: .packageAdjust, tag: "1A4FF0300000022000000001", fields: fields)
        let b = pending(2, type: .packageAdjust, tag: "1A4FF0300000022000000001", fields: fields)
        let r = Reconciliation.match([a, b], against: [adjustment(5)], alreadyClaimed: [])
        #expect(r.applied.count == 1 && r.notApplied == [2])
    }
}

@Suite("Read-back of manicures and waste", .timeLimit(.minutes(1)))
struct ManicureAndWasteReadBackTests {
    static let plants = ["1A4FF0100000022000000001", "1A4FF0100000022000000002"]

    @Test func manicureByTheHarvestCount() {
        #expect(Reconciliation.manicureApplied(before: 2, record: ["HarvestCount": 3]) == true)
        #expect(Reconciliation.manicureApplied(before: 2, record: ["harvestcount": 2]) == false)
        #expect(Reconciliation.manicureApplied(before: 2, record: ["HarvestCount": 4]) == nil, "someone else's harvest too: undecided")
        #expect(Reconciliation.manicureApplied(before: 2, record: nil) == nil)
        #expect(Reconciliation.manicureApplied(before: 2, record: ["Label": "x"]) == nil)
    }

    func waste(_ id: Int64, plants: [String] = plants, weight: Double = 3, reason: String = "Trim", date: String = "2026-11-28") -> [String: JSONValue] {
        ["PlantWasteId": .number(Double(id)), "PlantLabels": .array(plants.map(JSONValue.string)), "WasteAmount": .number(weight),
         "WasteMethodName": "Compost", "ReasonName": .string(reason), "WasteDate": .string(date)]
    }

    let event = pending(9, type: .plantWaste, tag: plants[0], fields: [
        "plants": .array(plants.map(JSONValue.string)), "waste_weight": 3, "waste_unit": "Grams", "waste_method": "Compost",
        "waste_material": "Soil", "reason": "Trim",
    ])

    @Test func wasteMatchesItsRecordOnceByPlantsWeightMethodReasonAndDate() {
        let records = Reconciliation.wasteRecords([waste(5)])
        #expect(Reconciliation.matchWaste([event], against: records, alreadyClaimed: []).applied.map(\.1) == [5])
        #expect(Reconciliation.matchWaste([event], against: records, alreadyClaimed: [5]).notApplied == [9])
        for other in [waste(6, plants: [Self.plants[0]]), waste(7, weight: 4), waste(8, reason: "Mold"), waste(9, date: "2026-11-27")] {
            #expect(Reconciliation.matchWaste([event], against: Reconciliation.wasteRecords([other]), alreadyClaimed: []).notApplied == [9])
        }
    }

    @Test func recordsListedOnePlantALineAreOneRecord() {
        let lines: [[String: JSONValue]] = Self.plants.map { ["Id": 12, "Label": .string($0), "WasteWeight": 3, "WasteMethodName": "Compost",
                                                              "ReasonName": "Trim", "WasteDate": "2026-11-28T00:00:00"] }
        let records = Reconciliation.wasteRecords(lines)
        #expect(records.count == 1 && records[0].labels == Set(Self.plants))
        #expect(Reconciliation.matchWaste([event], against: records, alreadyClaimed: []).applied.map(\.1) == [12])
    }

    @Test func aRoomsWasteMatchesByLocation() {
        let room = pending(3, type: .plantWaste, tag: "location:Flower Room 1", fields: [
            "location": "Flower Room 1", "waste_weight": 3, "waste_unit": "Grams", "waste_method": "Compost", "waste_material": "Soil",
            "reason": "Trim",
        ])
        var record = waste(4, plants: [])
        record["LocationName"] = "flower room 1"
        #expect(Reconciliation.matchWaste([room], against: Reconciliation.wasteRecords([record]), alreadyClaimed: []).applied.map(\.1) == [4])
        #expect(Reconciliation.matchWaste([room], against: Reconciliation.wasteRecords([waste(4)]), alreadyClaimed: []).notApplied == [3])
    }
}
