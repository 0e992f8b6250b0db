import Foundation

/// The Metrc write an event becomes, named as the sandbox's write log names it.
enum MetrcAction: String, Codable, Sendable, CaseIterable {
    case movePlants, harvestPlants, destroyPlants, movePackages, adjustPackages

    init?(eventType: String) {
        switch eventType {
        case "plant.move": self = .movePlants
        case "plant.harvest": self = .harvestPlants
        case "plant.destroy": self = .destroyPlants
        case "package.move": self = .movePackages
        case "package.adjust": self = .adjustPackages
        default: return nil
        }
    }

    /// Metrc's v2 endpoint for it (what outlawd calls).
    var endpoint: String {
        switch self {
        case .movePlants: "PUT /plants/v2/location"
        case .harvestPlants: "PUT /plants/v2/harvest"
        case .destroyPlants: "DELETE /plants/v2/"
        case .movePackages: "PUT /packages/v2/location"
        case .adjustPackages: "POST /packages/v2/adjust"
        }
    }

    /// The request object's field holding the tag.
    var labelField: String { self == .harvestPlants ? "Plant" : "Label" }
}

/// A value of an event field: the protocol's fields are text or numbers.
enum FieldValue: Sendable, Equatable {
    case text(String)
    case number(Double)

    var json: Any {
        switch self {
        case .text(let text): text
        case .number(let number): number
        }
    }
}

/// One scan on the handheld, as the device protocol's batch carries it.
struct ShiftEvent: Sendable {
    let seq: Int
    let type: String
    let at: Date
    /// `plant` or `package`.
    let tagField: String
    let tag: String
    let fields: [String: FieldValue]

    var action: MetrcAction? { MetrcAction(eventType: type) }

    func json(timeZone: TimeZone) -> [String: Any] {
        var object: [String: Any] = ["seq": seq, "type": type, "at": Timestamp.format(at, timeZone: timeZone), tagField: tag]
        for (name, value) in fields { object[name] = value.json }
        return object
    }

    /// True when a Metrc request object in the write log is this event: same tag and the same values where the
    /// event's own fields reach Metrc unchanged (so an earlier run's move of the same plant elsewhere is not it).
    func matches(_ object: JSONValue) -> Bool {
        guard let action, object[field: action.labelField]?.string == tag else { return false }
        let compared: [(String, String)] = switch action {
        case .movePlants, .movePackages: [("location", "Location"), ("sublocation", "Sublocation")]
        case .harvestPlants: [("weight", "Weight"), ("drying_location", "DryingLocation"), ("harvest_name", "HarvestName")]
        case .destroyPlants: [("reason", "WasteReasonName"), ("waste_weight", "WasteWeight")]
        case .adjustPackages: [("quantity", "Quantity"), ("reason", "AdjustmentReason"), ("note", "ReasonNote")]
        }
        return compared.allSatisfy { field, metrcField in
            switch (fields[field], object[field: metrcField]) {
            case (nil, _): true
            case (.text(let sent)?, .string(let logged)?): sent.lowercased() == logged.lowercased()
            case (.number(let sent)?, .number(let logged)?): abs(sent - logged) < 1e-9
            default: false
            }
        }
    }
}

/// The events one person collected, sent as one batch.
struct ShiftBatch: Sendable {
    let id: String
    let user: String
    let events: [ShiftEvent]
}

/// A whole shift: the batches in the order the handheld syncs them, and the one event Metrc will refuse.
struct Shift: Sendable {
    let run: String
    let batches: [ShiftBatch]
    /// The move to a room Metrc does not know yet.
    let refused: (batch: String, seq: Int, location: String)
}

/// Plans a realistic shift for two people from what the sandbox still has, so the demo can run again and again
/// against one daemon: moves and adjustments may repeat, but a harvested or destroyed plant is gone, so plants
/// for those are taken from the ones Metrc still tracks (the demo data has 150 vegetative and 150 flowering).
enum ShiftPlanner {
    /// The demo's crew (PINs from `outlawd --dev`): jane signs with her own Metrc key, john has none.
    static let crew: [(user: String, pin: String)] = [("jane", "1234"), ("john", "5678")]

    /// An adjustment on the handheld: what kind of package it needs, how much, and why.
    struct Adjustment {
        let unit: String
        let quantity: Double
        let reason: String
        let note: String?
    }

    static let janeAdjustments = [
        Adjustment(unit: "Grams", quantity: -3.2, reason: "Drying", note: nil),
        Adjustment(unit: "Grams", quantity: 1.1, reason: "Scale Variance", note: "Re-weighed on the calibrated scale"),
        Adjustment(unit: "Each", quantity: -2, reason: "Spoilage", note: nil),
        Adjustment(unit: "Grams", quantity: -0.8, reason: "Waste", note: nil),
    ]
    static let johnAdjustments = [
        Adjustment(unit: "Grams", quantity: -2.4, reason: "Drying", note: nil),
        Adjustment(unit: "Each", quantity: 1, reason: "Incorrect Quantity", note: "Miscounted at packaging"),
        Adjustment(unit: "Ounces", quantity: -0.25, reason: "Drying", note: nil),
    ]
    /// Wet weights in grams, as a scale shows them.
    static let harvestWeights = [512.4, 688.0, 437.9, 601.25, 774.6, 455.3, 530.8]

    static func plan(run: String, stock: SandboxStock, now: Date) throws -> Shift {
        let movesPerUser = 8
        let harvests = (jane: 4, john: 3)
        let packageMoves = (jane: 5, john: 4)
        let vegetativeNeeded = 2 * movesPerUser + 1 + 2
        guard stock.vegetative.count >= vegetativeNeeded, stock.flowering.count >= harvests.jane + harvests.john else {
            throw HandheldError.setup("""
                the Metrc sandbox has \(stock.vegetative.count) vegetative and \(stock.flowering.count) flowering plants left \
                (a shift needs \(vegetativeNeeded) and \(harvests.jane + harvests.john)): earlier runs harvested and destroyed them. \
                Restart outlawd --dev: its sandbox starts from the demo data again.
                """)
        }
        let vegetative = stock.vegetative.map(\.label)
        let flowering = stock.flowering
        // Moves use the first plants every run (they stay); destroys take from the end, so they never meet.
        let janeMoves = Array(vegetative[0..<movesPerUser])
        let johnMoves = Array(vegetative[movesPerUser..<(2 * movesPerUser)])
        let refusedPlant = vegetative[2 * movesPerUser]
        let destroyed = (jane: vegetative[vegetative.count - 1], john: vegetative[vegetative.count - 2])

        let movedPackages = Array(stock.packages.prefix(packageMoves.jane + packageMoves.john))
        guard movedPackages.count == packageMoves.jane + packageMoves.john else {
            throw HandheldError.setup("the Metrc sandbox has only \(stock.packages.count) active packages left; restart outlawd --dev")
        }
        var spare = Array(stock.packages.dropFirst(movedPackages.count))
        func package(for adjustment: Adjustment) throws -> String {
            // Never below zero, with room for the next runs' adjustments too.
            guard let index = spare.firstIndex(where: {
                $0.unitOfMeasure == adjustment.unit && $0.quantity + adjustment.quantity >= 1
            }) else {
                throw HandheldError.setup("no active \(adjustment.unit) package with enough left to adjust; restart outlawd --dev")
            }
            return spare.remove(at: index).label
        }
        // The room john moves a plant to is one Metrc does not know yet, so Metrc refuses it; a later run picks
        // the next number if a tech has since created it.
        let missingRoom = (3...999).map { "Flower Room \($0)" }.first { !stock.locations.contains($0.lowercased()) } ?? "Flower Room X"

        // The crew logs in just before scanning (the demo does so right after planning): a login ticket covers
        // events from 10 minutes before its login, so the shift's scans are the last few minutes.
        let shiftStart = now.addingTimeInterval(-5 * 60)
        var clock = shiftStart
        func next() -> Date {
            clock = clock.addingTimeInterval(7)
            return min(clock, now)
        }
        var batches: [ShiftBatch] = []
        func batch(_ user: String, _ build: (inout [ShiftEvent]) throws -> Void) rethrows {
            var events: [ShiftEvent] = []
            try build(&events)
            batches.append(ShiftBatch(id: "demo-\(run)-\(batches.count + 1)", user: user, events: events))
        }
        func event(_ events: inout [ShiftEvent], _ type: String, plant: String? = nil, package: String? = nil,
                   _ fields: [String: FieldValue]) {
            events.append(ShiftEvent(seq: events.count + 1, type: type, at: next(), tagField: plant == nil ? "package" : "plant",
                                     tag: plant ?? package ?? "", fields: fields))
        }
        func harvest(_ events: inout [ShiftEvent], _ index: Int) {
            event(&events, "plant.harvest", plant: flowering[index].label, [
                "weight": .number(harvestWeights[index % harvestWeights.count]), "unit": .text("Grams"),
                "drying_location": .text("Drying Room"), "drying_sublocation": .text("Rack 1"),
                "harvest_name": .text("\(flowering[index].strain) demo \(run)"),
            ])
        }
        func adjust(_ events: inout [ShiftEvent], _ adjustment: Adjustment) throws {
            var fields: [String: FieldValue] = [
                "quantity": .number(adjustment.quantity), "unit": .text(adjustment.unit), "reason": .text(adjustment.reason),
            ]
            if let note = adjustment.note { fields["note"] = .text(note) }
            event(&events, "package.adjust", package: try package(for: adjustment), fields)
        }

        // Jane's morning: plants to flower, the first harvests, a pest-ridden plant out, the vault.
        batch("jane") { events in
            for (i, plant) in janeMoves.enumerated() {
                event(&events, "plant.move", plant: plant, ["location": .text("Flower Room 1"), "sublocation": .text("Bench \(i % 4 + 1)")])
            }
        }
        batch("jane") { events in
            for i in 0..<harvests.jane { harvest(&events, i) }
            event(&events, "plant.destroy", plant: destroyed.jane, [
                "waste_weight": .number(45.5), "waste_unit": .text("Grams"), "waste_method": .text("Compost"),
                "waste_material": .text("Soil"), "reason": .text("Pests"), "note": .text("Spider mites; pulled before they spread"),
            ])
        }
        try batch("jane") { events in
            for p in movedPackages.prefix(packageMoves.jane) {
                event(&events, "package.move", package: p.label, ["location": .text("Processing Room")])
            }
            for a in janeAdjustments { try adjust(&events, a) }
        }
        // John's afternoon: more plants to flower (one to a room not set up in Metrc), harvests, a male, the vault.
        batch("john") { events in
            for (i, plant) in johnMoves.enumerated() {
                if i == 4 { event(&events, "plant.move", plant: refusedPlant, ["location": .text(missingRoom)]) }
                event(&events, "plant.move", plant: plant, ["location": .text("Flower Room 2"), "sublocation": .text("Bench \(i % 4 + 1)")])
            }
        }
        let refused = (batch: batches[batches.count - 1].id, seq: 5, location: missingRoom)
        batch("john") { events in
            for i in harvests.jane..<(harvests.jane + harvests.john) { harvest(&events, i) }
            event(&events, "plant.destroy", plant: destroyed.john, [
                "waste_weight": .number(120), "waste_unit": .text("Grams"), "waste_method": .text("Grinder"),
                "waste_material": .text("Soil"), "reason": .text("Male Plants"),
            ])
        }
        try batch("john") { events in
            for p in movedPackages.suffix(packageMoves.john) {
                event(&events, "package.move", package: p.label, ["location": .text("Vault"), "sublocation": .text("Shelf B")])
            }
            for a in johnAdjustments { try adjust(&events, a) }
        }
        return Shift(run: run, batches: batches, refused: refused)
    }

    /// A stamp unique to this run (batch ids are unique per device forever): UTC time and a random suffix.
    static func runStamp(_ now: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: now)
        let digits = [c.year, c.month, c.day, c.hour, c.minute, c.second].map { value -> String in
            let text = String(value ?? 0)
            return text.count < 2 ? "0" + text : text
        }
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        return digits[0...2].joined() + "T" + digits[3...5].joined() + "Z-" + String(repeating: "0", count: 4 - suffix.count) + suffix
    }
}
