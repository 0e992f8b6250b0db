import Foundation

/// The events the benchmark's handhelds send: a fixed mix of every uploadable type plus scans, fields as in
/// PROTOCOL.md "Events", naming the plants and packages the bench seeds into the Metrc sandbox (so the daemon's scan
/// check finds them), spread so that no two events of one batch share a tag. Deterministic: the same handheld and
/// batch number always give the same events (the raw SQLite baseline writes exactly these).
enum EventMix {
    static let license = "LIC-0001"

    /// Tags the sandbox's `seed` makes on a demo state (nothing else carries its prefixes): seed prefix + 17 digits
    /// counting from 1. The bench checks the seed's answer against these.
    static func seededPlantTag(_ index: Int) -> String { tag(prefix: "1A4FF05", index + 1) }
    static func seededPackageTag(_ index: Int) -> String { tag(prefix: "1A4FF06", index + 1) }

    static func tag(prefix: String, _ n: Int) -> String {
        let digits = String(n)
        return prefix + String(repeating: "0", count: max(0, 24 - prefix.utf8.count - digits.utf8.count)) + digits
    }

    /// The unit of seeded package `index`: `seed` goes round the demo facility's six items.
    static let packageUnits = ["Grams", "Grams", "Grams", "Ounces", "Each", "Each"]

    enum Kind: String {
        case plantMove = "plant.move"
        case plantHarvest = "plant.harvest"
        case packageAdjust = "package.adjust"
        case plantDestroy = "plant.destroy"
        case packageMove = "package.move"
        case plantManicure = "plant.manicure"
        case plantWaste = "plant.waste"
        case plantScan = "plant.scan"
    }

    /// 20 events: 5 plant moves, 3 scans, 3 package adjustments, 3 package moves, 2 harvests, 2 manicures,
    /// 1 destruction, 1 waste record of three plants.
    static let pattern: [Kind] = [
        .plantMove, .plantScan, .packageAdjust, .plantMove, .packageMove, .plantHarvest, .plantMove, .plantManicure,
        .plantScan, .packageAdjust, .plantMove, .packageMove, .plantDestroy, .plantMove, .packageAdjust, .plantScan,
        .plantManicure, .packageMove, .plantWaste, .plantHarvest,
    ]

    static let plantRooms = ["Flower Room 1", "Flower Room 2", "Veg Room"]
    static let benches = ["Bench 1", "Bench 2", "Bench 3", "Bench 4"]
    static let packageRooms = ["Vault", "Processing Room"]
    static let shelves = ["Shelf A", "Shelf B"]
    static let adjustReasons = ["Drying", "Spoilage", "Waste"]
    static let wasteReasons = ["Male Plants", "Pests", "Contamination", "Mold"]
    static let wasteMethods = ["Compost", "Grinder", "Incinerator", "Mix with Soil"]

    /// Where one handheld's tags start, so handhelds work on different plants at the same moment.
    static func plantOffset(handheld: Int) -> Int { handheld &* 4099 }
    static func packageOffset(handheld: Int) -> Int { handheld &* 1543 }

    /// The user of a batch: jane and john take turns.
    static func user(batch: Int) -> String { batch % 2 == 0 ? "jane" : "john" }
    /// The PIN of both bench users.
    static let pin = "4821"


    /// One whole `batch` line (with its `\n`) for handheld `handheld`'s batch number `batch`. `at` of event `i` is
    /// `collectedAt` minus the events still to come, in seconds, written in the facility's offset (-08:00).
    static func batchLine(id: String, handheld: Int, batch: Int, events: Int, plants: Int, packages: Int,
                          collectedAt: Double, tickets: [String: String] = [:]) -> [UInt8] {
        var out = ""
        out.reserveCapacity(events * 200 + 100)
        out += #"{"op":"batch","id":""#
        out += id
        out += #"","user":""#
        out += user(batch: batch)
        if let ticket = tickets[user(batch: batch)] {
            out += #"","ticket":""#
            out += ticket
        }
        out += #"","events":["#
        let first = batch &* events
        for seq in 1...events {
            if seq > 1 { out += "," }
            let n = first + seq - 1
            appendEvent(&out, seq: seq, kind: pattern[n % pattern.count], n: n,
                        plant: { k in seededPlantTag((plantOffset(handheld: handheld) + n + k * 7) % plants) },
                        package: { seededPackageTag((packageOffset(handheld: handheld) + n) % packages) },
                        packageUnit: { packageUnits[((packageOffset(handheld: handheld) + n) % packages) % packageUnits.count] },
                        at: rfc3339(collectedAt - Double(events - seq), offsetMinutes: -480))
        }
        out += "]}\n"
        return Array(out.utf8)
    }

    /// One event object. `plant(k)` is the event's k-th plant (k > 0 only for a waste record's further plants).
    static func appendEvent(_ out: inout String, seq: Int, kind: Kind, n: Int, plant: (Int) -> String, package: () -> String,
                            packageUnit: () -> String, at: String) {
        out += #"{"seq":"#
        out += String(seq)
        out += #","type":""#
        out += kind.rawValue
        out += #"","at":""#
        out += at
        out += "\","
        let tenths = 50 + (n &* 37) % 900
        let decimal = String(tenths / 10) + "." + String(tenths % 10)
        switch kind {
        case .plantMove:
            out += #""plant":"\#(plant(0))","location":"\#(plantRooms[n % 2])","sublocation":"\#(benches[n % 4])"}"#
        case .plantScan:
            out += #""plant":"\#(plant(0))","location":"\#(plantRooms[n % 3])"}"#
        case .plantHarvest:
            out += #""plant":"\#(plant(0))","weight":\#(decimal),"unit":"Grams","drying_location":"Drying Room"}"#
        case .plantManicure:
            out += #""plant":"\#(plant(0))","weight":\#(decimal),"unit":"Grams","drying_location":"Drying Room","drying_sublocation":"Rack 1"}"#
        case .plantDestroy:
            out += #""plant":"\#(plant(0))","waste_weight":\#(decimal),"waste_unit":"Grams","waste_method":"\#(wasteMethods[n % 4])","waste_material":"Soil","reason":"\#(wasteReasons[n % 4])","note":"bench"}"#
        case .plantWaste:
            out += #""plants":["\#(plant(0))","\#(plant(1))","\#(plant(2))"],"waste_weight":\#(decimal),"waste_unit":"Grams","waste_method":"\#(wasteMethods[(n + 1) % 4])","waste_material":"Plant trim","reason":"\#(wasteReasons[(n + 1) % 4])"}"#
        case .packageMove:
            out += #""package":"\#(package())","location":"\#(packageRooms[n % 2])","sublocation":"\#(shelves[n % 2])"}"#
        case .packageAdjust:
            let unit = packageUnit()
            let quantity = unit == "Each" ? (n % 2 == 0 ? "-1" : "1") : (n % 2 == 0 ? "-" + decimal : decimal)
            out += #""package":"\#(package())","quantity":\#(quantity),"unit":"\#(unit)","reason":"\#(adjustReasons[n % 3])"}"#
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS±HH:MM` of `epoch` seen at `offsetMinutes` from UTC, without a formatter.
    static func rfc3339(_ epoch: Double, offsetMinutes: Int) -> String {
        let local = Int(epoch.rounded(.down)) + offsetMinutes * 60
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secondOfDay = local - days * 86_400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ v: Int) -> String { v < 10 ? "0" + String(v) : String(v) }
        let sign = offsetMinutes < 0 ? "-" : "+"
        let off = abs(offsetMinutes)
        return String(year) + "-" + two(month) + "-" + two(day) + "T" + two(secondOfDay / 3600) + ":" + two(secondOfDay / 60 % 60)
            + ":" + two(secondOfDay % 60) + sign + two(off / 60) + ":" + two(off % 60)
    }
}
