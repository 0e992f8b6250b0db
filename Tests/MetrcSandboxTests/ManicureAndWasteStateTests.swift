import Foundation
import Testing
@testable import MetrcSandbox

/// Manicure and plant waste as pure state logic (no HTTP): what is checked, what an accepted object changes.
@Suite("Pure parts: manicure and plant waste")
struct ManicureAndWasteStateTests {
    let now = MetrcTimestamp.parse("2025-07-01T12:00:00Z")!
    var context: WriteContext { WriteContext(license: SandboxDemo.license, userName: "jane", now: now) }

    func manicure(_ tag: String, weight: JSONValue = 10, unit: JSONValue = "Grams", location: JSONValue = "Drying Room",
                  sublocation: JSONValue = nil, harvestName: JSONValue = nil, plantCount: JSONValue = nil,
                  date: JSONValue = "2025-06-30") -> JSONValue {
        ["Plant": .string(tag), "Weight": weight, "UnitOfWeight": unit, "DryingLocation": location,
         "DryingSublocation": sublocation, "HarvestName": harvestName, "PlantCount": plantCount, "ActualDate": date]
    }

    func waste(_ labels: JSONValue, location: JSONValue = nil, sublocation: JSONValue = nil, method: JSONValue = "Compost",
               material: JSONValue = "Soil", weight: JSONValue = 5, unit: JSONValue = "Grams",
               reason: JSONValue = "Pests", note: JSONValue = nil, date: JSONValue = "2025-06-30") -> JSONValue {
        ["PlantLabels": labels, "LocationName": location, "SublocationName": sublocation, "WasteMethodName": method,
         "MixedMaterial": material, "WasteWeight": weight, "UnitOfMeasureName": unit, "ReasonName": reason,
         "Note": note, "WasteDate": date]
    }

    /// The messages of every row of a rejected outcome (and a recorded issue when it was applied).
    func rejections(_ outcome: WriteOutcome) -> [Int: [String]] {
        guard case .rejected(let errors) = outcome else {
            Issue.record("expected a rejection, got \(outcome)")
            return [:]
        }
        return Dictionary(grouping: errors, by: \.row).mapValues { $0.map(\.message) }
    }

    @Test func manicureKeepsThePlantAndCountsEveryObject() throws {
        var state = SandboxState.demo()
        let vegetative = SandboxDemo.vegetativePlantTag(1)
        let flowering = SandboxDemo.floweringPlantTag(1)
        // The same plant twice in one request is two manicures (a POST acts per object); an ounce is converted.
        let outcome = state.apply(.manicurePlants, objects: [
            manicure(vegetative), manicure(vegetative, weight: 1, unit: "Ounces"),
            manicure(flowering, weight: 4, harvestName: "Trim A", plantCount: 3),
        ], context: context)
        guard case .applied(let ids) = outcome else {
            Issue.record("expected success, got \(outcome)")
            return
        }
        #expect(ids == [10_001, 10_001, 10_151])
        let plant = try #require(state.plant(label: vegetative, license: SandboxDemo.license))
        #expect(plant.state == .tracked)
        #expect(plant.growthPhase == .vegetative)
        #expect(plant.harvestCount == 2)
        #expect(plant.harvestedWetWeight == 38.349523)
        #expect(plant.harvestedUnitOfWeight == "Grams")
        #expect(plant.harvestedDate == nil)
        #expect(plant.lastModified == now)
        let generated = try #require(state.harvests.first { $0.name == "2025-06-30-Drying Room-M" })
        #expect(generated.harvestType == .manicure)
        #expect(generated.totalWetWeight == 38.349523)
        #expect(generated.unitOfWeight == "Grams")
        #expect(generated.plantLabels == [vegetative])
        #expect(plant.harvestId == generated.id)
        // Still listed as vegetative: a manicure is not a harvest of the whole plant.
        let jane = try #require(state.user(named: "jane"))
        let listed = try state.read(.vegetativePlants, license: SandboxDemo.license, user: jane, query: QueryParameters())
        #expect(listed[field: "Data"]?.arrayValue?.contains { $0[field: "Label"]?.stringValue == vegetative } == true)

        // A whole-plant harvest after a manicure adds to the same counters and may join the manicure's batch.
        let harvest = state.apply(.harvestPlants, objects: [
            ["Plant": .string(flowering), "Weight": 100, "UnitOfWeight": "Grams", "DryingLocation": "Drying Room",
             "HarvestName": "Trim A", "ActualDate": "2025-06-30"],
        ], context: context)
        #expect(harvest == .applied(ids: [10_151]))
        let harvested = try #require(state.plant(label: flowering, license: SandboxDemo.license))
        #expect(harvested.state == .harvested)
        #expect(harvested.harvestCount == 2)
        #expect(harvested.harvestedWetWeight == 104)
        let trim = try #require(state.harvests.first { $0.name == "Trim A" })
        #expect(trim.harvestType == .manicure)
        #expect(trim.totalWetWeight == 104)
        #expect(trim.plantLabels == [flowering])
        // A harvested plant cannot be manicured any more.
        let late = rejections(state.apply(.manicurePlants, objects: [manicure(flowering)], context: context))
        #expect(late[0]?.contains { $0.contains("already been harvested") } == true)
    }

    @Test func manicureChecksEveryField() {
        var state = SandboxState.demo()
        state.plants[2].state = .destroyed
        let before = state
        let tag = SandboxDemo.vegetativePlantTag(2)
        let rows = rejections(state.apply(.manicurePlants, objects: [
            manicure(tag),
            manicure("ABCDEF012345670000000001"),
            manicure("not-a-tag"),
            manicure(SandboxDemo.plantTag(3)),
            manicure(tag, weight: 0),
            manicure(tag, weight: "12"),
            manicure(tag, unit: "Each"),
            manicure(tag, unit: "Furlongs"),
            manicure(tag, location: "Attic"),
            manicure(tag, sublocation: "Shelf Z"),
            manicure(tag, plantCount: 0),
            manicure(tag, plantCount: 1.5),
            manicure(tag, date: "2025/06/30"),
            manicure(tag, date: "2025-07-05"),
            manicure(tag, date: "2025-02-01"),
            ["Weight": 1, "UnitOfWeight": "Grams", "DryingLocation": "Drying Room", "ActualDate": "2025-06-30"],
            ["Plant": .string(tag)],
            manicure(SandboxDemo.secondLicensePlantTag(1)),
        ], context: context))
        #expect(rows[0] == nil)
        let expected: [Int: String] = [
            1: "was not found at facility LIC-0001", 2: "Tag not-a-tag is not valid", 3: "has been destroyed",
            4: "Weight must be greater than 0", 5: "Weight must be a number", 6: "Each is not a weight unit",
            7: "Furlongs is not a known unit", 8: "DryingLocation Attic is not a location",
            9: "DryingSublocation Shelf Z is not a sublocation", 10: "PlantCount must be at least 1",
            11: "PlantCount must be a whole number", 12: "not a valid date", 13: "cannot be in the future",
            14: "before plant", 15: "Plant is required", 16: "Weight is required",
            17: "was not found at facility LIC-0001",
        ]
        for (row, text) in expected {
            #expect(rows[row]?.contains { $0.contains(text) } == true, "row \(row): \(rows[row] ?? [])")
        }
        let missing = Set(rows[16] ?? [])
        #expect(missing.contains("UnitOfWeight is required.") && missing.contains("DryingLocation is required.")
            && missing.contains("ActualDate is required."))
        // All or nothing: row 0 was valid, yet nothing changed.
        #expect(state == before)
    }

    @Test func wasteRecordsOneEntryPerObjectAndThePlantsStay() throws {
        var state = SandboxState.demo()
        let first = SandboxDemo.vegetativePlantTag(1)
        let second = SandboxDemo.floweringPlantTag(2)
        let outcome = state.apply(.wastePlants, objects: [
            waste([.string(first), .string(second)], location: "veg room", sublocation: "bench 1", reason: "Damage",
                  note: "Broken stems"),
            waste([], location: "Flower Room 1", weight: 1, unit: "Pounds", reason: "Mold"),
            waste([.string(first)], weight: nil, unit: nil, reason: "Male Plants"),
        ], context: context)
        guard case .applied(let ids) = outcome else {
            Issue.record("expected success, got \(outcome)")
            return
        }
        #expect(ids.count == 3 && Set(ids).count == 3)
        #expect(state.plantWaste.map(\.id) == ids)
        let both = state.plantWaste[0]
        #expect(both.plantLabels == [first, second])
        #expect(both.location == "Veg Room")
        #expect(both.sublocation == "Bench 1")
        #expect(both.wasteMethod == "Compost")
        #expect(both.mixedMaterial == "Soil")
        #expect(both.wasteWeight == 5)
        #expect(both.unitOfMeasure == "Grams")
        #expect(both.reason == "Damage")
        #expect(both.note == "Broken stems")
        #expect(both.wasteDate == MetrcDay("2025-06-30"))
        #expect(both.recordedByUserName == "jane")
        #expect(both.lastModified == now)
        let room = state.plantWaste[1]
        #expect(room.plantLabels.isEmpty && room.location == "Flower Room 1")
        #expect(room.wasteWeight == 1 && room.unitOfMeasure == "Pounds")
        #expect(state.plantWaste[2].wasteWeight == nil && state.plantWaste[2].unitOfMeasure == nil)
        for tag in [first, second] {
            let plant = try #require(state.plant(label: tag, license: SandboxDemo.license))
            #expect(plant.state == .tracked)
            #expect(plant.lastModified == now)
            #expect(plant.timesHarvested == 0)
        }
        // Plants not named are untouched.
        #expect(state.plant(label: SandboxDemo.plantTag(3), license: SandboxDemo.license)?.lastModified
            == SandboxDemo.baseDate.addingTimeInterval(3 * 3600))
    }

    @Test func wasteChecksEveryField() {
        var state = SandboxState.demo()
        state.plants[2].state = .destroyed
        let before = state
        let tag = JSONValue.string(SandboxDemo.vegetativePlantTag(2))
        let tooMany = JSONValue.array((1...101).map { .string(SandboxDemo.plantTag($0)) })
        let rows = rejections(state.apply(.wastePlants, objects: [
            waste([tag]),
            waste(["ABCDEF012345670000000001"]),
            waste(["bad tag"]),
            waste([.string(SandboxDemo.plantTag(3))]),
            waste([tag, tag]),
            waste(tooMany),
            waste([]),
            waste(nil),
            waste([tag], location: "Attic"),
            waste([tag], sublocation: "Shelf Z"),
            waste([tag], method: "Burying"),
            waste([tag], material: nil),
            waste([tag], reason: "Boredom"),
            waste([tag], reason: "Other"),
            waste([tag], weight: nil, unit: nil, reason: "Contamination"),
            waste([tag], weight: 0),
            waste([tag], weight: -3),
            waste([tag], unit: "Liters"),
            waste([tag], unit: nil),
            waste([tag], date: "30/06/2025"),
            waste([tag], date: "2025-07-09"),
            waste([tag], date: "2025-02-28"),
            waste("1A4FF0100000022000000001"),
            waste([.string(SandboxDemo.secondLicensePlantTag(1))]),
        ], context: context))
        #expect(rows[0] == nil)
        let expected: [Int: String] = [
            1: "was not found at facility LIC-0001", 2: "Tag bad tag is not valid", 3: "has been destroyed",
            4: "named more than once", 5: "at most 100", 6: "PlantLabels or LocationName is required",
            7: "PlantLabels or LocationName is required", 8: "LocationName Attic is not a location",
            9: "SublocationName Shelf Z is not a sublocation", 10: "WasteMethodName Burying is not a known waste method",
            11: "MixedMaterial is required", 12: "ReasonName Boredom is not a known waste reason",
            13: "Note is required for waste reason Other",
            14: "WasteWeight greater than 0 is required for waste reason Contamination",
            15: "WasteWeight must be greater than 0", 16: "WasteWeight must be greater than 0",
            17: "Liters is not a weight unit", 18: "UnitOfMeasureName is required when WasteWeight is given",
            19: "not a valid date", 20: "cannot be in the future", 21: "before plant",
            22: "PlantLabels must be an array of strings", 23: "was not found at facility LIC-0001",
        ]
        for (row, text) in expected {
            #expect(rows[row]?.contains { $0.contains(text) } == true, "row \(row): \(rows[row] ?? [])")
        }
        #expect(Set(rows.keys) == Set(1...23))
        #expect(state == before)
    }

    @Test func stateFilesKeepTheNewRecordsAndOldOnesStillLoad() throws {
        var state = SandboxState.demo()
        let tag = SandboxDemo.vegetativePlantTag(4)
        #expect(state.apply(.manicurePlants, objects: [manicure(tag)], context: context) == .applied(ids: [10_004]))
        guard case .applied = state.apply(.wastePlants, objects: [waste([.string(tag)])], context: context) else {
            Issue.record("waste should be applied")
            return
        }
        let decoded = try SandboxState.decode(json: try state.encodedJSON())
        #expect(decoded == state)
        #expect(decoded.plantWaste.count == 1)
        // A state file from before manicures: no harvestCount, no harvestType, no plantWaste.
        let old = try SandboxState.decode(json: Data("""
            {"harvests": [{"id": 7, "license": "L", "name": "H", "dryingLocation": "D", "harvestStartDate": "2025-06-01",
              "plantLabels": ["P"], "totalWetWeight": 3, "unitOfWeight": "Grams", "lastModified": "2025-06-01T00:00:00Z"}],
             "plants": [{"id": 1, "license": "L", "label": "P", "strain": "S", "location": "D", "growthPhase": "Flowering",
              "state": "Harvested", "plantedDate": "2025-03-01", "harvestId": 7, "lastModified": "2025-06-01T00:00:00Z"}]}
            """.utf8))
        #expect(old.plantWaste.isEmpty)
        #expect(old.plants[0].harvestCount == nil)
        #expect(old.plants[0].timesHarvested == 1)
        #expect(old.json(harvest: old.harvests[0])[field: "HarvestType"]?.stringValue == "WholePlant")
        #expect(old.json(plant: old.plants[0])[field: "HarvestCount"]?.intValue == 1)
    }

    @Test func eachWriteNeedsItsOwnPermission() {
        var state = SandboxState.demo()
        let trimmer = SandboxUser(name: "trimmer", key: "trimmer-key",
                                  facilities: [SandboxDemo.license: [.view, .manicurePlants]])
        state.users.append(trimmer)
        let credentials = BasicCredentials(vendorKey: SandboxDemo.vendorKey, userKey: "trimmer-key")
        func allowed(_ action: SandboxAction) -> Bool {
            if case .allowed = state.authorize(credentials, license: SandboxDemo.license, permission: action.permission,
                                               now: now) { return true }
            return false
        }
        #expect(allowed(.manicurePlants))
        #expect(!allowed(.wastePlants))
        #expect(!allowed(.harvestPlants))
        #expect(SandboxAction.manicurePlants.permission == .manicurePlants)
        #expect(SandboxAction.wastePlants.permission == .wastePlants)
        // The demo's full users have both; the viewer neither.
        #expect(state.user(named: "jane")?.may(.wastePlants, at: SandboxDemo.license) == true)
        #expect(state.user(named: "owner")?.may(.manicurePlants, at: SandboxDemo.secondLicense) == true)
        #expect(state.user(named: "viewer")?.may(.manicurePlants, at: SandboxDemo.license) == false)
    }

    @Test func routesForTheNewWritesAndTheWasteList() throws {
        #expect(try MetrcRoute.resolve(method: "POST", path: "/plants/v2/manicure").get() == .write(.manicurePlants))
        #expect(try MetrcRoute.resolve(method: "POST", path: "/Plants/V2/Waste/").get() == .write(.wastePlants))
        #expect(try MetrcRoute.resolve(method: "GET", path: "/plants/v2/waste").get() == .plantWaste)
        #expect(MetrcRoute.plantWaste.permission == .view)
        #expect(MetrcRoute.plantWaste.requiresLicense)
        for (method, path) in [("GET", "/plants/v2/manicure"), ("PUT", "/plants/v2/manicure"), ("DELETE", "/plants/v2/waste")] {
            if case .failure(let error) = MetrcRoute.resolve(method: method, path: path) {
                #expect(error.status == 405, "\(method) \(path)")
            } else {
                Issue.record("\(method) \(path) must be refused")
            }
        }
    }
}
