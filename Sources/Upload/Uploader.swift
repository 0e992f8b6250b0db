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

    public init(objectsPerRequest: Int = 100, concurrency: Int = 4, requirePersonalKeys: Bool = false, alertAfterHours: Double = 48,
                pollInterval: Duration = .seconds(1), backoff: Backoff = Backoff(), defaultKeyRecheck: TimeInterval = 300)
    {
        self.objectsPerRequest = objectsPerRequest
        self.concurrency = concurrency
        self.requirePersonalKeys = requirePersonalKeys
        self.alertAfterHours = alertAfterHours
        self.pollInterval = pollInterval
        self.backoff = backoff
        self.defaultKeyRecheck = defaultKeyRecheck
    }
}

/// Sends stored events to Metrc, each signed with its collector's key, and records every outcome.
public final class Uploader: Service, Sendable {
    let store: Store
    let client: MetrcClient
    let configuration: UploaderConfiguration
    let logger: Logger
    let defaultKey: String?
    let clock: @Sendable () -> Date
    public let wakeup = Wakeup()
    private let heartbeat = Mutex(Date())
    private let alertState = Mutex<Date?>(nil)
    private let defaultKeyCheckedAt = Mutex<Date?>(nil)

    public init(store: Store, client: MetrcClient, defaultKey: String?, configuration: UploaderConfiguration, logger: Logger,
                clock: @escaping @Sendable () -> Date = Date.init)
    {
        self.store = store
        self.client = client
        self.defaultKey = defaultKey
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
    }

    /// When the upload loop last went round; the watchdog uses it to tell a hung uploader from a busy one.
    public var lastHeartbeat: Date { heartbeat.withLock { $0 } }

    public func run() async throws {
        do {
            let (inFlight, held) = try store.recoverAfterRestart(now: clock())
            if inFlight > 0 {
                logger.warning("events were being uploaded when outlawd stopped; their outcome is checked before any resend",
                               metadata: ["events": "\(inFlight)"])
            }
            if held > 0 { logger.info("held events are checked again", metadata: ["events": "\(held)"]) }
        } catch {
            logger.error("cannot recover the upload queue: \(error)")
        }
        await checkDefaultKey()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                self.heartbeat.withLock { $0 = self.clock() }
                var worked = false
                do {
                    worked = try await self.round()
                } catch {
                    self.logger.error("upload round failed: \(error)")
                }
                self.alertIfOld()
                if !worked { await self.wakeup.wait(timeout: self.configuration.pollInterval) }
            }
        }
        logger.info("uploader stopped")
    }

    /// Asks the uploader to look at the queue now (new batch, key change).
    public func wake() { wakeup.signal() }

    /// One pass over ready events. Returns whether anything was sent.
    func round() async throws -> Bool {
        if try store.uploadsPaused() { return false }
        // A key set by outlawctl without the store key is sealed here, by the daemon that has it.
        try store.sealPlainKeys()
        if defaultKeyCheckDue() { await checkDefaultKey() }
        let now = clock()
        let ready = try store.readyEvents(now: now, limit: configuration.concurrency * configuration.objectsPerRequest * 2)
        if ready.isEmpty { return false }
        let keys = try store.signingKeys(userIDs: Set(ready.map(\.userID)))
        let defaultState = try currentDefaultKeyState()
        let decide: (PendingEvent) -> SigningDecision = { event in
            SigningPolicy.decide(collector: event.userName, personalKey: keys[event.userID], defaultKey: defaultState,
                                 requirePersonalKeys: self.configuration.requirePersonalKeys)
        }
        // Writes whose last outcome is unknown are checked against Metrc before anything is resent.
        let unknown = ready.filter { $0.unknownSince != nil }
        var sendable = ready.filter { $0.unknownSince == nil }
        if !unknown.isEmpty {
            sendable += await reconcile(unknown, decide: decide)
            sendable.sort { $0.id < $1.id }
        }
        let plan = UploadPlanner.plan(sendable, objectsPerRequest: configuration.objectsPerRequest, decide: decide)
        for hold in plan.holds {
            try store.hold(eventIDs: hold.events, code: hold.code, reason: hold.reason, now: now)
            logger.error("events held: \(hold.reason)", metadata: ["events": "\(hold.events.count)", "held_code": "\(hold.code)"])
        }
        guard !plan.requests.isEmpty else { return !plan.holds.isEmpty }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for request in plan.requests {
                if running >= configuration.concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.send(request) }
                running += 1
            }
        }
        return true
    }

    /// Sends one request and records the outcome; splits and resends halves when Metrc asks for smaller requests.
    func send(_ request: PlannedRequest) async {
        let key: String
        let signing: AttemptSigning
        switch request.signing {
        case .personal(let k):
            key = k
            signing = AttemptSigning(keyKind: "personal", keyUser: request.keyUser, reason: "collector's own key")
        case .defaultKey(let k, let reason):
            key = k
            signing = AttemptSigning(keyKind: "default", keyUser: nil, reason: reason)
        case .hold:
            return
        }
        let objects = request.events.map { e in
            MetrcBody.object(type: EventType(rawValue: e.type) ?? .plantMove,
                             fields: JSONValue.parse(Array(e.fields.utf8))?.objectValue ?? [:], date: e.metrcDate)
        }
        let started = clock()
        let attemptID: Int64
        do {
            attemptID = try store.beginAttempt(eventIDs: request.events.map(\.id), license: request.license,
                                               action: request.action.rawValue, signing: signing, now: started)
        } catch {
            logger.error("cannot record an upload attempt; not sending: \(error)")
            return
        }
        let response = await client.send(request.action, license: request.license, objects: objects, userKey: key)
        let now = clock()
        let decision = OutcomePolicy.decide(response, action: request.action, events: request.events, now: now,
                                            backoff: configuration.backoff, jitter: Double.random(in: 0...1))
        var metadata: Logger.Metadata = [
            "metrc_action": "\(request.action.rawValue)", "metrc_status": "\(Self.statusText(response))",
            "key_kind": "\(signing.keyKind)", "events": "\(request.events.count)", "facility": "\(request.license)",
            "attempt": "\(attemptID)",
        ]
        if let user = request.keyUser { metadata["outlaw_user"] = "\(user)" }
        do {
            switch decision {
            case .results(let results, let outcome):
                let ids: [Int64]
                if case .accepted(let metrcIDs) = response { ids = metrcIDs } else { ids = [] }
                try store.finishAttempt(attemptID, outcome: outcome, httpStatus: Self.httpStatus(response),
                                        message: Self.message(response), metrcIDs: ids, results: results, now: now)
                log(outcome: outcome, results: results, metadata: metadata)
                if case .accepted = response, case .personal = request.signing, let user = request.events.first?.userID {
                    try store.markUserKeyGood(userID: user, now: now)
                }
            case .split(let outcome):
                try store.finishAttempt(attemptID, outcome: outcome, httpStatus: Self.httpStatus(response), message: Self.message(response),
                                        metrcIDs: [], results: [], now: now)
                logger.notice("Metrc asked for smaller requests; sending halves", metadata: metadata)
                let half = request.events.count / 2
                for part in [Array(request.events[..<half]), Array(request.events[half...])] {
                    await send(PlannedRequest(license: request.license, action: request.action, signing: request.signing,
                                              keyUser: request.keyUser, events: part))
                }
            case .reconcile(let outcome, let message):
                let results: [(Int64, EventResult)] = request.events.map { e in
                    (e.id, .retry(at: now.addingTimeInterval(configuration.backoff.delay(afterAttempts: e.attempts + 1, jitter: Double.random(in: 0...1))),
                                  message: message, unknownSince: started))
                }
                try store.finishAttempt(attemptID, outcome: outcome, httpStatus: Self.httpStatus(response), message: message,
                                        metrcIDs: [], results: results, now: now)
                logger.warning("outcome unknown; Metrc will be read back before any resend", metadata: metadata)
            case .keyRejected(let status):
                let results: [(Int64, EventResult)]
                if case .personal = request.signing, let userID = request.events.first?.userID {
                    let reason = "\(request.keyUser ?? "the collector")'s Metrc key was rejected by Metrc"
                    results = request.events.map { ($0.id, .held(code: "key_rejected", reason: reason)) }
                    try store.finishAttempt(attemptID, outcome: "unauthorized", httpStatus: status, message: "key refused", metrcIDs: [],
                                            results: results, now: now)
                    let held = try store.markUserKeyRejected(userID: userID, now: now)
                    logger.error("Metrc refused \(request.keyUser ?? "a user")'s key: their uploads are held until a new key is set",
                                 metadata: metadata.merging(["held": "\(held + results.count)"]) { a, _ in a })
                } else {
                    let reason = "the facility's Default key was rejected by Metrc"
                    results = request.events.map { ($0.id, .held(code: "default_key_rejected", reason: reason)) }
                    try store.finishAttempt(attemptID, outcome: "unauthorized", httpStatus: status, message: "Default key refused",
                                            metrcIDs: [], results: results, now: now)
                    try store.setDefaultKeyStatus(.rejected)
                    defaultKeyCheckedAt.withLock { $0 = now }
                    logger.critical("Metrc refused the facility's Default key: uploads it signs are held", metadata: metadata)
                }
            }
        } catch {
            logger.error("cannot record an upload outcome: \(error)", metadata: metadata)
        }
    }

    /// Reads Metrc back for events whose last upload had no clear answer: applied ones are marked uploaded,
    /// the rest are returned to be sent. Adjustments are matched in the adjustment history, others by
    /// reading the plant or package.
    func reconcile(_ events: [PendingEvent], decide: (PendingEvent) -> SigningDecision) async -> [PendingEvent] {
        var sendable: [PendingEvent] = []
        var applied: [(Int64, EventResult)] = []
        var notApplied: [Int64] = []
        var unreadable: [PendingEvent] = []
        for (license, list) in Dictionary(grouping: events, by: \.license) {
            var signingKey: String?
            for e in list where signingKey == nil {
                switch decide(e) {
                case .personal(let k), .defaultKey(let k, _): signingKey = k
                case .hold: break
                }
            }
            guard let key = signingKey else {
                sendable += list  // nobody can sign: the planner holds them
                continue
            }
            let adjustments = list.filter { $0.type == EventType.packageAdjust.rawValue }
            if !adjustments.isEmpty {
                let since = (adjustments.compactMap(\.unknownSince).min() ?? clock()).addingTimeInterval(-Reconciliation.clockSkew)
                do {
                    let history = try await client.adjustments(license: license, userKey: key, since: since, until: clock().addingTimeInterval(60))
                    let claimed = try store.claimedMetrcIDs(history.map(\.id))
                    let match = Reconciliation.match(adjustments, against: history, alreadyClaimed: claimed)
                    applied += match.applied.map { ($0.0, .uploaded(metrcID: String($0.1))) }
                    notApplied += match.notApplied
                } catch {
                    unreadable += adjustments
                }
            }
            for event in list where event.type != EventType.packageAdjust.rawValue {
                guard let type = EventType(rawValue: event.type) else { continue }
                let path = (type.tagField == "plant" ? "/plants/v2/" : "/packages/v2/") + event.tag
                let fields = JSONValue.parse(Array(event.fields.utf8))?.objectValue ?? [:]
                do {
                    let record = try await client.list(path: path, license: license, userKey: key, since: nil, until: nil).first
                    if Reconciliation.isApplied(type: type, fields: fields, record: record, since: event.unknownSince ?? clock()) {
                        applied.append((event.id, .uploaded(metrcID: nil)))
                    } else {
                        notApplied.append(event.id)
                    }
                } catch let error as MetrcReadError where error.status == 404 {
                    notApplied.append(event.id)
                } catch {
                    unreadable.append(event)
                }
            }
        }
        let now = clock()
        do {
            try store.resolve(applied, now: now)
            try store.clearUnknown(eventIDs: notApplied)
            try store.resolve(unreadable.map { e in
                (e.id, .retry(at: now.addingTimeInterval(configuration.backoff.delay(afterAttempts: e.attempts, jitter: Double.random(in: 0...1))),
                              message: "outcome unknown; Metrc could not be read back yet", unknownSince: nil))
            }, now: now)
        } catch {
            logger.error("cannot record a read-back: \(error)")
            return []
        }
        let resend = Set(notApplied)
        sendable += events.filter { resend.contains($0.id) }
        logger.notice("read Metrc back for writes with an unknown outcome", metadata: [
            "events": "\(events.count)", "applied": "\(applied.count)", "not_applied": "\(notApplied.count)",
            "unreadable": "\(unreadable.count)",
        ])
        return sendable
    }

    func currentDefaultKeyState() throws -> DefaultKeyState {
        guard let defaultKey else { return .missing }
        return try store.defaultKeyStatus() == .rejected ? .rejected : .usable(defaultKey)
    }

    func defaultKeyCheckDue() -> Bool {
        guard defaultKey != nil, (try? store.defaultKeyStatus()) == .rejected else { return false }
        let last = defaultKeyCheckedAt.withLock { $0 }
        return last.map { clock().timeIntervalSince($0) >= configuration.defaultKeyRecheck } ?? true
    }

    /// Checks the Default key with Metrc: a good answer releases what was held for it.
    func checkDefaultKey() async {
        guard let defaultKey else {
            logger.warning("no Default Metrc key configured: users without a personal key wait (held)")
            return
        }
        defaultKeyCheckedAt.withLock { $0 = clock() }
        switch await client.checkKey(defaultKey) {
        case .valid:
            try? store.setDefaultKeyStatus(.ok)
        case .rejected:
            try? store.setDefaultKeyStatus(.rejected)
            logger.critical("Metrc refuses the facility's Default key: uploads it signs are held until it is replaced")
        case .unreachable(let why):
            logger.warning("cannot reach Metrc to check the Default key; uploads will tell", metadata: ["error": "\(why)"])
        }
    }

    /// A journal warning, at most hourly, while an event has waited longer than `alert_after_hours`.
    func alertIfOld() {
        let now = clock()
        if let last = alertState.withLock({ $0 }), now.timeIntervalSince(last) < 3600 { return }
        guard let stats = try? store.queueStats(), let oldest = stats.oldestWaitingReceivedAt else { return }
        let hours = now.timeIntervalSince(oldest) / 3600
        guard hours >= configuration.alertAfterHours else { return }
        alertState.withLock { $0 = now }
        logger.warning("events have waited \(Int(hours)) hours for Metrc", metadata: [
            "oldest_received": "\(Timestamp.format(oldest))", "oldest_event": "\(stats.oldestWaitingEvent ?? "")", "waiting": "\(stats.waiting)", "held": "\(stats.held)",
            "held_users": "\(stats.heldUsers.joined(separator: ","))",
        ])
    }

    func log(outcome: String, results: [(Int64, EventResult)], metadata: Logger.Metadata) {
        var uploaded = 0, failed = 0, retried = 0
        for (_, r) in results {
            switch r {
            case .uploaded: uploaded += 1
            case .failed: failed += 1
            case .retry: retried += 1
            case .held: break
            }
        }
        let summary = metadata.merging(["uploaded": "\(uploaded)", "failed": "\(failed)", "requeued": "\(retried)"]) { a, _ in a }
        switch outcome {
        case "accepted": logger.info("Metrc accepted \(uploaded) events", metadata: summary)
        case "rejected": logger.warning("Metrc rejected \(failed) of \(results.count) events", metadata: summary)
        default: logger.warning("Metrc request failed (\(outcome)); will retry", metadata: summary)
        }
    }

    static func statusText(_ r: MetrcResponse) -> String {
        switch r {
        case .accepted: return "200"
        case .rejected: return "400"
        case .serverFault(let s, _): return "\(s)"
        case .unauthorized(let s): return "\(s)"
        case .tooLarge: return "413"
        case .rateLimited: return "429"
        case .notFound: return "404"
        case .transportFailure: return "unreachable"
        }
    }

    static func httpStatus(_ r: MetrcResponse) -> Int? { Int(statusText(r)) }

    static func message(_ r: MetrcResponse) -> String? {
        switch r {
        case .accepted: return nil
        case .rejected(let rows): return rows.map { "row \($0.row.map(String.init) ?? "?"): \($0.message)" }.joined(separator: "; ")
        case .serverFault(_, let m), .notFound(let m), .transportFailure(let m): return m
        case .unauthorized: return "key refused"
        case .tooLarge: return "too many objects"
        case .rateLimited(let after): return "rate limited" + (after.map { ", retry after \($0) s" } ?? "")
        }
    }
}
