import Foundation
import Metrc
import OutlawStore
import Testing
@testable import Upload

/// The pass as a state machine: what it asks for after each thing that happens, without I/O or time.
@Suite("Upload pass", .timeLimit(.minutes(1)))
struct UploadPassTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let signing = AttemptSigning(keyKind: .personal, keyUser: "jane", reason: "collector's own key")

    /// One request of a move per event id.
    static func request(_ ids: Int64...) -> PlannedRequest {
        PlannedRequest(license: "LIC-0001", action: .movePlants, signing: .personal(key: "J"), keyUser: "jane", events: ids.map { pending($0) })
    }

    static func recorded(_ request: PlannedRequest, attempt: Int64) -> RecordedRequest {
        RecordedRequest(request: request, key: "J", signing: signing, objects: [], attemptID: attempt, started: t0)
    }

    static func answer(_ recorded: RecordedRequest, _ decision: OutcomePolicy.Decision = .results([], outcome: .accepted)) -> Answer {
        Answer(recorded: recorded, response: .accepted(ids: []), decision: decision, at: t0)
    }

    static func split(_ recorded: RecordedRequest) -> Answer {
        Answer(recorded: recorded, response: .tooLarge, decision: .split(outcome: .tooLarge), at: t0)
    }

    /// Five one-event requests, concurrency 2: two at Metrc (100, 101), two recorded ahead (102, 103), one planned.
    static func busyPass() -> (UploadPass, [PlannedRequest], [RecordedRequest]) {
        var pass = UploadPass(concurrency: 2)
        let plan = (1...5).map { request(Int64($0)) }
        let r = plan.enumerated().map { recorded($1, attempt: Int64(100 + $0)) }
        _ = pass.start()
        _ = pass.planRead(plan, decided: false)
        _ = pass.recorded(r[0], slot: nil)
        _ = pass.recorded(r[1], slot: nil)
        _ = pass.recorded(r[2], slot: nil)
        _ = pass.recorded(r[3], slot: nil)
        return (pass, plan, r)
    }

    @Test func slotsFillUpToConcurrencyWithAttemptsRecordedAhead() {
        var pass = UploadPass(concurrency: 2)
        #expect(pass.start() == [.readPlan(excluding: [])])
        let plan = (1...5).map { Self.request(Int64($0)) }
        let r = plan.enumerated().map { Self.recorded($1, attempt: Int64(100 + $0)) }
        #expect(pass.planRead(plan, decided: false) == [.record(plan[0], slot: nil), .record(plan[1], slot: nil)])
        #expect(pass.recorded(r[0], slot: nil) == [.send(r[0]), .record(plan[2], slot: nil)])
        #expect(pass.recorded(r[1], slot: nil) == [.send(r[1]), .record(plan[3], slot: nil)])
        // Every slot is busy: these wait, and nothing more is recorded ahead of them.
        #expect(pass.recorded(r[2], slot: nil) == [])
        #expect(pass.recorded(r[3], slot: nil) == [])
        #expect(pass.slots == [.atMetrc(attempt: 100), .atMetrc(attempt: 101)])
    }

    @Test func aFreedSlotSendsTheNextRequestAtOnceBeforeTheOutcomeIsRecorded() {
        let (busy, plan, r) = Self.busyPass()
        var pass = busy
        let answer = Self.answer(r[0])
        #expect(pass.answered(answer) == [.conclude(answer), .send(r[2]), .record(plan[4], slot: nil)])
        #expect(pass.slots == [.atMetrc(attempt: 102), .atMetrc(attempt: 101)])
    }

    /// A tag's next event is ready in the store once its predecessor's outcome is recorded: the queue is read at
    /// that moment, within the pass, and the successor recorded and sent with no wait for another pass.
    @Test func aTagsSuccessorGoesAsSoonAsItsPredecessorIsAnswered() {
        var pass = UploadPass(concurrency: 4)
        _ = pass.start()
        let first = Self.request(1), next = Self.request(2)
        let (r1, r2) = (Self.recorded(first, attempt: 1), Self.recorded(next, attempt: 2))
        #expect(pass.planRead([first], decided: false) == [.record(first, slot: nil)])
        #expect(pass.recorded(r1, slot: nil) == [.send(r1)])
        #expect(pass.answered(Self.answer(r1)) == [.conclude(Self.answer(r1))])
        #expect(pass.concluded(attempt: 1) == [.readPlan(excluding: [1])])
        #expect(pass.planRead([next], decided: false) == [.record(next, slot: nil)])
        #expect(pass.recorded(r2, slot: nil) == [.send(r2)])
        #expect(pass.answered(Self.answer(r2)) == [.conclude(Self.answer(r2))])
        #expect(pass.concluded(attempt: 2) == [.readPlan(excluding: [1, 2])])
        #expect(pass.planRead([], decided: false) == [.finish(worked: true)])
    }

    @Test func noEventIsSentTwiceInAPass() {
        var pass = UploadPass(concurrency: 1)
        _ = pass.start()
        let first = Self.request(1, 2)
        let r = Self.recorded(first, attempt: 7)
        _ = pass.planRead([first], decided: false)
        _ = pass.recorded(r, slot: nil)
        _ = pass.answered(Self.answer(r))
        #expect(pass.concluded(attempt: 7) == [.readPlan(excluding: [1, 2])])
        // The store offers event 2 again (a split queued it again): only event 3 is new.
        #expect(pass.planRead([Self.request(2, 3), Self.request(1)], decided: false) == [.record(Self.request(3), slot: nil)])
    }

    @Test func aPauseEndsThePassAndTakesBackWhatWasRecordedButNotSent() {
        let (busy, _, r) = Self.busyPass()
        var pass = busy
        #expect(pass.hasUnsent)
        #expect(pass.stop() == [.takeBack([r[2], r[3]])])
        #expect(!pass.hasUnsent)
        #expect(pass.stop() == [], "a stop is once")
        // What is at Metrc is answered and recorded; nothing more starts, not even a read of the queue.
        #expect(pass.answered(Self.answer(r[0])) == [.conclude(Self.answer(r[0]))])
        #expect(pass.concluded(attempt: 100) == [])
        #expect(pass.answered(Self.answer(r[1])) == [.conclude(Self.answer(r[1]))])
        #expect(pass.concluded(attempt: 101) == [])
        #expect(pass.tookBack() == [.finish(worked: true)])
    }

    @Test func anAttemptRecordedAfterTheStopIsTakenBackAtOnce() {
        var pass = UploadPass(concurrency: 2)
        _ = pass.start()
        let a = Self.request(1)
        let r = Self.recorded(a, attempt: 1)
        _ = pass.planRead([a], decided: false)
        #expect(pass.stop() == [])
        #expect(pass.recorded(r, slot: nil) == [.takeBack([r])])
        #expect(pass.tookBack() == [.finish(worked: true)])
    }

    /// Metrc asked for smaller requests: the halves go in the split's own slot, before requests recorded ahead and
    /// waiting for a slot, one after the other, the first once the split's outcome is recorded.
    @Test func aSplitPutsItsHalvesInTheSlotItFrees() {
        var pass = UploadPass(concurrency: 2)
        _ = pass.start()
        let big = Self.request(1, 2, 3, 4)
        let others = [Self.request(5), Self.request(6), Self.request(7)]
        let rBig = Self.recorded(big, attempt: 10)
        let r = others.enumerated().map { Self.recorded($1, attempt: Int64(11 + $0)) }
        _ = pass.planRead([big] + others, decided: false)
        _ = pass.recorded(rBig, slot: nil)
        _ = pass.recorded(r[0], slot: nil)
        _ = pass.recorded(r[1], slot: nil)
        _ = pass.recorded(r[2], slot: nil)
        // The split's slot stays its own: the request waiting (r[1]) does not take it.
        let halves = [Self.request(1, 2), Self.request(3, 4)]
        #expect(pass.answered(Self.split(rBig)) == [.conclude(Self.split(rBig))])
        #expect(pass.slots[0] == .split(halves: halves, step: .concluding(attempt: 10)))
        #expect(pass.concluded(attempt: 10) == [.record(halves[0], slot: 0), .readPlan(excluding: [1, 2, 3, 4, 5, 6, 7])])
        let h1 = Self.recorded(halves[0], attempt: 20), h2 = Self.recorded(halves[1], attempt: 21)
        #expect(pass.recorded(h1, slot: 0) == [.send(h1)])
        // The other slot frees: the request waiting there goes.
        #expect(pass.answered(Self.answer(r[0])) == [.conclude(Self.answer(r[0])), .send(r[1])])
        // The first half answered: the second takes the slot.
        #expect(pass.answered(Self.answer(h1)) == [.conclude(Self.answer(h1)), .record(halves[1], slot: 0)])
        #expect(pass.recorded(h2, slot: 0) == [.send(h2)])
        #expect(pass.answered(Self.answer(h2)) == [.conclude(Self.answer(h2)), .send(r[2])])
        #expect(pass.slots == [.atMetrc(attempt: 13), .atMetrc(attempt: 12)])
    }

    /// A half split again sends its own halves before the next half: Metrc gets 2, 3, then 2, 3 of a request of 10.
    @Test func halvesSplitAgainGoDepthFirst() {
        var pass = UploadPass(concurrency: 1)
        _ = pass.start()
        let ten = Self.request(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
        _ = pass.planRead([ten], decided: false)
        var attempt: Int64 = 1
        var current = Self.recorded(ten, attempt: attempt)
        _ = pass.recorded(current, slot: nil)
        var accepted: [[Int64]] = []
        // Metrc takes at most 3 objects.
        while true {
            let tooLarge = current.request.events.count > 3
            let actions = pass.answered(tooLarge ? Self.split(current) : Self.answer(current))
            var next = actions.compactMap { action -> PlannedRequest? in
                if case .record(let half, slot: 0) = action { return half }
                return nil
            }
            if tooLarge {
                next = pass.concluded(attempt: attempt).compactMap { action -> PlannedRequest? in
                    if case .record(let half, slot: 0) = action { return half }
                    return nil
                }
            } else {
                accepted.append(current.request.events.map(\.id))
            }
            guard let half = next.first else { break }
            attempt += 1
            current = Self.recorded(half, attempt: attempt)
            #expect(pass.recorded(current, slot: 0) == [.send(current)])
        }
        #expect(accepted == [[1, 2], [3, 4, 5], [6, 7], [8, 9, 10]])
        #expect(pass.slots == [.free])
    }

    @Test func aPassWithNothingReadyFinishesAndSaysWhetherItDecidedAnything() {
        var idle = UploadPass(concurrency: 4)
        #expect(idle.start() == [.readPlan(excluding: [])])
        #expect(idle.planRead([], decided: false) == [.finish(worked: false)])
        var holding = UploadPass(concurrency: 4)
        _ = holding.start()
        #expect(holding.planRead([], decided: true) == [.finish(worked: true)], "events held or failed")
    }

    @Test func aQueueThatCannotBeReadIsNotReadAgainInThePass() {
        var pass = UploadPass(concurrency: 1)
        _ = pass.start()
        let a = Self.request(1)
        let r = Self.recorded(a, attempt: 1)
        _ = pass.planRead([a], decided: false)
        _ = pass.recorded(r, slot: nil)
        _ = pass.answered(Self.answer(r))
        #expect(pass.concluded(attempt: 1) == [.readPlan(excluding: [1])])
        #expect(pass.planFailed() == [.finish(worked: true)])
    }
    /// In a backlog a partial request waits while full ones fill the slots, and goes once `partialPatience` full
    /// requests have gone ahead of it (a small group is never left for the whole backlog's end).
    @Test func aPartialRequestHeldBackInABacklogGoesOnceFullOnesHaveGoneAheadOfIt() {
        var pass = UploadPass(concurrency: 1, objectsPerRequest: 2, partialPatience: 2)
        let manicure = PlannedRequest(license: "LIC-0001", action: .manicurePlants, signing: .personal(key: "N"), keyUser: "john",
                                      events: [pending(99, type: .plantManicure, user: 2, name: "john")])
        var recordedOrder: [[Int64]] = []
        var reads = 0
        var attempt: Int64 = 0
        // Performs the pass's actions as the uploader would, every answer accepted at once; each read finds two more
        // moves (a full request) and the manicure, until it has gone.
        var actions = pass.start()
        while !actions.isEmpty, reads <= 4 {
            var next: [UploadPass.Action] = []
            for action in actions {
                switch action {
                case .readPlan(let sent):
                    reads += 1
                    let moves = Self.request(Int64(2 * reads - 1), Int64(2 * reads))
                    next += pass.planRead([moves, manicure].compactMap { $0.without(sent) }, backlog: true, decided: false)
                case .record(let request, nil):
                    recordedOrder.append(request.events.map(\.id))
                    attempt += 1
                    next += pass.recorded(Self.recorded(request, attempt: attempt), slot: nil)
                case .send(let request):
                    next += pass.answered(Self.answer(request))
                case .conclude(let answer):
                    next += pass.concluded(attempt: answer.recorded.attemptID)
                default:
                    Issue.record("unexpected \(action)")
                    return
                }
            }
            actions = next
        }
        #expect(recordedOrder.prefix(5) == [[1, 2], [3, 4], [99], [5, 6], [7, 8]],
                "the manicure waits while two full requests go ahead, then goes first")
    }
}
