import Metrc
import OutlawProtocol
import OutlawStore

/// One Metrc request to make: events of one action and facility, all signed by the same key.
public struct PlannedRequest: Sendable, Equatable {
    public let license: String
    public let action: MetrcAction
    public let signing: SigningDecision
    /// The collector whose personal key signs, when it is a personal key.
    public let keyUser: String?
    public let events: [PendingEvent]
}

/// Groups ready events into Metrc requests; pure, so ordering and grouping are tested directly.
public enum UploadPlanner {
    /// The result of planning: requests to send and events to hold.
    public struct Plan: Sendable, Equatable {
        public var requests: [PlannedRequest] = []
        public var holds: [(code: HoldCode, reason: String, events: [Int64])] = []

        public static func == (a: Plan, b: Plan) -> Bool {
            a.requests == b.requests && a.holds.map(\.code) == b.holds.map(\.code) && a.holds.map(\.events) == b.holds.map(\.events)
        }
    }

    /// `events` come in ingestion order and are already at most one per tag (the store sees to that).
    /// Requests keep that order inside each group and hold at most `objectsPerRequest` events.
    public static func plan(_ events: [PendingEvent], objectsPerRequest: Int,
                            decide: (PendingEvent) -> SigningDecision) -> Plan
    {
        struct GroupKey: Hashable {
            let license: String
            let action: MetrcAction
            let signer: String
        }
        var order: [GroupKey] = []
        var groups: [GroupKey: (SigningDecision, String?, [PendingEvent])] = [:]
        struct HoldKey: Hashable {
            let code: HoldCode
            let reason: String
        }
        var holds: [HoldKey: [Int64]] = [:]
        var holdOrder: [HoldKey] = []
        for event in events {
            // Scans are never offered (they are stored `recorded`); an event type with no Metrc call has nothing to send.
            guard let action = MetrcAction(eventType: event.type) else { continue }
            let decision = decide(event)
            let signer: String
            let keyUser: String?
            switch decision {
            case .hold(let code, let reason):
                let k = HoldKey(code: code, reason: reason)
                if holds[k] == nil { holdOrder.append(k) }
                holds[k, default: []].append(event.id)
                continue
            case .personal:
                signer = "personal:\(event.userID)"
                keyUser = event.userName
            case .defaultKey:
                signer = "default"
                keyUser = nil
            }
            let key = GroupKey(license: event.license, action: action, signer: signer)
            if groups[key] == nil {
                order.append(key)
                groups[key] = (decision, keyUser, [])
            }
            groups[key]!.2.append(event)
        }
        var plan = Plan()
        for key in order {
            let (decision, keyUser, list) = groups[key]!
            var start = 0
            while start < list.count {
                let end = min(start + max(1, objectsPerRequest), list.count)
                plan.requests.append(PlannedRequest(license: key.license, action: key.action, signing: decision, keyUser: keyUser,
                                                    events: Array(list[start..<end])))
                start = end
            }
        }
        for k in holdOrder {
            plan.holds.append((code: k.code, reason: k.reason, events: holds[k]!))
        }
        return plan
    }
}

extension UploadPlanner {
    /// Partial requests left waiting in a backlog, by group, and how many full requests have gone while each waited.
    public struct PartialWaits: Sendable, Equatable {
        /// Full requests that may go ahead of a waiting partial request before it goes anyway.
        public let patience: Int
        var passedOver: [PlannedRequest.Group: Int] = [:]

        public init(patience: Int) { self.patience = patience }
    }

    /// The order a plan's requests go in: full ones first. In a backlog (`readHitLimit`: more was ready than one read
    /// takes), a request with fewer than `objectsPerRequest` events waits for a later read, where more events of its
    /// group join it, as long as `concurrency` full requests keep every slot busy, but only until `waits.patience`
    /// full requests have gone ahead of it: a group too small to fill a request (a few manicures among a week of
    /// moves) would otherwise wait for the whole backlog, and the later events of its tags with it. Any order is safe:
    /// a plan holds at most one event a tag. A group's partial request goes at once when the backlog no longer fills
    /// the slots.
    public static func fullFirst(_ requests: [PlannedRequest], objectsPerRequest: Int, concurrency: Int,
                                 readHitLimit: Bool, waits: inout PartialWaits) -> [PlannedRequest]
    {
        let full = requests.filter { $0.events.count >= objectsPerRequest }
        let partial = requests.filter { $0.events.count < objectsPerRequest }
        guard readHitLimit, full.count >= concurrency else {
            waits.passedOver = [:]
            return full + partial
        }
        var overdue: [PlannedRequest] = []
        var stillWaiting: [PlannedRequest.Group: Int] = [:]
        // A group's events go oldest first: when it fills a request, what waited goes in that one, and the rest of the
        // group starts waiting now.
        let filling = Set(full.map(\.group))
        for request in partial {
            let passedOver = filling.contains(request.group) ? 0 : waits.passedOver[request.group] ?? 0
            if passedOver >= waits.patience {
                overdue.append(request)
            } else {
                stillWaiting[request.group] = passedOver + full.count
            }
        }
        waits.passedOver = stillWaiting
        return overdue + full
    }
}

extension PlannedRequest {
    /// What a request's events share: their facility, action and signer. A plan has at most one partial request a group.
    public struct Group: Sendable, Hashable {
        let license: String
        let action: MetrcAction
        let keyUser: String?
    }

    public var group: Group { Group(license: license, action: action, keyUser: keyUser) }

    /// The two requests a split sends instead, in order (a request of one event has no halves).
    var halves: [PlannedRequest] {
        guard events.count > 1 else { return [] }
        let half = events.count / 2
        return [Array(events[..<half]), Array(events[half...])].map {
            PlannedRequest(license: license, action: action, signing: signing, keyUser: keyUser, events: $0)
        }
    }

    /// The request without `ids`; nil when nothing is left of it.
    func without(_ ids: Set<Int64>) -> PlannedRequest? {
        let kept = events.filter { !ids.contains($0.id) }
        if kept.count == events.count { return self }
        return kept.isEmpty ? nil : PlannedRequest(license: license, action: action, signing: signing, keyUser: keyUser, events: kept)
    }
}
