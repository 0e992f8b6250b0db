import Foundation
import Testing
@testable import MetrcSandbox

/// The indexes behind plant, package and harvest lookups (`SandboxRecords`): after every kind of change they find
/// exactly what a scan from the start of the arrays finds, and writes change the records in place.
@Suite("Record indexes")
struct RecordIndexTests {
    let now = MetrcTimestamp.parse("2025-07-01T12:00:00Z")!
    var context: WriteContext { WriteContext(license: SandboxDemo.license, userName: "jane", now: now) }
    static let licenses = [SandboxDemo.license, SandboxDemo.secondLicense, "LIC-9999"]

    /// Every lookup the indexes answer, against a brute-force scan: each record's tag and id at every license,
    /// tags and ids no record has, every harvest name, `nextId` as the max over every list.
    func expectIndexMatchesScan(_ state: SandboxState, indexed: Bool = true,
                                sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(state.records.isIndexed == indexed, "index state", sourceLocation: sourceLocation)
        let records = state.records
        var labels = Set(state.plants.map(\.label)).union(state.packages.map(\.label))
        labels.formUnion(["1A4FF0999999999999999999", "NOTATAG"])
        var ids = Set(state.plants.map(\.id)).union(state.packages.map(\.id))
        ids.formUnion([0, -1, 987_654_321])
        var mismatches: [String] = []
        for license in Self.licenses {
            for label in labels {
                let plant = state.plants.firstIndex { $0.license == license && $0.label == label }
                if records.plantPosition(label: label, license: license) != plant { mismatches.append("plant \(label) at \(license)") }
                let package = state.packages.firstIndex { $0.license == license && $0.label == label }
                if records.packagePosition(label: label, license: license) != package {
                    mismatches.append("package \(label) at \(license)")
                }
                if state.plant(label: label, license: license) != plant.map({ state.plants[$0] }) {
                    mismatches.append("plant(label:) \(label) at \(license)")
                }
                if state.package(label: label, license: license) != package.map({ state.packages[$0] }) {
                    mismatches.append("package(label:) \(label) at \(license)")
                }
            }
            for id in ids {
                let plant = state.plants.firstIndex { $0.license == license && $0.id == id }
                if records.plantPosition(id: id, license: license) != plant { mismatches.append("plant id \(id) at \(license)") }
                let package = state.packages.firstIndex { $0.license == license && $0.id == id }
                if records.packagePosition(id: id, license: license) != package {
                    mismatches.append("package id \(id) at \(license)")
                }
            }
            for name in Set(state.harvests.map(\.name)).union(["No Such Harvest"]) {
                let harvest = state.harvests.firstIndex { $0.license == license && $0.name == name }
                if records.harvestPosition(name: name, license: license) != harvest {
                    mismatches.append("harvest \(name) at \(license)")
                }
            }
        }
        for label in labels {
            let held = state.plants.contains { $0.label == label } || state.packages.contains { $0.label == label }
            if records.holdsTag(label) != held { mismatches.append("holdsTag \(label)") }
        }
        let allIds = state.locations.map(\.id) + state.sublocations.map(\.id) + state.strains.map(\.id)
            + state.items.map(\.id) + state.plants.map(\.id) + state.packages.map(\.id) + state.harvests.map(\.id)
            + state.adjustments.map(\.id) + state.plantWaste.map(\.id) + state.facilities.map(\.id)
        if state.nextId != (allIds.max() ?? 0) + 1 { mismatches.append("nextId \(state.nextId)") }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))", sourceLocation: sourceLocation)
    }

    func applied(_ state: inout SandboxState, _ action: SandboxAction, _ objects: [JSONValue],
                 sourceLocation: SourceLocation = #_sourceLocation) -> [Int] {
        let outcome = state.apply(action, objects: objects, context: context)
        guard case .applied(let ids) = outcome else {
            Issue.record("expected \(action) to be applied, got \(outcome)", sourceLocation: sourceLocation)
            return []
        }
        return ids
    }

    func isRejected(_ outcome: WriteOutcome) -> Bool {
        if case .rejected = outcome { true } else { false }
    }

    func move(_ label: String, to location: String) -> JSONValue {
        ["Label": .string(label), "Location": .string(location), "ActualDate": "2025-06-30"]
    }

    func harvest(_ label: String, name: JSONValue = nil) -> JSONValue {
        ["Plant": .string(label), "Weight": 10, "UnitOfWeight": "Grams", "DryingLocation": "Drying Room",
         "HarvestName": name, "ActualDate": "2025-06-30"]
    }

    @Test func everyKindOfChangeKeepsTheIndexRight() throws {
        var state = SandboxState.demo()
        expectIndexMatchesScan(state)

        // Moves by tag and by id, at both facilities.
        _ = applied(&state, .movePlants, [move(SandboxDemo.plantTag(1), to: "Flower Room 1"),
                                          ["Id": 10_002, "Location": "Quarantine", "ActualDate": "2025-06-30"]])
        #expect(state.plant(label: SandboxDemo.plantTag(2), license: SandboxDemo.license)?.location == "Quarantine")
        let second = WriteContext(license: SandboxDemo.secondLicense, userName: "jane", now: now)
        #expect(state.apply(.movePlants, objects: [move(SandboxDemo.secondLicensePlantTag(3), to: "Vault")],
                            context: second) == .applied(ids: [20_003]))
        _ = applied(&state, .movePackages, [["Label": .string(SandboxDemo.packageTag(9)), "Location": "Quarantine",
                                             "MoveDate": "2025-06-30"]])
        expectIndexMatchesScan(state)

        // Harvests: a new batch, then into it again; a manicure; destroy; waste; adjustments (new records).
        let flowering = (1...3).map { SandboxDemo.floweringPlantTag($0) }
        _ = applied(&state, .harvestPlants, [harvest(flowering[0], name: "Batch X"), harvest(flowering[1], name: "Batch X"),
                                             harvest(flowering[2])])
        _ = applied(&state, .manicurePlants, [harvest(SandboxDemo.vegetativePlantTag(5), name: "Batch X")])
        _ = applied(&state, .destroyPlants, [["Label": .string(SandboxDemo.plantTag(6)), "WasteMethodName": "Compost",
                                              "WasteMaterialMixed": "Soil", "WasteReasonName": "Male Plants",
                                              "ActualDate": "2025-06-30"]])
        _ = applied(&state, .wastePlants, [["PlantLabels": [.string(SandboxDemo.plantTag(7))], "WasteMethodName": "Compost",
                                            "MixedMaterial": "Soil", "ReasonName": "Pests", "WasteDate": "2025-06-30"]])
        _ = applied(&state, .adjustPackages, [["Label": .string(SandboxDemo.packageTag(1)), "Quantity": -1,
                                               "UnitOfMeasure": "Grams", "AdjustmentReason": "Drying",
                                               "AdjustmentDate": "2025-06-30"]])
        #expect(state.harvests.filter { $0.name == "Batch X" }.count == 1)
        expectIndexMatchesScan(state)

        // Records added by hand, finishing, seeding.
        _ = try state.addPlant(license: SandboxDemo.license, label: "1A4FF0700000000000000001", strain: "OG Kush",
                               location: "Veg Room", phase: .vegetative, now: now)
        _ = try state.addPackage(license: SandboxDemo.secondLicense, label: "1A4FF0700000000000000002",
                                 item: "OG Kush Buds", quantity: 5, location: "Vault", now: now)
        _ = try state.finishPackage(license: SandboxDemo.license, label: SandboxDemo.packageTag(2), now: now)
        let seeded = try state.seed(license: SandboxDemo.secondLicense, plants: 30, packages: 20, now: now)
        expectIndexMatchesScan(state)

        // Writes find the new records by tag and by id.
        let newPlant = try #require(state.plant(label: seeded.plantLabels[4], license: SandboxDemo.secondLicense))
        #expect(state.apply(.movePlants, objects: [["Id": .int(newPlant.id), "Location": "Quarantine",
                                                     "ActualDate": "2025-06-30"]], context: second)
            == .applied(ids: [newPlant.id]))
        #expect(state.plants[state.plants.count - 30 + 4].location == "Quarantine")
        // A finished package is found (and refused), not missed.
        let refused = state.apply(.movePackages, objects: [["Label": .string(SandboxDemo.packageTag(2)),
                                                             "Location": "Vault", "MoveDate": "2025-06-30"]],
                                  context: context)
        #expect(refused == .rejected([RowError(row: 0, message: "Package \(SandboxDemo.packageTag(2)) is finished and cannot be changed.")]))
        expectIndexMatchesScan(state)
    }

    @Test func aRejectedWriteTakesBackEverythingItDid() throws {
        var state = SandboxState.demo()
        _ = try state.seed(license: SandboxDemo.license, plants: 50, packages: 50, now: now)
        let before = state
        // Rows 0 and 1 make a new batch and harvest two plants into it before row 2 fails: all of it must go.
        let flowering = SandboxDemo.floweringPlantTag(8)
        let outcome = state.apply(.harvestPlants, objects: [
            harvest(flowering, name: "Doomed Batch"), harvest(SandboxDemo.floweringPlantTag(9), name: "Doomed Batch"),
            harvest("1A4FF0999999999999999999"),
        ], context: context)
        guard case .rejected = outcome else {
            Issue.record("expected a rejection, got \(outcome)")
            return
        }
        #expect(state == before)
        #expect(state.records.harvestPosition(name: "Doomed Batch", license: SandboxDemo.license) == nil)
        expectIndexMatchesScan(state)
        let adjust: JSONValue = ["Label": .string(SandboxDemo.packageTag(1)), "Quantity": -1, "UnitOfMeasure": "Grams",
                                 "AdjustmentReason": "Drying", "AdjustmentDate": "2025-06-30"]
        #expect(isRejected(state.apply(.adjustPackages, objects: [adjust, adjust, ["Label": "NOTATAG"]], context: context)))
        #expect(state == before)
        expectIndexMatchesScan(state)
        // The ids a rejected write would have used are free again.
        let ids = applied(&state, .adjustPackages, [adjust])
        #expect(ids == [before.nextId])

        // Records added by hand, all or nothing: the second plant's tag is taken, so the first is taken back too.
        let afterAdjust = state
        #expect(throws: MetrcError.badRequest("Tag \(SandboxDemo.plantTag(1)) is already in use.")) {
            try state.allOrNothing { (state: inout SandboxState) throws(MetrcError) in
                _ = try state.addPlant(license: SandboxDemo.license, label: "1A4FF0700000000000000009", strain: "OG Kush",
                                       location: "Veg Room", phase: .vegetative, now: now)
                _ = try state.addPlant(license: SandboxDemo.license, label: SandboxDemo.plantTag(1), strain: "OG Kush",
                                       location: "Veg Room", phase: .vegetative, now: now)
            }
        }
        #expect(state == afterAdjust)
        #expect(!state.records.holdsTag("1A4FF0700000000000000009"))
        expectIndexMatchesScan(state)
    }

    /// Changes through the public arrays (tests and state files do that) may move tags and ids: lookups scan until
    /// the next write rebuilds the index, and are right all along.
    @Test func changesThroughThePublicArraysRebuildTheIndex() throws {
        var state = SandboxState.demo()
        let relabelled = "1A4FF0788888888888888888"
        state.plants[3].label = relabelled
        state.packages[5].id = 77_777
        // The same tag at two facilities, and twice at one (a hand-made state file): the first one wins, as in a scan.
        var copy = state.plants[10]
        copy.license = SandboxDemo.secondLicense
        state.plants.append(copy)
        copy.license = SandboxDemo.license
        copy.id = 99_001
        state.plants.append(copy)
        expectIndexMatchesScan(state, indexed: false)
        #expect(state.plant(label: relabelled, license: SandboxDemo.license)?.id == 10_004)
        #expect(state.plant(label: SandboxDemo.plantTag(4), license: SandboxDemo.license) == nil)

        _ = applied(&state, .movePlants, [move(relabelled, to: "Vault"), move(copy.label, to: "Vault")])
        expectIndexMatchesScan(state)
        #expect(state.plants[3].location == "Vault")
        #expect(state.plants[10].location == "Vault")
        #expect(state.plants[state.plants.count - 1].location == copy.location)
        #expect(state.apply(.movePlants, objects: [move(copy.label, to: "Vault")],
                            context: WriteContext(license: SandboxDemo.secondLicense, userName: "jane", now: now))
            == .applied(ids: [10_011]))
        #expect(state.plants[state.plants.count - 2].location == "Vault")
        #expect(state.packages[5].id == 77_777)
        #expect(state.records.packagePosition(id: 77_777, license: SandboxDemo.license) == 5)
        expectIndexMatchesScan(state)

        state.harvests = []
        state.adjustments.append(SandboxAdjustment(
            id: 500_000, license: SandboxDemo.license, packageId: 1, packageLabel: "X", quantity: 1, unitOfMeasure: "Grams",
            reason: "Drying", adjustmentDate: MetrcDay("2025-06-01")!, adjustedByUserName: "jane", lastModified: now))
        expectIndexMatchesScan(state, indexed: false)
        state.indexIfNeeded()
        expectIndexMatchesScan(state)
        #expect(state.nextId == 500_001)
    }

    @Test func decodedStatesAreIndexedAndEncodeOnlyTheData() throws {
        var state = SandboxState.demo()
        _ = try state.seed(license: SandboxDemo.secondLicense, plants: 40, packages: 40, now: now)
        _ = applied(&state, .harvestPlants, [harvest(SandboxDemo.floweringPlantTag(1), name: "Batch Y")])
        _ = applied(&state, .adjustPackages, [["Label": .string(SandboxDemo.packageTag(1)), "Quantity": -1,
                                               "UnitOfMeasure": "Grams", "AdjustmentReason": "Drying",
                                               "AdjustmentDate": "2025-06-30"]])
        let json = try state.encodedJSON()
        let decoded = try SandboxState.decode(json: json)
        #expect(decoded == state)
        expectIndexMatchesScan(decoded)
        // The file holds the sixteen lists and nothing else, byte for byte what the lists alone encode to.
        let object = try #require(JSONValue.parse(Array(json))?.objectValue)
        #expect(Set(object.keys) == ["vendorKeys", "users", "facilities", "unitsOfMeasure", "wasteMethods", "wasteReasons",
                                     "adjustmentReasons", "locations", "sublocations", "strains", "items", "plants",
                                     "packages", "harvests", "adjustments", "plantWaste"])
        let rebuilt = SandboxState(
            vendorKeys: state.vendorKeys, users: state.users, facilities: state.facilities,
            unitsOfMeasure: state.unitsOfMeasure, wasteMethods: state.wasteMethods, wasteReasons: state.wasteReasons,
            adjustmentReasons: state.adjustmentReasons, locations: state.locations, sublocations: state.sublocations,
            strains: state.strains, items: state.items, plants: state.plants, packages: state.packages,
            harvests: state.harvests, adjustments: state.adjustments, plantWaste: state.plantWaste)
        #expect(try rebuilt.encodedJSON() == json)
        // Equality is about the data: an unindexed copy equals the indexed one.
        var unindexed = decoded
        unindexed.plants[0] = unindexed.plants[0]
        #expect(!unindexed.records.isIndexed)
        #expect(unindexed == state)
        // Writes to the decoded state find what they name.
        var written = decoded
        _ = applied(&written, .movePlants, [move(SandboxDemo.plantTag(20), to: "Vault")])
        #expect(written.plant(label: SandboxDemo.plantTag(20), license: SandboxDemo.license)?.location == "Vault")
        expectIndexMatchesScan(written)
    }

    /// A write changes the record arrays in place: no copy of them (a copy of a million records was most of the
    /// cost of a write), whether it is applied or rejected.
    @Test func writesDoNotCopyTheRecordArrays() throws {
        var state = SandboxState.demo()
        _ = try state.seed(license: SandboxDemo.license, plants: 2000, packages: 2000, now: now)
        func buffers(_ state: SandboxState) -> [UInt] {
            [state.plants.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) },
             state.packages.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }]
        }
        let before = buffers(state)
        _ = applied(&state, .movePlants, (1...100).map { move(SandboxDemo.plantTag($0), to: "Vault") })
        _ = applied(&state, .movePackages, (1...100).map {
            ["Label": .string(SandboxDemo.packageTag($0)), "Location": "Quarantine", "MoveDate": "2025-06-30"]
        })
        #expect(isRejected(state.apply(.movePlants, objects: [move(SandboxDemo.plantTag(1), to: "Veg Room"),
                                                              ["Label": "NOTATAG"]], context: context)))
        #expect(buffers(state) == before)
        #expect(state.plants[0].location == "Vault" && state.packages[99].location == "Quarantine")
        #expect(state.plants[1].location == "Vault")
    }
}
