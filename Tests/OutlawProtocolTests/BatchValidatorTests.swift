import Foundation
import Testing
@testable import OutlawProtocol

@Suite("Batch validation")
struct BatchValidatorTests {
    let now = Timestamp("2026-11-28T12:00:00Z")!.date
    let validator = BatchValidator(maxBatchEvents: 5, defaultLicense: "LIC-0001", licenses: ["LIC-0001", "LIC-0002"])
    static let plant = "1A4FF0100000022000000001"
    static let package = "1A4FF0300000022000000001"

    func batch(_ events: [JSONValue], extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var b: [String: JSONValue] = ["op": "batch", "id": "b-1", "user": "jane", "events": .array(events)]
        for (k, v) in extra { b[k] = v }
        return b
    }

    static func event(_ type: String, seq: Int = 1, _ fields: [String: JSONValue]) -> JSONValue {
        var e: [String: JSONValue] = ["seq": .number(Double(seq)), "type": .string(type), "at": "2026-11-28T14:03:11-08:00"]
        for (k, v) in fields { e[k] = v }
        return .object(e)
    }

    static let harvest = event("plant.harvest", ["plant": .string(plant), "weight": 12.5, "unit": "Grams", "drying_location": "Drying Room"])

    func rejection(_ b: [String: JSONValue]) -> BatchRejection? {
        if case .failure(let r) = validator.validate(b, now: now) { return r }
        return nil
    }

    func eventErrors(_ e: JSONValue) -> [EventError] {
        rejection(batch([e]))?.errors ?? []
    }

    @Test func acceptsEveryEventType() throws {
        let events: [JSONValue] = [
            Self.harvest,
            Self.event("plant.move", seq: 2, ["plant": .string(Self.plant), "location": "Flower Room 1"]),
            Self.event("plant.destroy", seq: 3, ["plant": .string(Self.plant), "waste_weight": 0, "waste_unit": "Grams",
                                                 "waste_method": "Grinder", "waste_material": "Soil", "reason": "Mold"]),
            Self.event("package.move", seq: 4, ["package": .string(Self.package), "location": "Vault"]),
            Self.event("package.adjust", seq: 5, ["package": .string(Self.package), "quantity": -2, "unit": "Grams", "reason": "Drying"]),
        ]
        let result = try validator.validate(batch(events), now: now).get()
        #expect(result.events.map(\.type) == [.plantHarvest, .plantMove, .plantDestroy, .packageMove, .packageAdjust])
        #expect(result.license == "LIC-0001")
        #expect(result.events[0].at.localDate == "2026-11-28")
        #expect(result.events[0].tag == Self.plant)
    }

    /// Stored content hashes must not change across versions: the canonical content built from each event's
    /// canonical JSON is exactly the old whole-object serialization, escapes, unknown fields and licenses included.
    @Test func canonicalContentIsTheSortedSerializationOfUserLicenseAndEvents() throws {
        let events: [JSONValue] = [
            Self.harvest,
            Self.event("plant.move", seq: 2, ["plant": .string(Self.plant), "location": "Flower \"Room\" 1\n\u{1}é",
                                              "extra": ["z": 1, "a": [true, nil, 2.5]]]),
        ]
        for extra in [[:], ["license": "LIC-0002"], ["license": nil]] as [[String: JSONValue]] {
            let b = batch(events, extra: extra)
            let result = try validator.validate(b, now: now).get()
            let old = JSONValue.object(["user": b["user"]!, "license": .string(result.license), "events": b["events"]!])
                .serialized(sortedKeys: true)
            #expect(result.canonicalContent == old)
            #expect(result.events.map(\.canonicalJSON) == events.map { $0.serialized(sortedKeys: true) })
        }
    }

    @Test func scansAreAccepted() throws {
        let result = try validator.validate(batch([Self.event("plant.scan", ["plant": .string(Self.plant)]),
                                                   Self.event("package.scan", seq: 2, ["package": .string(Self.package), "location": "Vault"])]),
                                            now: now).get()
        #expect(result.events.allSatisfy { !$0.type.isUploaded })
    }

    @Test(arguments: ["1A4FF010000002200000000", "1A4FF01000000220000000011", "1a4ff0100000022000000001", "1A4FF01000000220000000-1"])
    func tagMustBe24UppercaseAlphanumerics(tag: String) {
        let errors = eventErrors(Self.event("plant.move", ["plant": .string(tag), "location": "Veg Room"]))
        #expect(errors == [EventError(seq: 1, field: "plant", message: "must be a Metrc tag: exactly 24 characters A-Z 0-9")])
    }

    @Test(arguments: [0.0, -1.0])
    func harvestWeightMustBePositive(weight: Double) {
        let e = Self.event("plant.harvest", ["plant": .string(Self.plant), "weight": .number(weight), "unit": "Grams", "drying_location": "D"])
        #expect(eventErrors(e) == [EventError(seq: 1, field: "weight", message: "must be greater than 0")])
    }

    @Test func wasteWeightMayBeZeroButNotNegative() {
        let e = Self.event("plant.destroy", ["plant": .string(Self.plant), "waste_weight": -0.5, "waste_unit": "Grams",
                                             "waste_method": "Grinder", "waste_material": "Soil", "reason": "Mold"])
        #expect(eventErrors(e).map(\.field) == ["waste_weight"])
    }

    @Test func adjustQuantityMustNotBeZero() {
        let e = Self.event("package.adjust", ["package": .string(Self.package), "quantity": 0, "unit": "Grams", "reason": "Drying"])
        #expect(eventErrors(e) == [EventError(seq: 1, field: "quantity", message: "must not be 0")])
    }

    @Test func numbersMustBeNumbers() {
        let e = Self.event("plant.harvest", ["plant": .string(Self.plant), "weight": "12", "unit": "Grams", "drying_location": "D"])
        #expect(eventErrors(e) == [EventError(seq: 1, field: "weight", message: "must be a number")])
    }

    @Test func missingFieldsAreEachNamed() {
        let e = Self.event("plant.destroy", ["plant": .string(Self.plant)])
        #expect(Set(eventErrors(e).map(\.field)) == ["waste_weight", "waste_unit", "waste_method", "waste_material", "reason"])
        #expect(eventErrors(e).allSatisfy { $0.message == "is missing" && $0.seq == 1 })
    }

    @Test func unknownTypeIsNamed() {
        let errors = eventErrors(Self.event("plant.teleport", ["plant": .string(Self.plant)]))
        #expect(errors.count == 1)
        #expect(errors.first?.field == "type")
        #expect(errors.first?.message.contains("plant.teleport") == true)
    }

    @Test(arguments: ["2026-11-28 14:03:11", "2026-11-28T14:03:11", "2026-02-30T10:00:00Z", "2026-11-28T25:00:00Z", "yesterday", "2026-11-28T14:03:11+0800"])
    func atMustBeRFC3339WithOffset(at: String) {
        let e = Self.event("plant.scan", ["plant": .string(Self.plant), "at": .string(at)])
        #expect(eventErrors(e).map(\.field) == ["at"])
    }

    @Test func atMayBeOldButNotMoreThanADayAhead() throws {
        let old = Self.event("plant.scan", ["plant": .string(Self.plant), "at": "2020-01-01T00:00:00Z"])
        #expect(rejection(batch([old])) == nil)
        let soon = Self.event("plant.scan", ["plant": .string(Self.plant), "at": "2026-11-29T11:59:00Z"])
        #expect(rejection(batch([soon])) == nil)
        let far = Self.event("plant.scan", ["plant": .string(Self.plant), "at": "2026-11-29T12:01:00Z"])
        #expect(eventErrors(far).first?.message == "is more than 24 hours ahead of the server's clock")
    }

    @Test func duplicateSeqIsAnError() {
        let b = batch([Self.harvest, Self.event("plant.scan", seq: 1, ["plant": .string(Self.plant)])])
        #expect(rejection(b)?.errors == [EventError(seq: 1, field: "seq", message: "is used by another event of this batch")])
    }

    @Test(arguments: [JSONValue.number(0), .number(-3), .number(1.5), .string("1"), .null])
    func seqMustBeAPositiveInteger(seq: JSONValue) {
        var fields: [String: JSONValue] = ["type": "plant.scan", "at": "2026-11-28T14:03:11Z", "plant": .string(Self.plant)]
        fields["seq"] = seq
        #expect(eventErrors(.object(fields)).map(\.field) == ["seq"])
    }

    @Test func eventThatIsNotAnObject() {
        #expect(eventErrors("hello").first?.field == "events[0]")
    }

    @Test func allProblemsAreReportedAndCounted() {
        let bad1 = Self.event("plant.harvest", seq: 3, ["plant": .string(Self.plant), "weight": 0, "unit": "Grams", "drying_location": "D"])
        let bad2 = Self.event("package.adjust", seq: 4, ["package": "short", "quantity": 0, "unit": "Grams", "reason": "R"])
        let r = rejection(batch([Self.harvest, bad1, bad2]))
        #expect(r?.code == .badEvents)
        #expect(r?.message == "2 events are invalid")
        #expect(r?.errors.count == 3)
        #expect(r?.errors.first == EventError(seq: 3, field: "weight", message: "must be greater than 0"))
    }

    @Test func envelopeRules() {
        #expect(rejection(["events": [Self.harvest], "user": "jane"])?.code == .badBatch)
        #expect(rejection(["id": 42, "events": [Self.harvest], "user": "jane"])?.message == "id must be a string")
        #expect(rejection(["id": "", "events": [Self.harvest], "user": "jane"])?.code == .badBatch)
        #expect(rejection(["id": .string(String(repeating: "x", count: 129)), "events": [Self.harvest], "user": "jane"])?.code == .badBatch)
        #expect(rejection(["id": "tab\there", "events": [Self.harvest], "user": "jane"])?.code == .badBatch)
        #expect(rejection(["id": "b", "events": [Self.harvest]])?.message == "user is missing")
        #expect(rejection(["id": "b", "events": [Self.harvest], "user": 7])?.code == .badBatch)
        #expect(rejection(["id": "b", "user": "jane"])?.message == "events is missing")
        #expect(rejection(["id": "b", "user": "jane", "events": "x"])?.message == "events must be an array")
        #expect(rejection(["id": "b", "user": "jane", "events": []])?.code == .badBatch)
    }

    @Test func tooManyEvents() {
        let events = (1...6).map { Self.event("plant.scan", seq: $0, ["plant": .string(Self.plant)]) }
        #expect(rejection(batch(events))?.code == .tooManyEvents)
        #expect(rejection(batch(Array(events.prefix(5)))) == nil)
    }

    @Test func licenses() throws {
        #expect(rejection(batch([Self.harvest], extra: ["license": "LIC-9999"]))?.code == .unknownLicense)
        #expect(rejection(batch([Self.harvest], extra: ["license": 5]))?.code == .badBatch)
        let ok = try validator.validate(batch([Self.harvest], extra: ["license": "LIC-0002"]), now: now).get()
        #expect(ok.license == "LIC-0002")
    }

    @Test func unknownFieldsAreKeptAndIgnored() throws {
        var fields = Self.harvest.objectValue!
        fields["firmware_note"] = "x"
        let ok = try validator.validate(batch([.object(fields)], extra: ["extra": true]), now: now).get()
        #expect(ok.events[0].fields["firmware_note"] == "x")
    }

    @Test func canonicalContentIgnoresKeyOrderAndNumberSpelling() throws {
        let a = try #require(JSONValue.parse(Array(#"{"id":"b","user":"jane","events":[{"seq":1,"type":"plant.scan","at":"2026-11-28T14:03:11Z","plant":"1A4FF0100000022000000001"}]}"#.utf8))?.objectValue)
        let b = try #require(JSONValue.parse(Array(#"{"events":[{"plant":"1A4FF0100000022000000001","at":"2026-11-28T14:03:11Z","type":"plant.scan","seq":1.0}],"user":"jane","id":"b"}"#.utf8))?.objectValue)
        let ca = try validator.validate(a, now: now).get().canonicalContent
        let cb = try validator.validate(b, now: now).get().canonicalContent
        #expect(ca == cb)
        let c = try validator.validate(batch([Self.harvest]), now: now).get().canonicalContent
        #expect(ca != c)
    }

    // MARK: Manicure and waste

    static let manicure = event("plant.manicure", ["plant": .string(plant), "weight": 40.5, "unit": "Grams", "drying_location": "Drying Room"])
    static let otherPlant = "1A4FF0100000022000000002"

    static func waste(_ targets: [String: JSONValue]) -> JSONValue {
        var fields: [String: JSONValue] = ["waste_weight": 3, "waste_unit": "Grams", "waste_method": "Compost", "waste_material": "Soil",
                                           "reason": "Trim"]
        for (k, v) in targets { fields[k] = v }
        return event("plant.waste", fields)
    }

    @Test func manicureAndWasteAreAccepted() throws {
        let events: [JSONValue] = [
            Self.manicure,
            Self.event("plant.manicure", seq: 2, ["plant": .string(Self.plant), "weight": 1, "unit": "kilograms", "drying_location": "Drying Room",
                                                  "drying_sublocation": "Rack 1", "harvest_name": "M-1", "plant_count": 3, "patient_license": "P-1"]),
            Self.event("plant.waste", seq: 3, ["plants": [.string(Self.plant), .string(Self.otherPlant)], "waste_weight": 3, "waste_unit": "Grams",
                                               "waste_method": "Compost", "waste_material": "Soil", "reason": "Trim", "note": "leaves"]),
            Self.event("plant.waste", seq: 4, ["location": "Flower Room 1", "sublocation": "Bench 1", "waste_weight": 3, "waste_unit": "Grams",
                                               "waste_method": "Compost", "waste_material": "Soil", "reason": "Trim"]),
        ]
        let result = try BatchValidator(maxBatchEvents: 10, defaultLicense: "LIC-0001", licenses: []).validate(batch(events), now: now).get()
        #expect(result.events.map(\.type) == [.plantManicure, .plantManicure, .plantWaste, .plantWaste])
        #expect(result.events[0].tags == [Self.plant])
        #expect(result.events[2].tags == [Self.plant, Self.otherPlant].sorted())
        #expect(result.events[2].tag == [Self.plant, Self.otherPlant].sorted()[0])
        #expect(result.events[3].tags == ["location:Flower Room 1"])
    }

    @Test func manicureFieldRules() {
        #expect(eventErrors(Self.event("plant.manicure", ["plant": .string(Self.plant), "weight": 0, "unit": "Grams", "drying_location": "D"]))
            .map(\.field) == ["weight"])
        let litres = eventErrors(Self.event("plant.manicure", ["plant": .string(Self.plant), "weight": 1, "unit": "Liters", "drying_location": "D"]))
        #expect(litres.map(\.field) == ["unit"])
        #expect(litres.first?.message.contains("not a unit of weight") == true)
        #expect(eventErrors(Self.event("plant.manicure", ["plant": .string(Self.plant), "weight": 1, "unit": "Grams", "drying_location": "D",
                                                          "plant_count": 0])).map(\.field) == ["plant_count"])
        #expect(eventErrors(Self.event("plant.manicure", ["plant": .string(Self.plant), "weight": 1, "unit": "Grams", "drying_location": "D",
                                                          "plant_count": 1.5])).map(\.field) == ["plant_count"])
        #expect(Set(eventErrors(Self.event("plant.manicure", [:])).map(\.field)) == ["plant", "weight", "unit", "drying_location"])
    }

    @Test func wasteNamesPlantsOrARoomNeverBoth() {
        #expect(eventErrors(Self.waste([:])).map(\.field) == ["plants"])
        #expect(eventErrors(Self.waste(["plants": [.string(Self.plant)], "location": "Flower Room 1"])).map(\.field) == ["location"])
        #expect(eventErrors(Self.waste(["plants": []])).map(\.field) == ["plants"])
        #expect(eventErrors(Self.waste(["plants": .array(Array(repeating: .string(Self.plant), count: 101))])).map(\.field) == ["plants"])
        #expect(eventErrors(Self.waste(["plants": [.string(Self.plant), "SHORT"]])).map(\.field) == ["plants[1]"])
        #expect(eventErrors(Self.waste(["plants": .string(Self.plant)])).map(\.field) == ["plants"])
        #expect(eventErrors(Self.waste(["location": ""])).map(\.field) == ["location"])
        #expect(eventErrors(Self.waste(["plants": [.string(Self.plant)], "waste_weight": 0, "waste_unit": "Each"])).map(\.field).sorted()
            == ["waste_unit", "waste_weight"])
    }
}
