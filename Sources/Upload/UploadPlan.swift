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
    /// The order a plan's requests go in: full ones first. In a backlog (`readHitLimit`: more was ready than one read
    /// takes), a request with fewer than `objectsPerRequest` events waits for a later read, where more events of its
    /// group join it, as long as `concurrency` full requests keep every slot busy. Any order is safe: a plan holds at
    /// most one event a tag. A group too small to fill a request goes once the backlog no longer fills the slots.
    public static func fullFirst(_ requests: [PlannedRequest], objectsPerRequest: Int, concurrency: Int,
                                 readHitLimit: Bool) -> [PlannedRequest]
    {
        let full = requests.filter { $0.events.count >= objectsPerRequest }
        if readHitLimit, full.count >= concurrency { return full }
        return full + requests.filter { $0.events.count < objectsPerRequest }
    }
}

extension PlannedRequest {
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
