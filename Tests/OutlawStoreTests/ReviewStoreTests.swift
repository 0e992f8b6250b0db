import Foundation
import OutlawProtocol
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// The review gate in the store: which events wait, approve and reject, and the order per tag around them.
@Suite("Review gate (store)")
struct ReviewStoreTests {
    let dir: TempDirectory
    let store: Store
    static let now = Date()
    static let at: JSONValue = "2026-11-28T14:03:11-08:00"
    static let p1 = "1A4FF0100000022000000001"
    static let p2 = "1A4FF0100000022000000002"

    init() throws {
        dir = try TempDirectory("outlawd-review")
        store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000)
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        try store.addUser(name: "john", role: .user, pin: "1357", actor: "test")
    }

    static func destroy(_ seq: Int, _ plant: String) -> JSONValue {
        ["seq": .number(Double(seq)), "type": "plant.destroy", "at": at, "plant": .string(plant), "waste_weight": 1, "waste_unit": "Grams",
         "waste_method": "Compost", "waste_material": "Soil", "reason": "Mold"]
    }

    static func move(_ seq: Int, _ plant: String) -> JSONValue {
        ["seq": .number(Double(seq)), "type": "plant.move", "at": at, "plant": .string(plant), "location": "Veg Room"]
    }

    static func harvest(_ seq: Int, _ plant: String) -> JSONValue {
        ["seq": .number(Double(seq)), "type": "plant.harvest", "at": at, "plant": .string(plant), "weight": 10, "unit": "Grams",
         "drying_location": "Drying Room"]
    }

    static func scan(_ seq: Int, _ plant: String) -> JSONValue {
        ["seq": .number(Double(seq)), "type": "plant.scan", "at": at, "plant": .string(plant)]
    }

    func incoming(_ id: String, user: String, _ events: [JSONValue], device: Device) throws -> IncomingBatch {
        let validator = BatchValidator(maxBatchEvents: 100, defaultLicense: "LIC-0001", licenses: [])
        let batch = try validator.validate(["id": .string(id), "user": .string(user), "events": .array(events)], now: Self.now).get()
        return IncomingBatch(deviceID: device.id, session: "s", batch: batch)
    }

    func device() async throws -> Device {
        let token = try store.addDevice(name: "HH-1", actor: "test")
        return try #require(try await store.authenticateDevice(name: "HH-1", token: token))
    }

    func states(_ id: String) throws -> [EventState] {
        try #require(try store.batchDetail(device: "HH-1", id: id)).1.map(\.state)
    }

    func offered() throws -> [PendingEvent] { try store.readyEvents(now: Self.now, limit: 100).events }

    @Test func theRuleNamesTypesOrUsersAndNeverScans() {
        let rule = ReviewRule(eventTypes: [.plantDestroy], users: ["john"])
        #expect(rule.applies(type: .plantDestroy, user: "jane"))
        #expect(rule.applies(type: .plantMove, user: "john"))
        #expect(!rule.applies(type: .plantMove, user: "jane"))
        #expect(!rule.applies(type: .plantScan, user: "john"))
        #expect(rule.reason(type: .plantDestroy, user: "john") == "waits for review: plant.destroy events are reviewed")
        #expect(rule.reason(type: .plantHarvest, user: "john") == "waits for review: john's events are reviewed")
        #expect(ReviewRule.none.isEmpty && !ReviewRule.none.applies(type: .plantDestroy, user: "jane"))
    }

    /// A destroy in review keeps its place: the later move of the same plant waits for the decision, and after
    /// approval goes after the destroy; other plants are not held up.
    @Test func anApprovedEventKeepsItsPlaceInTheOrderPerTag() async throws {
        let d = try await device()
        let rule = ReviewRule(eventTypes: [.plantDestroy])
        let outcome = try store.commit([try incoming("r", user: "jane", [Self.destroy(1, Self.p1), Self.move(2, Self.p1), Self.move(3, Self.p2),
                                                                         Self.scan(4, Self.p1)], device: d)], now: Self.now, review: rule)
        #expect(outcome == [.stored(events: 4)])
        #expect(try states("r") == [.review, .queued, .queued, .recorded])
        #expect(try offered().map(\.tag) == [Self.p2], "the move of p1 waits for the destroy in review")

        let summary = try #require(try store.batches(BatchFilter()).first)
        #expect(summary.state == .review && summary.events.review == 1 && summary.events.pending == 3)
        #expect(try store.batches(BatchFilter(state: .review)).map(\.id) == ["r"])
        let stats = try store.queueStats()
        #expect(stats.review == 1 && stats.waiting == 3 && stats.oldestWaitingEvent == "HH-1:r#1" && stats.recorded == 1)
        // The status line's cheaper count: the same waiting figures, finished events not counted.
        let waitingOnly = try store.queueStats(countingFinished: false)
        #expect(waitingOnly.review == 1 && waitingOnly.waiting == 3 && waitingOnly.oldestWaitingEvent == "HH-1:r#1")
        #expect(waitingOnly.recorded == 0)
        let list = try store.reviewList()
        #expect(list.count == 1 && list[0].device == "HH-1" && list[0].id == "r" && list[0].user == "jane")
        #expect(list[0].events.map(\.seq) == [1] && list[0].events[0].type == "plant.destroy" && list[0].events[0].tag == Self.p1)
        #expect(list[0].events[0].message == "waits for review: plant.destroy events are reviewed")

        // The uploader is not offered it while it waits, however often it asks.
        #expect(!(try offered().contains { $0.type == .plantDestroy }))

        #expect(try store.decideReview(device: "HH-1", batch: "r", decision: .approve, actor: "op", now: Self.now) == [1])
        #expect(try states("r") == [.queued, .queued, .queued, .recorded])
        let next = try offered()
        #expect(next.map(\.type) == [.plantDestroy, .plantMove] && next.map(\.tag) == [Self.p1, Self.p2],
                "the destroy goes first, the move of p1 still waits for it")
        try store.resolve([(next[0].id, .uploaded(metrcID: nil)), (next[1].id, .uploaded(metrcID: nil))], now: Self.now)
        #expect(try offered().map(\.tag) == [Self.p1])
        #expect(try store.reviewList().isEmpty)

        let entry = try #require(try store.auditEntries().first)
        #expect(entry.actor == "op" && entry.action == "review.approve" && entry.subject == "HH-1:r" && entry.detail == "seq 1 approved")
        #expect(try store.verifyAudit().intact)
    }

    /// A rejected event is finished without ever being offered: later events of its plant go; the reason is
    /// kept on it, shown as an error of the batch, and audited.
    @Test func aRejectedEventNeverGoesAndLetsTheLaterOnesGo() async throws {
        let d = try await device()
        let rule = ReviewRule(users: ["john"])
        let outcomes = try store.commit([try incoming("john-1", user: "john", [Self.destroy(1, Self.p1), Self.harvest(2, Self.p2)], device: d),
                                         try incoming("jane-1", user: "jane", [Self.move(1, Self.p1)], device: d)], now: Self.now, review: rule)
        #expect(outcomes == [.stored(events: 2), .stored(events: 1)])
        #expect(try states("john-1") == [.review, .review])
        #expect(try states("jane-1") == [.queued])
        #expect(try offered().isEmpty, "jane's move of p1 waits for john's destroy in review")

        #expect(throws: StoreError("a rejection needs a reason")) {
            try store.decideReview(device: "HH-1", batch: "john-1", seqs: [1], decision: .reject(reason: "  "), actor: "op")
        }
        #expect(try store.decideReview(device: "HH-1", batch: "john-1", seqs: [1], decision: .reject(reason: "wrong plant"), actor: "op",
                                       now: Self.now) == [1])
        #expect(try states("john-1") == [.rejected, .review])
        #expect(try offered().map(\.type) == [.plantMove], "the rejected destroy is never offered; the later move goes")

        let (summary, events) = try #require(try store.batchDetail(device: "HH-1", id: "john-1"))
        #expect(summary.state == .review && summary.events.rejected == 1)
        #expect(events[0].message == "rejected in review by op: wrong plant")
        #expect(summary.errors == [BatchError(seq: 1, message: "rejected in review by op: wrong plant")])

        // Decisions only apply to events in review; a bad selection changes nothing.
        #expect(throws: StoreError("HH-1:john-1: seq 1 is rejected, not in review; nothing changed")) {
            try store.decideReview(device: "HH-1", batch: "john-1", seqs: [1, 2], decision: .approve, actor: "op")
        }
        #expect(throws: StoreError("HH-1:john-1 has no event seq 9")) {
            try store.decideReview(device: "HH-1", batch: "john-1", seqs: [9], decision: .approve, actor: "op")
        }
        #expect(throws: StoreError("no batch nope from device HH-1")) {
            try store.decideReview(device: "HH-1", batch: "nope", decision: .approve, actor: "op")
        }
        #expect(try states("john-1") == [.rejected, .review])

        #expect(try store.decideReview(device: "HH-1", batch: "john-1", decision: .approve, actor: "op", now: Self.now) == [2])
        #expect(throws: StoreError("HH-1:john-1 has no events in review")) {
            try store.decideReview(device: "HH-1", batch: "john-1", decision: .approve, actor: "op")
        }
        // Rejected in review counts as failed for the batch: queued + rejected is on its way, then partial.
        #expect(try store.batchDetail(device: "HH-1", id: "john-1")?.0.state == .uploading)
        let harvest = try #require(try offered().first { $0.type == .plantHarvest })
        try store.resolve([(harvest.id, .uploaded(metrcID: nil))], now: Self.now)
        #expect(try store.batchDetail(device: "HH-1", id: "john-1")?.0.state == .partial)
        #expect(!(try offered().contains { $0.type == .plantDestroy }))

        // Replay never touches rejected events, and a restart does not bring them back.
        #expect(try store.replay(FailureFilter(batch: ("HH-1", "john-1")), dryRun: false, actor: "op").isEmpty)
        _ = try store.recoverAfterRestart(now: Self.now)
        #expect(try states("john-1") == [.rejected, .uploaded])

        let decisions = try store.auditEntries().filter { $0.action.hasPrefix("review.") }
        #expect(decisions.map(\.action) == ["review.approve", "review.reject"])
        #expect(decisions.last?.detail == "seq 1 rejected: wrong plant" && decisions.allSatisfy { $0.actor == "op" })
    }

    /// The daemon's path: the batch writer applies the rule it was given.
    @Test func theBatchWriterAppliesTheRule() async throws {
        let d = try await device()
        let writer = BatchWriter(store: store, minFreeBytes: 0, review: ReviewRule(eventTypes: [.plantHarvest]))
        let batch = try incoming("w", user: "jane", [Self.harvest(1, Self.p1), Self.move(2, Self.p2)], device: d)
        #expect(await writer.write(batch) == .stored(events: 2))
        #expect(try states("w") == [.review, .queued])
        // Without a rule nothing waits.
        let plain = BatchWriter(store: store, minFreeBytes: 0)
        let other = try incoming("w2", user: "jane", [Self.harvest(1, Self.p2)], device: d)
        #expect(await plain.write(other) == .stored(events: 1))
        #expect(try states("w2") == [.queued])
    }
}
