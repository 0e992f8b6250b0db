import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore
import ServiceLifecycle
import Synchronization

/// The uploader's settings, from `[metrc]` and `[facility]`.
public struct UploaderConfiguration: Sendable {
    public var objectsPerRequest: Int
    public var concurrency: Int
    public var requirePersonalKeys: Bool
    public var alertAfterHours: Double
    /// How often the queue is looked at when nothing wakes the uploader (work requeued by outlawctl).
    public var pollInterval: Duration
    public var backoff: Backoff
    /// How often a rejected Default key is checked again.
    public var defaultKeyRecheck: TimeInterval
    /// The least time between the starts of two passes that a wake began: under load every stored batch wakes the
    /// uploader, hundreds a second, and one pass a settle time takes all their events with one read of the queue.
    public var wakeSettle: Duration

    public init(objectsPerRequest: Int = 100, concurrency: Int = 4, requirePersonalKeys: Bool = false, alertAfterHours: Double = 48,
                pollInterval: Duration = .seconds(1), backoff: Backoff = Backoff(), defaultKeyRecheck: TimeInterval = 300,
                wakeSettle: Duration = .milliseconds(100))
    {
        self.wakeSettle = wakeSettle
        self.objectsPerRequest = objectsPerRequest
        self.concurrency = concurrency
        self.requirePersonalKeys = requirePersonalKeys
        self.alertAfterHours = alertAfterHours
        self.pollInterval = pollInterval
        self.backoff = backoff
        self.defaultKeyRecheck = defaultKeyRecheck
    }
}

/// Sends stored events to Metrc, each signed with its collector's key, and records every outcome: the upload
/// loop. Its decisions are the pure policies (`SigningPolicy`, `UploadPlanner`, `OutcomePolicy`); the
/// attempt records, the read-backs, the Default key and the long-wait alert are parts of their own.
public final class Uploader: Service, Sendable {
    let store: Store
    let client: MetrcClient
    let configuration: UploaderConfiguration
    let logger: Logger
    let clock: @Sendable () -> Date
    let recorder: AttemptRecorder
    let reconciler: Reconciler
    let defaultKey: DefaultKeyMonitor
    let longWait: LongWaitAlert
    public let wakeup = Wakeup()
    private let heartbeat = Mutex(Date())

    public init(store: Store, client: MetrcClient, defaultKey: String?, configuration: UploaderConfiguration, logger: Logger,
                clock: @escaping @Sendable () -> Date = Date.init)
    {
        self.store = store
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        recorder = AttemptRecorder(store: store, logger: logger)
        reconciler = Reconciler(store: store, client: client, logger: logger, backoff: configuration.backoff, clock: clock)
        self.defaultKey = DefaultKeyMonitor(key: defaultKey, store: store, client: client, logger: logger,
                                            recheckInterval: configuration.defaultKeyRecheck, clock: clock)
        longWait = LongWaitAlert(store: store, logger: logger, afterHours: configuration.alertAfterHours)
    }

    /// When the upload loop last went round; the watchdog uses it to tell a hung uploader from a busy one.
    public var lastHeartbeat: Date { heartbeat.withLock { $0 } }

    public func run() async throws {
        do {
            let (inFlight, held) = try store.recoverAfterRestart(now: clock())
            if inFlight > 0 {
                logger.warning("events were being uploaded when outlawd stopped; their outcome is checked before any resend",
                               metadata: MessageID.uploadsInterrupted.metadata(["events": "\(inFlight)"]))
            }
            if held > 0 { logger.info("held events are checked again", metadata: ["events": "\(held)"]) }
        } catch {
            logger.error("cannot recover the upload queue: \(error)", metadata: MessageID.uploadQueueNotRecovered.metadata())
        }
        await defaultKey.check()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                self.heartbeat.withLock { $0 = self.clock() }
                let passStarted = ContinuousClock.now
                var worked = false
                do {
                    worked = try await self.round()
                } catch {
                    self.logger.error("upload round failed: \(error)", metadata: MessageID.uploadRoundFailed.metadata())
                }
                UploadMetrics.passes.increment()
                self.longWait.check(now: self.clock())
                if !worked {
                    await self.wakeup.wait(timeout: self.configuration.pollInterval)
                    let sincePass = ContinuousClock.now - passStarted
                    if sincePass < self.configuration.wakeSettle {
                        try? await Task.sleep(for: self.configuration.wakeSettle - sincePass)
                    }
                }
            }
        }
        logger.info("uploader stopped")
    }

    /// Asks the uploader to look at the queue now (new batch, key change).
    public func wake() { wakeup.signal() }

    /// The long-wait alert's age from now on (`alert_after_hours`, changed by a reload).
    public func setAlertAfterHours(_ hours: Double) { longWait.setAfterHours(hours) }

    /// What one child of a pass finished.
    enum Step: Sendable {
        case recorded(RecordedRequest?)
        case answered(RecordedRequest, MetrcResponse)
        /// `freesSlot`: the conclusion sent the halves of a split in the slot of the request it concluded.
        case concluded(freesSlot: Bool)
    }

    /// One pass: sends what is ready, and as each answer frees a request slot, what that answer made ready (the
    /// next events of its tags), until nothing more is ready. No request waits for the slowest of a round of
    /// others. Returns whether anything was sent or decided.
    ///
    /// A slot is Metrc's time only: up to `concurrency` requests have their attempts recorded ahead, while every
    /// slot is busy, so one that frees sends its next request at once rather than after an fsync; and an answer
    /// frees its slot before its outcome is recorded.
    func round() async throws -> Bool {
        if try store.uploadsPaused() { return false }
        // A key set by outlawctl without the store key is sealed here, by the daemon that has it.
        try store.sealPlainKeys()
        await defaultKey.recheckIfDue()
        var worked = false
        var failure: (any Error)?
        let concurrency = configuration.concurrency
        var unsent: [RecordedRequest] = []
        await withTaskGroup(of: Step.self) { group in
            // Events sent in this pass: the store may not show them uploading yet, and none goes twice in a pass
            // (one whose attempt could not even be recorded waits for the next pass, not a tight loop).
            var sent = Set<Int64>()
            var planned: [PlannedRequest] = []
            var recording = 0
            var recorded: [RecordedRequest] = []
            var atMetrc = 0
            var children = 0
            // Whether an answer came since the queue was last read: what it made ready is not planned yet.
            var stale = true
            while true {
                let stopping = Task.isCancelled || (!(planned.isEmpty && recorded.isEmpty) && (try? store.uploadsPaused()) != false)
                if stopping {
                    planned = []
                    unsent += recorded
                    recorded = []
                }
                while atMetrc < concurrency, !recorded.isEmpty {
                    let request = recorded.removeFirst()
                    atMetrc += 1
                    children += 1
                    group.addTask { .answered(request, await self.transmit(request)) }
                }
                while recorded.count + recording < concurrency, !planned.isEmpty {
                    let request = planned.removeFirst()
                    sent.formUnion(request.events.map(\.id))
                    recording += 1
                    children += 1
                    worked = true
                    group.addTask { .recorded(await self.record(request)) }
                }
                // What was planned stays sendable (an event is ready once everything before it on its tags is
                // finished, and finished stays finished), so the queue is read again only once the plan is used
                // up, and then at once, while the requests just sent are on their way: the next slot to free up
                // has its request waiting rather than waiting for a read of the queue.
                if stale, planned.isEmpty, failure == nil, !stopping {
                    stale = false
                    do {
                        let next = try await plan(excluding: sent)
                        planned = next.requests
                        worked = worked || next.decided
                    } catch {
                        failure = error
                    }
                    continue
                }
                guard children > 0, let step = await group.next() else { break }
                children -= 1
                switch step {
                case .recorded(let request):
                    recording -= 1
                    if let request { recorded.append(request) }
                case .answered(let request, let response):
                    // A split's halves go from `conclude`, in this request's slot; any other answer frees it now.
                    let decided = decide(request, response: response)
                    var splits = false
                    if case .split = decided.decision { splits = true } else { atMetrc -= 1 }
                    children += 1
                    group.addTask {
                        await self.conclude(request, response: response, decided: decided)
                        return .concluded(freesSlot: splits)
                    }
                case .concluded(let freesSlot):
                    if freesSlot { atMetrc -= 1 }
                    heartbeat.withLock { $0 = self.clock() }
                    stale = true
                }
            }
        }
        withdraw(unsent)
        if let failure { throw failure }
        return worked
    }

    /// The requests for what is ready now, leaving out events already on their way; holds and unreadable events
    /// are decided here (`decided`).
    func plan(excluding sent: Set<Int64>) async throws -> (requests: [PlannedRequest], decided: Bool) {
        if try store.uploadsPaused() { return ([], false) }
        let now = clock()
        // Reading a long queue takes tens of milliseconds: on a thread of its own, not one of the two cooperative
        // threads that take Metrc's answers for the requests in flight meanwhile.
        let store = self.store
        let limit = configuration.concurrency * configuration.objectsPerRequest * 2
        let ready = try await Blocking.run { try store.readyEvents(now: now, limit: limit) }
        try failUnreadable(ready.unreadable, now: now)
        let events = ready.events.filter { !sent.contains($0.id) }
        if events.isEmpty { return ([], !ready.unreadable.isEmpty) }
        let keys = try store.signingKeys(userIDs: Set(events.map(\.userID)))
        let defaultState = try defaultKey.state()
        let decide: (PendingEvent) -> SigningDecision = { event in
            SigningPolicy.decide(collector: event.userName, personalKey: keys[event.userID], defaultKey: defaultState,
                                 requirePersonalKeys: self.configuration.requirePersonalKeys)
        }
        // Writes whose last outcome is unknown are checked against Metrc before anything is resent.
        let unknown = events.filter { $0.unknownSince != nil }
        var sendable = events.filter { $0.unknownSince == nil }
        if !unknown.isEmpty {
            sendable += await reconciler.reconcile(unknown, decide: decide)
            sendable.sort { $0.id < $1.id }
        }
        let plan = UploadPlanner.plan(sendable, objectsPerRequest: configuration.objectsPerRequest, decide: decide)
        for hold in plan.holds {
            try store.hold(eventIDs: hold.events, code: hold.code, reason: hold.reason, now: now)
            logger.error("events held: \(hold.reason)",
                         metadata: MessageID.eventsHeld.metadata(["events": "\(hold.events.count)", "held_code": "\(hold.code.rawValue)"]))
        }
        return (plan.requests, !plan.holds.isEmpty || !ready.unreadable.isEmpty)
    }

    /// Stored events that cannot be read back are failed with the reason, never uploaded as a guess.
    func failUnreadable(_ events: [UnreadableEvent], now: Date) throws {
        guard !events.isEmpty else { return }
        try store.resolve(events.map { ($0.id, .failed(message: "not uploaded: \($0.reason)")) }, now: now)
        logger.error("stored events cannot be read; failed, not uploaded", metadata: MessageID.eventsUnreadable.metadata([
            "events": "\(events.count)", "first_event": "\(events[0].id)", "reason": "\(events[0].reason)",
        ]))
    }

    /// A request whose attempt is recorded (committed): it may leave for Metrc at once.
    struct RecordedRequest: Sendable {
        let request: PlannedRequest
        let key: String
        let signing: AttemptSigning
        let objects: [JSONValue]
        let attemptID: Int64
        let started: Date
    }

    /// Sends one request and records the outcome; splits and resends halves when Metrc asks for smaller requests.
    func send(_ request: PlannedRequest) async {
        guard let recorded = await record(request) else { return }
        let response = await transmit(recorded)
        await conclude(recorded, response: response, decided: decide(recorded, response: response))
    }

    /// Builds the request's bodies and commits its attempt record, which must be durable before anything leaves;
    /// nil when it is not to be sent (held, a manicure whose plants cannot be read, the record failed).
    func record(_ request: PlannedRequest) async -> RecordedRequest? {
        guard let (key, signing) = AttemptRecorder.signing(of: request) else { return nil }
        let objects = request.events.map { MetrcBody.object(type: $0.type, fields: $0.fields, date: $0.metrcDate) }
        if request.action == .manicurePlants, !(await keepManicureBases(request, key: key)) { return nil }
        let started = clock()
        do {
            // The attempt's records wait for the store's one writer and its fsync: on a thread of their own, so
            // the cooperative threads keep taking Metrc's answers for the other requests in flight.
            let recorder = self.recorder
            let attemptID = try await Blocking.run { try recorder.begin(request, signing: signing, now: started) }
            return RecordedRequest(request: request, key: key, signing: signing, objects: objects, attemptID: attemptID, started: started)
        } catch {
            logger.error("cannot record an upload attempt; not sending: \(error)", metadata: MessageID.attemptNotRecorded.metadata())
            return nil
        }
    }

    func transmit(_ recorded: RecordedRequest) async -> MetrcResponse {
        let request = recorded.request
        return await client.send(request.action, license: request.license, objects: recorded.objects, userKey: recorded.key)
    }

    /// What Metrc's answer means for each event of the request (`OutcomePolicy`), and when it was decided.
    func decide(_ recorded: RecordedRequest, response: MetrcResponse) -> (decision: OutcomePolicy.Decision, at: Date) {
        let now = clock()
        let decision = OutcomePolicy.decide(response, action: recorded.request.action, events: recorded.request.events, now: now,
                                            backoff: configuration.backoff, jitter: Double.random(in: 0...1))
        return (decision, now)
    }

    /// Records what was decided for each event; a split sends the halves, one after the other.
    func conclude(_ recorded: RecordedRequest, response: MetrcResponse, decided: (decision: OutcomePolicy.Decision, at: Date)) async {
        let request = recorded.request
        let attemptID = recorded.attemptID
        let now = decided.at
        let decision = decided.decision
        let metadata = AttemptRecorder.metadata(request, signing: recorded.signing, response: response, attemptID: attemptID)
        UploadMetrics.count(decision, request: request)
        do {
            switch decision {
            case .results(let results, let outcome):
                let recorder = self.recorder
                // Metrc took the collector's own key: it is good, as of this answer.
                var keyAcceptedFor: Int64?
                if case .accepted = response, case .personal = request.signing { keyAcceptedFor = request.events.first?.userID }
                try await Blocking.run { [keyAcceptedFor] in
                    try recorder.finish(attemptID, outcome: outcome, response: response, results: results, keyAcceptedFor: keyAcceptedFor, now: now)
                }
                recorder.logResults(outcome, results: results, metadata: metadata)
            case .split(let outcome):
                try recorder.finish(attemptID, outcome: outcome, response: response, results: [], now: now)
                logger.notice("Metrc asked for smaller requests; sending halves", metadata: MessageID.metrcAskedSmallerRequests.metadata(metadata))
                let half = request.events.count / 2
                for part in [Array(request.events[..<half]), Array(request.events[half...])] {
                    await send(PlannedRequest(license: request.license, action: request.action, signing: request.signing,
                                              keyUser: request.keyUser, events: part))
                }
            case .reconcile(let outcome, let message):
                let results: [(Int64, EventResult)] = request.events.map { e in
                    (e.id, .retry(at: now.addingTimeInterval(configuration.backoff.delay(afterAttempts: e.attempts + 1, jitter: Double.random(in: 0...1))),
                                  message: message, unknownSince: recorded.started))
                }
                try recorder.finish(attemptID, outcome: outcome, response: response, message: message, results: results, now: now)
                logger.warning("outcome unknown; Metrc will be read back before any resend", metadata: MessageID.outcomeUnknown.metadata(metadata))
            case .keyRejected:
                try keyRejected(request, attemptID: attemptID, response: response, now: now, metadata: metadata)
            }
        } catch {
            logger.error("cannot record an upload outcome: \(error)", metadata: MessageID.outcomeNotRecorded.metadata(metadata))
        }
    }

    /// Requests recorded but never sent, because the pass ended first (uploads paused, the daemon stopping):
    /// their attempts say so, and their events are queued again as they were, with nothing to read back.
    func withdraw(_ recorded: [RecordedRequest]) {
        guard !recorded.isEmpty else { return }
        let now = clock()
        for item in recorded {
            let results = item.request.events.map { ($0.id, EventResult.retry(at: now, message: nil, unknownSince: nil)) }
            do {
                try store.finishAttempt(item.attemptID, outcome: .notSent, httpStatus: nil, message: "not sent: the upload pass ended first",
                                        metrcIDs: [], results: results, now: now)
            } catch {
                logger.error("cannot take back an upload attempt that was never sent: \(error)", metadata: MessageID.attemptNotWithdrawn.metadata(["attempt": "\(item.attemptID)"]))
            }
        }
        logger.info("upload requests recorded but not sent were taken back", metadata: ["requests": "\(recorded.count)"])
    }

    /// A manicure's read-back compares the plant's harvest count with the one from just before the attempt, so
    /// that count is read and kept first; when Metrc cannot be read now, the request waits for a later round.
    func keepManicureBases(_ request: PlannedRequest, key: String) async -> Bool {
        let now = clock()
        guard let bases = await ManicureReadBack.bases(request.events, client: client, license: request.license, key: key) else {
            let retry = request.events.map { e in
                (e.id, EventResult.retry(at: now.addingTimeInterval(configuration.backoff.delay(afterAttempts: e.attempts + 1, jitter: Double.random(in: 0...1))),
                                         message: "Metrc could not be read before a manicure; not sent yet", unknownSince: nil))
            }
            try? store.resolve(retry, now: now)
            logger.warning("cannot read the plants before a manicure; it waits", metadata: MessageID.manicureWaitsForRead.metadata([
                "events": "\(request.events.count)", "facility": "\(request.license)",
            ]))
            return false
        }
        do {
            try store.setReadBackBase(bases)
            return true
        } catch {
            logger.error("cannot keep the counts a manicure's read-back needs; not sending: \(error)",
                         metadata: MessageID.manicureBasesNotKept.metadata())
            return false
        }
    }

    /// Metrc refused the signing key: hold the events, and mark the key so nothing else is signed with it.
    func keyRejected(_ request: PlannedRequest, attemptID: Int64, response: MetrcResponse, now: Date, metadata: Logger.Metadata) throws {
        if case .personal = request.signing, let userID = request.events.first?.userID {
            let reason = "\(request.keyUser ?? "the collector")'s Metrc key was rejected by Metrc"
            let results = request.events.map { ($0.id, EventResult.held(code: .keyRejected, reason: reason)) }
            try recorder.finish(attemptID, outcome: .unauthorized, response: response, results: results, now: now)
            let held = try store.markUserKeyRejected(userID: userID, now: now)
            logger.error("Metrc refused \(request.keyUser ?? "a user")'s key: their uploads are held until a new key is set",
                         metadata: MessageID.personalKeyRefusedByUpload.metadata(metadata.merging(["held": "\(held + results.count)"]) { a, _ in a }))
        } else {
            let reason = "the facility's Default key was rejected by Metrc"
            let results = request.events.map { ($0.id, EventResult.held(code: .defaultKeyRejected, reason: reason)) }
            try recorder.finish(attemptID, outcome: .unauthorized, response: response, message: "Default key refused", results: results, now: now)
            try defaultKey.markRejected(now: now)
            logger.critical("Metrc refused the facility's Default key: uploads it signs are held",
                            metadata: MessageID.defaultKeyRefusedByUpload.metadata(metadata))
        }
    }
}
