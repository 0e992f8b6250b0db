/// One pass of the upload loop as a state machine, without I/O or time: each method takes what happened (a plan
/// read, an attempt recorded, Metrc's answer, an outcome recorded, a stop) and returns what to do next; `Uploader`
/// does it. A pass sends what is ready and, as each answer frees a request slot, the next request, until nothing more
/// is ready. Metrc never has more than `concurrency` requests of ours, and no event goes twice in a pass.
struct UploadPass: Sendable {
    enum Action: Sendable, Equatable {
        /// Read the queue for the next plan, leaving out the events already given a request in this pass.
        case readPlan(excluding: Set<Int64>)
        /// Commit the request's attempt record; `slot`: the split slot whose half it is, nil for one recorded ahead.
        case record(PlannedRequest, slot: Int?)
        case send(RecordedRequest)
        /// Record what the answer means for each event; `concluded` follows.
        case conclude(Answer)
        /// Finish the attempts of requests recorded but never sent, and queue their events again; `tookBack` follows.
        case takeBack([RecordedRequest])
        /// Nothing is in flight and nothing more is to be done. `worked`: something was sent or decided.
        case finish(worked: Bool)
    }

    /// One of `concurrency` requests Metrc may have of ours.
    enum Slot: Sendable, Equatable {
        case free
        case atMetrc(attempt: Int64)
        /// Metrc asked for smaller requests: the halves go in this slot one after the other, each once the one before
        /// is answered, depth first (a half split again sends its own halves before the next half).
        case split(halves: [PlannedRequest], step: SplitStep)
    }

    enum SplitStep: Sendable, Equatable {
        /// The split's outcome is being recorded; its first half waits, since that queues the events again first.
        case concluding(attempt: Int64)
        case recording
        case atMetrc(attempt: Int64)
    }

    /// How current the plan is.
    enum Queue: Sendable, Equatable {
        /// An answer was recorded since the last read: what it made ready (the next events of its tags) is not planned.
        case stale
        /// `staleAgain`: an answer was recorded while the read ran.
        case reading(staleAgain: Bool)
        case current
        /// Reading failed: no more reads this pass.
        case unreadable
    }

    enum Phase: Sendable, Equatable {
        case running
        /// Uploads paused or the daemon stopping: nothing new starts; what is in flight is answered and recorded.
        case stopping
        case finished
    }

    private(set) var slots: [Slot]
    private(set) var phase = Phase.running
    private(set) var queue = Queue.stale
    /// Planned, not yet recorded. What was planned stays sendable (an event is ready once everything before it on its
    /// tags is finished, and finished stays finished), so the queue is read again only once the plan is used up.
    private var planned: [PlannedRequest] = []
    /// Recorded ahead, waiting for a free slot: a slot that frees sends at once rather than after an fsync.
    private var recorded: [RecordedRequest] = []
    private var recordingAhead = 0
    private var concluding = 0
    private var takingBack = 0
    /// Events given a request in this pass (the store may not show them uploading yet).
    private var sent = Set<Int64>()
    private(set) var worked = false
    private let objectsPerRequest: Int
    /// Partial requests held back in a backlog while full ones fill the slots, each for a bounded while.
    private var partialWaits: UploadPlanner.PartialWaits

    /// Full requests that may go ahead of a waiting partial one, in rounds of `concurrency`: about five seconds of
    /// a backlog at Metrc's 200 ms. A small group's partial request then costs one slot in a hundred requests.
    static let partialPatienceRounds = 25

    init(concurrency: Int, objectsPerRequest: Int = 100, partialPatience: Int? = nil) {
        slots = Array(repeating: .free, count: max(1, concurrency))
        self.objectsPerRequest = objectsPerRequest
        partialWaits = .init(patience: partialPatience ?? Self.partialPatienceRounds * max(1, concurrency))
    }

    /// Whether requests wait to be recorded or sent: a pause should be looked for before they start.
    var hasUnsent: Bool {
        guard phase == .running else { return false }
        return !(planned.isEmpty && recorded.isEmpty) || slots.contains(where: \.hasHalvesWaiting)
    }

    mutating func start() -> [Action] { next() }

    /// The queue was read, its requests in plan order. Events given a request meanwhile are left out (a split's events
    /// are queued again while its halves wait for their slot). `backlog`: more was ready than the read took, so
    /// partial requests may wait a while for fuller ones (`UploadPlanner.fullFirst`).
    mutating func planRead(_ requests: [PlannedRequest], backlog: Bool = false, decided: Bool) -> [Action] {
        guard case .reading(let staleAgain) = queue else { return [] }
        queue = staleAgain ? .stale : .current
        worked = worked || decided
        if phase == .running {
            planned = UploadPlanner.fullFirst(requests.compactMap { $0.without(sent) }, objectsPerRequest: objectsPerRequest,
                                              concurrency: slots.count, readHitLimit: backlog, waits: &partialWaits)
        }
        return next()
    }

    mutating func planFailed() -> [Action] {
        queue = .unreadable
        return next()
    }

    /// An attempt was recorded (nil: the request is not to be sent).
    mutating func recorded(_ request: RecordedRequest?, slot: Int?) -> [Action] {
        var actions: [Action] = []
        if let slot {
            guard case .split(let halves, .recording) = slots[slot] else { return [] }
            if let request, phase == .running {
                slots[slot] = .split(halves: halves, step: .atMetrc(attempt: request.attemptID))
                actions.append(.send(request))
            } else {
                actions += takeBack(request.map { [$0] } ?? [])
                actions += nextHalf(in: slot)
            }
        } else {
            recordingAhead -= 1
            if let request {
                if phase == .running { recorded.append(request) } else { actions += takeBack([request]) }
            }
        }
        return actions + next()
    }

    /// Metrc answered: the slot is free before the outcome is recorded (a split's slot passes to its halves).
    mutating func answered(_ answer: Answer) -> [Action] {
        let attempt = answer.recorded.attemptID
        guard let slot = slots.firstIndex(where: { $0.holds(attempt) }) else { return [] }
        concluding += 1
        var actions: [Action] = [.conclude(answer)]
        if answer.splits {
            var rest: [PlannedRequest] = []
            if case .split(let halves, _) = slots[slot] { rest = halves }
            slots[slot] = .split(halves: answer.recorded.request.halves + rest, step: .concluding(attempt: attempt))
        } else if case .split = slots[slot] {
            actions += nextHalf(in: slot)
        } else {
            slots[slot] = .free
        }
        return actions + next()
    }

    /// An answer's outcome is recorded: what it made ready is read at once if the plan is used up.
    mutating func concluded(attempt: Int64) -> [Action] {
        concluding -= 1
        switch queue {
        case .current: queue = .stale
        case .reading: queue = .reading(staleAgain: true)
        case .stale, .unreadable: break
        }
        var actions: [Action] = []
        if let slot = slots.firstIndex(where: { $0.isConcluding(attempt) }) { actions += nextHalf(in: slot) }
        return actions + next()
    }

    mutating func tookBack() -> [Action] {
        takingBack -= 1
        return next()
    }

    /// Uploads were paused or the daemon is stopping: nothing more starts, and requests recorded but not sent are
    /// taken back; the pass ends once what is in flight is answered and recorded.
    mutating func stop() -> [Action] {
        guard phase == .running else { return [] }
        phase = .stopping
        planned = []
        let unsent = recorded
        recorded = []
        return takeBack(unsent) + next()
    }

    // MARK: What to do next

    /// Fills free slots with recorded requests, records ahead up to `concurrency` waiting, reads the queue once the
    /// plan is used up and an answer may have made something ready; finishes when nothing is in flight.
    private mutating func next() -> [Action] {
        guard phase != .finished else { return [] }
        var actions: [Action] = []
        if phase == .running {
            for slot in slots.indices where slots[slot] == .free && !recorded.isEmpty {
                let request = recorded.removeFirst()
                slots[slot] = .atMetrc(attempt: request.attemptID)
                actions.append(.send(request))
            }
            while recorded.count + recordingAhead < slots.count, !planned.isEmpty {
                let request = planned.removeFirst()
                sent.formUnion(request.events.map(\.id))
                recordingAhead += 1
                worked = true
                actions.append(.record(request, slot: nil))
            }
            if queue == .stale, planned.isEmpty {
                queue = .reading(staleAgain: false)
                actions.append(.readPlan(excluding: sent))
            }
        }
        if actions.isEmpty, isIdle {
            phase = .finished
            return [.finish(worked: worked)]
        }
        return actions
    }

    private var isIdle: Bool {
        if case .reading = queue { return false }
        return recordingAhead == 0 && concluding == 0 && takingBack == 0 && recorded.isEmpty && planned.isEmpty
            && slots.allSatisfy { $0 == .free }
    }

    /// The split slot's next half, recorded for it; the slot is free when none is left (or the pass is stopping:
    /// the halves' events were queued again when the split was recorded).
    private mutating func nextHalf(in slot: Int) -> [Action] {
        guard phase == .running, case .split(var halves, _) = slots[slot], !halves.isEmpty else {
            slots[slot] = .free
            return []
        }
        let half = halves.removeFirst()
        slots[slot] = .split(halves: halves, step: .recording)
        return [.record(half, slot: slot)]
    }

    private mutating func takeBack(_ requests: [RecordedRequest]) -> [Action] {
        guard !requests.isEmpty else { return [] }
        takingBack += 1
        return [.takeBack(requests)]
    }
}

extension UploadPass.Slot {
    /// Whether the request of `attempt` is at Metrc in this slot.
    func holds(_ attempt: Int64) -> Bool {
        switch self {
        case .atMetrc(let a), .split(_, .atMetrc(let a)): return a == attempt
        default: return false
        }
    }

    var hasHalvesWaiting: Bool {
        if case .split(let halves, _) = self { return !halves.isEmpty }
        return false
    }

    func isConcluding(_ attempt: Int64) -> Bool {
        if case .split(_, .concluding(let a)) = self { return a == attempt }
        return false
    }
}
