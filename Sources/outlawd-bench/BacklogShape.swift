import Foundation
import MetrcSandbox
import OutlawProtocol

/// What a stored backlog looks like: which tags, how many events each, of which types, in which order. Pure: the
/// same settings give the same backlog.
struct BacklogShape {
    struct Event {
        /// Where in the backlog it was collected (0..<1); the backlog is stored in this order.
        var position: Double
        var isPlant: Bool
        /// The tag's index among the sandbox's seeded plants or packages.
        var seedIndex: Int
        var kind: EventMix.Kind
    }

    var events: [Event] = []
    var plantTags = 0
    var packageTags = 0
    var longestChain = 0
    /// Events by type, for the settings line.
    var mix: [String: Int] = [:]
    var manicures: Int { mix[EventMix.Kind.plantManicure.rawValue] ?? 0 }
    var tags: Int { plantTags + packageTags }

    /// A week's backlog: most tags 1–3 events (plants two thirds, packages one third), `longChains` plants moved
    /// `chainLength` times spread over the whole week. Plants: moves, a few manicures and waste records, and as the
    /// last event of some, a harvest (flowering plants only: odd seed indexes) or a destruction. Packages: moves and
    /// adjustments of ±1. Tags are the seeded ones from `plantBase` and `packageBase` on (those before are the paced
    /// handhelds').
    static func realistic(events target: Int, plantBase: Int, packageBase: Int, chainLength: Int = 30) -> BacklogShape {
        var random = SeededGenerator(seed: 2121)
        var shape = BacklogShape()
        let longChains = max(2, target / 5000)
        let lengths = [1, 1, 2, 1, 3, 2, 1, 2, 3, 1]  // 1.7 events a tag
        var plantIndex = plantBase
        var packageIndex = packageBase
        var out: [Event] = []
        out.reserveCapacity(target + 3)
        for _ in 0..<longChains {
            let index = plantIndex
            plantIndex += 1
            let jitter = Double.random(in: 0..<0.5, using: &random)
            for k in 0..<chainLength {
                out.append(Event(position: (Double(k) + jitter) / Double(chainLength), isPlant: true, seedIndex: index, kind: .plantMove))
            }
            shape.longestChain = chainLength
        }
        var t = 0
        while out.count < target {
            let m = min(lengths[t % lengths.count], target - out.count)
            let isPlant = t % 3 != 2
            let index = isPlant ? plantIndex : packageIndex
            if isPlant { plantIndex += 1 } else { packageIndex += 1 }
            let gap = Double.random(in: 0.02..<0.3, using: &random)
            let start = Double.random(in: 0..<1, using: &random) * max(0, 1 - Double(m - 1) * gap)
            var kinds: [EventMix.Kind] = []
            if isPlant {
                for step in 0..<m {
                    let r = Double.random(in: 0..<1, using: &random)
                    if step == m - 1, r < 0.25, index % 2 == 1 {
                        kinds.append(.plantHarvest)
                    } else if step == m - 1, r < 0.37 {
                        kinds.append(.plantDestroy)
                    } else if r >= 0.37, r < 0.43 {
                        kinds.append(.plantWaste)
                    } else if r >= 0.43, r < 0.445 {
                        kinds.append(.plantManicure)
                    } else {
                        kinds.append(.plantMove)
                    }
                }
            } else {
                let first = Int.random(in: 0..<2, using: &random)
                for step in 0..<m { kinds.append((first + step) % 2 == 0 ? .packageMove : .packageAdjust) }
            }
            for (k, kind) in kinds.enumerated() {
                out.append(Event(position: min(0.999_999, start + Double(k) * gap), isPlant: isPlant, seedIndex: index, kind: kind))
            }
            shape.longestChain = max(shape.longestChain, m)
            t += 1
        }
        // Stable: a tag's events keep their order when positions tie.
        shape.events = out.enumerated().sorted { a, b in
            a.element.position != b.element.position ? a.element.position < b.element.position : a.offset < b.offset
        }.map(\.element)
        shape.plantTags = plantIndex - plantBase
        shape.packageTags = packageIndex - packageBase
        for e in shape.events { shape.mix[e.kind.rawValue, default: 0] += 1 }
        return shape
    }

    /// `tags` plants each moved `length` times, in rounds: every tag's first move, then every tag's second, ...
    static func chains(tags: Int, length: Int, plantBase: Int) -> BacklogShape {
        var shape = BacklogShape()
        for round in 0..<length {
            for t in 0..<tags {
                shape.events.append(Event(position: Double(round * tags + t), isPlant: true, seedIndex: plantBase + t, kind: .plantMove))
            }
        }
        shape.plantTags = tags
        shape.longestChain = length
        shape.mix[EventMix.Kind.plantMove.rawValue] = tags * length
        return shape
    }

    /// How many batches of `perBatch` events the backlog is stored as.
    func batchCount(perBatch: Int = 100) -> Int { (events.count + perBatch - 1) / perBatch }

    /// Batch `b` of the backlog as a batch line of `perBatch` events by `users[b % users.count]`, the events collected
    /// evenly over the `span` (a week) before `now`; and when it was received (just after its last event). One
    /// at a time, so a million events never sit in memory as text.
    func batchLine(_ b: Int, users: [String], perBatch: Int = 100, now: Double,
                   span: Double = 7 * 86_400) -> (user: String, line: String, receivedAt: Double) {
        let start = b * perBatch
        let end = min(start + perBatch, events.count)
        let total = max(1, events.count)
        let user = users[b % users.count]
        var items: [String] = []
        items.reserveCapacity(end - start)
        var collected = now
        for i in start..<end {
            collected = now - span * Double(total - i) / Double(total)
            items.append(Self.eventJSON(events[i], seq: i - start + 1, n: i, at: EventMix.rfc3339(collected, offsetMinutes: -480)))
        }
        return (user, #"{"op":"batch","id":"backlog-\#(b)","user":"\#(user)","events":[\#(items.joined(separator: ","))]}"#, collected + 1)
    }

    /// One event object, fields as PROTOCOL.md "Events" and valid at the sandbox for the tag's seeded record.
    static func eventJSON(_ e: Event, seq: Int, n: Int, at: String) -> String {
        let head = #"{"seq":\#(seq),"type":"\#(e.kind.rawValue)","at":"\#(at)","#
        let tenths = 50 + (n &* 37) % 900
        let weight = String(tenths / 10) + "." + String(tenths % 10)
        let tag = e.isPlant ? EventMix.seededPlantTag(e.seedIndex) : EventMix.seededPackageTag(e.seedIndex)
        // Harvest batches of 50 plants each: one batch for a whole backlog's harvests would make every harvest a
        // long scan of its plant list at the sandbox.
        let harvest = "BL-\(e.seedIndex / 50)"
        switch e.kind {
        case .plantMove, .plantScan:
            return head + #""plant":"\#(tag)","location":"\#(EventMix.plantRooms[n % 3])","sublocation":"\#(EventMix.benches[n % 4])"}"#
        case .plantHarvest:
            return head + #""plant":"\#(tag)","weight":\#(weight),"unit":"Grams","drying_location":"Drying Room","harvest_name":"\#(harvest)-H"}"#
        case .plantManicure:
            return head + #""plant":"\#(tag)","weight":\#(weight),"unit":"Grams","drying_location":"Drying Room","drying_sublocation":"Rack 1","harvest_name":"\#(harvest)-M"}"#
        case .plantDestroy:
            return head + #""plant":"\#(tag)","waste_weight":\#(weight),"waste_unit":"Grams","waste_method":"\#(EventMix.wasteMethods[n % 4])","waste_material":"Soil","reason":"\#(EventMix.wasteReasons[n % 4])","note":"bench"}"#
        case .plantWaste:
            return head + #""plants":["\#(tag)"],"waste_weight":\#(weight),"waste_unit":"Grams","waste_method":"\#(EventMix.wasteMethods[(n + 1) % 4])","waste_material":"Plant trim","reason":"\#(EventMix.wasteReasons[(n + 1) % 4])"}"#
        case .packageMove:
            return head + #""package":"\#(tag)","location":"\#(EventMix.packageRooms[n % 2])","sublocation":"\#(EventMix.shelves[n % 2])"}"#
        case .packageAdjust:
            let unit = EventMix.packageUnits[e.seedIndex % EventMix.packageUnits.count]
            return head + #""package":"\#(tag)","quantity":\#(n % 2 == 0 ? "1" : "-1"),"unit":"\#(unit)","reason":"Drying"}"#
        }
    }

    /// "12,345"
    static func grouped(_ n: Int) -> String {
        var digits = String(n)
        var out = ""
        while digits.count > 3 {
            out = "," + digits.suffix(3) + out
            digits.removeLast(3)
        }
        return digits + out
    }
}
