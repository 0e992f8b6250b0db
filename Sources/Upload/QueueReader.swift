import Foundation
import Logging
import OutlawProtocol
import OutlawStore

/// The requests for what is ready now, and what reading the queue decided on the way (`decided`: events failed as
/// unreadable or held).
struct NextPlan: Sendable, Equatable {
    var requests: [PlannedRequest] = []
    var decided = false
    /// More was ready than one read takes: partial requests may wait for fuller ones (`UploadPlanner.fullFirst`).
    var backlog = false
}

/// Reads the queue into the next plan: fails stored events that cannot be read, reads Metrc back for writes whose
/// outcome is unknown, holds what nobody may sign, and groups the rest into requests (`UploadPlanner`). Store work
/// runs on threads of its own: reading a long queue takes tens of milliseconds, which the two cooperative threads
/// need for Metrc's answers to the requests in flight meanwhile.
struct QueueReader: Sendable {
    let store: Store
    let configuration: UploaderConfiguration
    let defaultKey: DefaultKeyMonitor
    let reconciler: Reconciler
    let logger: Logger
    let now: @Sendable () -> Date

    /// The next plan, leaving out events already on their way; nil when uploads are paused.
    func nextPlan(excluding sent: Set<Int64>) async throws -> NextPlan? {
        let now = self.now()
        // Eight slots' worth: a backlog spread over many groups (actions × signers) still fills whole requests, and a
        // read costs what it returns (ready heads), not what is queued.
        let limit = configuration.concurrency * configuration.objectsPerRequest * 8
        let (store, defaultKey) = (self.store, self.defaultKey)
        let read = try await Blocking.run { () -> Read? in
            if try store.uploadsPaused() { return nil }
            let ready = try store.readyEvents(now: now, limit: limit)
            try failUnreadable(ready.unreadable, now: now)
            let events = ready.events.filter { !sent.contains($0.id) }
            let hitLimit = ready.events.count + ready.unreadable.count >= limit
            if events.isEmpty {
                return Read(events: [], unreadable: ready.unreadable.count, hitLimit: hitLimit, keys: [:], defaultKey: .missing)
            }
            return Read(events: events, unreadable: ready.unreadable.count, hitLimit: hitLimit,
                        keys: try store.signingKeys(userIDs: Set(events.map(\.userID))), defaultKey: try defaultKey.state())
        }
        guard let read else { return nil }
        if read.events.isEmpty { return NextPlan(decided: read.unreadable > 0) }
        let requirePersonalKeys = configuration.requirePersonalKeys
        let decide: (PendingEvent) -> SigningDecision = { event in
            SigningPolicy.decide(collector: event.userName, personalKey: read.keys[event.userID], defaultKey: read.defaultKey,
                                 requirePersonalKeys: requirePersonalKeys)
        }
        // Writes whose last outcome is unknown are checked against Metrc before anything is resent.
        let unknown = read.events.filter { $0.unknownSince != nil }
        var sendable = read.events.filter { $0.unknownSince == nil }
        if !unknown.isEmpty {
            sendable += await reconciler.reconcile(unknown, decide: decide)
            sendable.sort { $0.id < $1.id }
        }
        let plan = UploadPlanner.plan(sendable, objectsPerRequest: configuration.objectsPerRequest, decide: decide)
        if !plan.holds.isEmpty {
            let holds = plan.holds.map { Hold(code: $0.code, reason: $0.reason, events: $0.events) }
            try await Blocking.run {
                for hold in holds { try store.hold(eventIDs: hold.events, code: hold.code, reason: hold.reason, now: now) }
            }
            for hold in holds {
                logger.error("events held: \(hold.reason)",
                             metadata: MessageID.eventsHeld.metadata(["events": "\(hold.events.count)", "held_code": "\(hold.code.rawValue)"]))
            }
        }
        return NextPlan(requests: plan.requests, decided: !plan.holds.isEmpty || read.unreadable > 0, backlog: read.hitLimit)
    }

    /// What one read of the queue found, and the keys to sign it with.
    private struct Read: Sendable {
        let events: [PendingEvent]
        let unreadable: Int
        /// The read returned all it may: more is ready than one plan takes (a backlog).
        let hitLimit: Bool
        let keys: [Int64: SigningKey]
        let defaultKey: DefaultKeyState
    }

    private struct Hold: Sendable {
        let code: HoldCode
        let reason: String
        let events: [Int64]
    }

    /// Stored events that cannot be read back are failed with the reason, never uploaded as a guess.
    private func failUnreadable(_ events: [UnreadableEvent], now: Date) throws {
        guard !events.isEmpty else { return }
        try store.resolve(events.map { ($0.id, .failed(message: "not uploaded: \($0.reason)")) }, now: now)
        logger.error("stored events cannot be read; failed, not uploaded", metadata: MessageID.eventsUnreadable.metadata([
            "events": "\(events.count)", "first_event": "\(events[0].id)", "reason": "\(events[0].reason)",
        ]))
    }
}
