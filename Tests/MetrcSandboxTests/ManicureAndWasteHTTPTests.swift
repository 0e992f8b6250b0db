import Foundation
import Testing
import MetrcSandbox
import NIOHTTP1

@Suite("Manicure and plant waste over HTTP")
struct ManicureAndWasteHTTPTests {
    @Test func manicureIsAppliedAndVisibleInTheReads() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.vegetativePlantTag(12)
            let result = try await h.write(.POST, "/plants/v2/manicure", [manicureObject(tag, weight: 35.5)])
            #expect(result.status == 200, "\(result.text)")
            #expect(result.json?[field: "Ids"]?.arrayValue == [10_012])

            let plant = try #require(try await h.get("/plants/v2/\(tag)").json)
            #expect(plant[field: "State"]?.stringValue == "Tracked")
            #expect(plant[field: "GrowthPhase"]?.stringValue == "Vegetative")
            #expect(plant[field: "HarvestCount"]?.intValue == 1)
            #expect(plant[field: "HarvestedWetWeight"]?.doubleValue == 35.5)
            #expect(plant[field: "HarvestedUnitOfWeightName"]?.stringValue == "Grams")
            #expect(plant[field: "HarvestedDate"]?.isNull == true)
            // The plant stays in its list; only a whole-plant harvest moves it to the inactive ones.
            #expect(try await h.get("/plants/v2/vegetative").json?.labels.contains(tag) == true)
            #expect(try await h.get("/plants/v2/inactive").json?.labels.isEmpty == true)

            let harvests = try await h.get("/harvests/v2/active")
            #expect(harvests.json?[field: "Total"]?.intValue == 1)
            let batch = try #require(harvests.json?.data.first)
            #expect(batch[field: "Id"]?.intValue == plant[field: "HarvestId"]?.intValue)
            #expect(batch[field: "Name"]?.stringValue == "\(today)-Drying Room-M")
            #expect(batch[field: "HarvestType"]?.stringValue == "Manicure")
            #expect(batch[field: "CurrentWeight"]?.doubleValue == 35.5)
            #expect(batch[field: "TotalWetWeight"]?.doubleValue == 35.5)
            #expect(batch[field: "UnitOfWeightName"]?.stringValue == "Grams")
            #expect(batch[field: "DryingLocationName"]?.stringValue == "Drying Room")
            #expect(batch[field: "PlantCount"]?.intValue == 1)
            #expect(batch[field: "HarvestStartDate"]?.stringValue == today)
            #expect(batch[field: "LastModified"]?.stringValue == plant[field: "LastModified"]?.stringValue)
        }
    }

    @Test func theSameManicurePostedTwiceCountsTwice() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.floweringPlantTag(20)
            let body = [manicureObject(tag, weight: 12, location: "Drying Room", sublocation: "Rack 1", harvestName: "Trim 7")]
            #expect(try await h.write(.POST, "/plants/v2/manicure", body).status == 200)
            #expect(try await h.write(.POST, "/plants/v2/manicure", body).status == 200)
            let plant = try #require(await h.server.plant(label: tag))
            #expect(plant.state == .tracked)
            #expect(plant.harvestCount == 2)
            #expect(plant.harvestedWetWeight == 24)
            let harvests = await h.server.harvests(license: SandboxDemo.license)
            #expect(harvests.count == 1)
            #expect(harvests.first?.name == "Trim 7")
            #expect(harvests.first?.dryingSublocation == "Rack 1")
            #expect(harvests.first?.totalWetWeight == 24)
            #expect(harvests.first?.plantLabels == [tag])
            #expect(await h.server.writes().count == 2)
            // Over HTTP as well.
            #expect(try await h.get("/plants/v2/\(tag)").json?[field: "HarvestCount"]?.intValue == 2)
            #expect(try await h.get("/harvests/v2/active").json?.data.first?[field: "CurrentWeight"]?.doubleValue == 24)
        }
    }

    @Test func harvestsAreListedPagedAndWindowed() async throws {
        let clock = ManualClock(MetrcTimestamp.parse("2025-07-01T12:00:00Z")!)
        try await withSandbox(configuration: SandboxConfiguration(now: { clock.now })) { (h: Harness) async throws in
            for (n, name) in ["A", "B", "C"].enumerated() {
                let object = manicureObject(SandboxDemo.plantTag(n + 1), harvestName: .string("Trim \(name)"), date: "2025-07-01")
                #expect(try await h.write(.POST, "/plants/v2/manicure", [object]).status == 200)
                clock.advance(seconds: 3600)
            }
            let all = try await h.get("/harvests/v2/active")
            #expect(all.json?.data.compactMap { $0[field: "Name"]?.stringValue } == ["Trim A", "Trim B", "Trim C"])
            let second = try await h.get("/harvests/v2/active", query: ["pageNumber": "2", "pageSize": "1"])
            #expect(second.json?.data.compactMap { $0[field: "Name"]?.stringValue } == ["Trim B"])
            #expect(second.json?[field: "TotalPages"]?.intValue == 3)
            let window = try await h.get("/harvests/v2/active", query: [
                "lastModifiedStart": "2025-07-01T12:30:00Z", "lastModifiedEnd": "2025-07-01T13:30:00Z",
            ])
            #expect(window.json?.data.compactMap { $0[field: "Name"]?.stringValue } == ["Trim B"])
        }
    }

    @Test func wasteIsRecordedListedWindowedAndPaged() async throws {
        let clock = ManualClock(MetrcTimestamp.parse("2025-07-01T12:00:00Z")!)
        try await withSandbox(configuration: SandboxConfiguration(now: { clock.now })) { (h: Harness) async throws in
            let first = SandboxDemo.vegetativePlantTag(1)
            let second = SandboxDemo.floweringPlantTag(1)
            let plants = wasteObject([first, second], location: "Veg Room", sublocation: "Bench 1", weight: 12.5,
                                     reason: "Damage", note: "Snapped stems", date: "2025-07-01")
            let result = try await h.write(.POST, "/plants/v2/waste", [plants])
            #expect(result.status == 200, "\(result.text)")
            let wasteId = try #require(result.json?[field: "Ids"]?[0]?.intValue)
            clock.advance(seconds: 3600)
            let room = wasteObject([], location: "Flower Room 2", weight: 2, unit: "Ounces", reason: "Mold",
                                   date: "2025-07-01")
            #expect(try await h.write(.POST, "/plants/v2/waste", [room], key: SandboxDemo.ownerKey).status == 200)

            let all = try await h.get("/plants/v2/waste")
            #expect(all.json?[field: "Total"]?.intValue == 2)
            let entry = try #require(all.json?.data.first)
            #expect(entry[field: "Id"]?.intValue == wasteId)
            #expect(entry[field: "PlantWasteId"]?.intValue == wasteId)
            #expect(entry[field: "PlantLabels"]?.arrayValue == [JSONValue.string(first), .string(second)])
            #expect(entry[field: "Label"]?.isNull == true)
            #expect(entry[field: "PlantCount"]?.intValue == 2)
            #expect(entry[field: "LocationName"]?.stringValue == "Veg Room")
            #expect(entry[field: "LocationId"]?.intValue == 101)
            #expect(entry[field: "SublocationName"]?.stringValue == "Bench 1")
            #expect(entry[field: "WasteMethodName"]?.stringValue == "Compost")
            #expect(entry[field: "MixedMaterial"]?.stringValue == "Soil")
            #expect(entry[field: "WasteAmount"]?.doubleValue == 12.5)
            #expect(entry[field: "WasteWeight"]?.doubleValue == 12.5)
            #expect(entry[field: "UnitOfMeasureName"]?.stringValue == "Grams")
            #expect(entry[field: "WasteUnitOfMeasureAbbreviation"]?.stringValue == "g")
            #expect(entry[field: "ReasonName"]?.stringValue == "Damage")
            #expect(entry[field: "Note"]?.stringValue == "Snapped stems")
            #expect(entry[field: "WasteDate"]?.stringValue == "2025-07-01")
            #expect(entry[field: "RecordedByUserName"]?.stringValue == "jane")
            #expect(entry[field: "LastModified"]?.stringValue == "2025-07-01T12:00:00+00:00")

            // The window keeps only the room waste recorded an hour later; paging walks the records.
            let window = try await h.get("/plants/v2/waste", query: [
                "lastModifiedStart": "2025-07-01T12:30:00Z", "lastModifiedEnd": "2025-07-01T13:30:00Z",
            ])
            let roomEntry = try #require(window.json?.data.first)
            #expect(window.json?[field: "Total"]?.intValue == 1)
            #expect(roomEntry[field: "PlantLabels"]?.arrayValue == [])
            #expect(roomEntry[field: "LocationName"]?.stringValue == "Flower Room 2")
            #expect(roomEntry[field: "UnitOfMeasureName"]?.stringValue == "Ounces")
            #expect(roomEntry[field: "RecordedByUserName"]?.stringValue == "owner")
            let page = try await h.get("/plants/v2/waste", query: ["pageNumber": "2", "pageSize": "1"])
            #expect(page.json?.data.first?[field: "Id"]?.intValue == roomEntry[field: "Id"]?.intValue)
            #expect(page.json?[field: "TotalPages"]?.intValue == 2)

            // The plants stay, with a new LastModified; other plants are untouched.
            for tag in [first, second] {
                let plant = try #require(try await h.get("/plants/v2/\(tag)").json)
                #expect(plant[field: "State"]?.stringValue == "Tracked")
                #expect(plant[field: "LastModified"]?.stringValue == "2025-07-01T12:00:00+00:00")
            }
            #expect(try await h.get("/plants/v2/vegetative").json?[field: "Total"]?.intValue == 150)
            #expect(await h.server.plantWaste(license: SandboxDemo.license).count == 2)
            #expect(await h.server.plantWaste(license: SandboxDemo.secondLicense).isEmpty)
            // Reading needs only `view`, like every read.
            #expect(try await h.get("/plants/v2/waste", key: SandboxDemo.viewerKey).status == 200)
            #expect(try await h.get("/plants/v2/waste", license: nil).status == 400)
        }
    }

    @Test func aSinglePlantWasteShowsItsLabel() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.vegetativePlantTag(9)
            #expect(try await h.write(.POST, "/plants/v2/waste", [wasteObject([tag])]).status == 200)
            let entry = try #require(try await h.get("/plants/v2/waste").json?.data.first)
            #expect(entry[field: "Label"]?.stringValue == tag)
            #expect(entry[field: "PlantLabels"]?.arrayValue == [JSONValue.string(tag)])
            #expect(entry[field: "LocationName"]?.isNull == true)
        }
    }

    @Test func theSameWastePostedTwiceRecordsTwice() async throws {
        try await withSandbox { (h: Harness) async throws in
            let body = [wasteObject([SandboxDemo.vegetativePlantTag(5)])]
            let first = try await h.write(.POST, "/plants/v2/waste", body)
            let second = try await h.write(.POST, "/plants/v2/waste", body)
            #expect(first.status == 200 && second.status == 200)
            #expect(first.json?[field: "Ids"] != second.json?[field: "Ids"])
            let records = await h.server.plantWaste(license: SandboxDemo.license)
            #expect(records.count == 2)
            #expect(Set(records.map(\.id)).count == 2)
            #expect(try await h.get("/plants/v2/waste").json?[field: "Total"]?.intValue == 2)
        }
    }

    @Test func eachValidationErrorIsReportedOnItsRow() async throws {
        try await withSandbox { (h: Harness) async throws in
            let veg = SandboxDemo.vegetativePlantTag(1)
            let other = SandboxDemo.vegetativePlantTag(2)
            let goodManicure = manicureObject(veg)
            let goodWaste = wasteObject([veg])
            let cases: [(path: String, good: JSONValue, bad: JSONValue, expected: String)] = [
                ("/plants/v2/manicure", goodManicure, manicureObject("ABCDEF012345670000000001"), "was not found"),
                ("/plants/v2/manicure", goodManicure, manicureObject("abc"), "Tag abc is not valid"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, weight: 0), "Weight must be greater than 0"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, weight: "3"), "Weight must be a number"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, unit: "Each"), "not a weight unit"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, location: "Attic"), "DryingLocation Attic"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, sublocation: "Shelf Z"), "DryingSublocation Shelf Z"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, plantCount: 0), "PlantCount must be at least 1"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, plantCount: 2.5), "PlantCount must be a whole number"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, date: "2025-6-1"), "not a valid date"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, date: "2099-01-01"), "future"),
                ("/plants/v2/manicure", goodManicure, manicureObject(other, date: "2024-12-31"), "was planted"),
                ("/plants/v2/waste", goodWaste, wasteObject(["ABCDEF012345670000000001"]), "Plant ABCDEF012345670000000001 was not found"),
                ("/plants/v2/waste", goodWaste, wasteObject([other, other]), "named more than once"),
                ("/plants/v2/waste", goodWaste, wasteObject((1...101).map(SandboxDemo.plantTag)), "at most 100"),
                ("/plants/v2/waste", goodWaste, wasteObject([]), "PlantLabels or LocationName is required"),
                ("/plants/v2/waste", goodWaste, wasteObject([], location: "Attic"), "LocationName Attic"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], location: "Veg Room", sublocation: "Shelf Z"), "SublocationName Shelf Z"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], method: "Burying"), "Burying"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], material: nil), "MixedMaterial is required"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], reason: "Boredom"), "Boredom"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], reason: "Damage"), "Note is required"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], weight: nil, unit: nil, reason: "Mold"), "WasteWeight greater than 0 is required"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], weight: 0), "WasteWeight must be greater than 0"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], unit: "Liters"), "not a weight unit"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], unit: nil), "UnitOfMeasureName is required"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], date: "yesterday"), "not a valid date"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], date: "2099-01-01"), "future"),
                ("/plants/v2/waste", goodWaste, wasteObject([other], date: "2024-12-31"), "was planted"),
            ]
            let stateBefore = await h.server.state()
            for item in cases {
                let result = try await h.write(.POST, item.path, [item.good, item.bad])
                #expect(result.status == 400, "\(item.path) \(item.expected): \(result.text)")
                let rows = result.rows
                #expect(!rows.isEmpty, "\(item.path): not a row array: \(result.text)")
                #expect(rows.allSatisfy { $0.row == 1 }, "\(item.path): \(rows)")
                #expect(rows.contains { $0.message.contains(item.expected) }, "\(item.expected) not in \(rows)")
            }
            // All or nothing: the valid row 0 of every request was not applied either.
            #expect(await h.server.state() == stateBefore)
            #expect(await h.server.writes().isEmpty)
        }
    }

    @Test func oneBadObjectAmongGoodOnesAppliesNothing() async throws {
        try await withSandbox { (h: Harness) async throws in
            let manicures = [
                manicureObject(SandboxDemo.plantTag(1)), manicureObject(SandboxDemo.floweringPlantTag(1)),
                manicureObject(SandboxDemo.plantTag(2), unit: "Liters"), manicureObject(SandboxDemo.plantTag(3)),
            ]
            let rejected = try await h.write(.POST, "/plants/v2/manicure", manicures)
            #expect(rejected.status == 400)
            #expect(rejected.rows.map(\.row) == [2])
            #expect(await h.server.plant(label: SandboxDemo.plantTag(1))?.timesHarvested == 0)
            #expect(await h.server.harvests(license: SandboxDemo.license).isEmpty)

            let waste = [
                wasteObject([SandboxDemo.plantTag(1)]), wasteObject([], location: "Veg Room"),
                wasteObject([SandboxDemo.plantTag(2)], reason: "Other"),
            ]
            let refused = try await h.write(.POST, "/plants/v2/waste", waste)
            #expect(refused.status == 400)
            #expect(refused.rows.map(\.row) == [2])
            #expect(await h.server.plantWaste(license: SandboxDemo.license).isEmpty)
            #expect(await h.server.plant(label: SandboxDemo.plantTag(1))?.lastModified
                == SandboxDemo.baseDate.addingTimeInterval(3600))
            #expect(await h.server.writes().isEmpty)
        }
    }

    @Test func eachWriteNeedsItsPermission() async throws {
        var state = SandboxState.demo()
        // Two users with every permission but one, so each 401 has exactly one cause.
        let all = SandboxPermission.allCases
        state.users.append(SandboxUser(name: "no-manicure", key: "no-manicure-key",
                                       facilities: [SandboxDemo.license: all.filter { $0 != .manicurePlants }]))
        state.users.append(SandboxUser(name: "no-waste", key: "no-waste-key",
                                       facilities: [SandboxDemo.license: all.filter { $0 != .wastePlants }]))
        try await withSandbox(state: state) { (h: Harness) async throws in
            let manicure = [manicureObject(SandboxDemo.plantTag(1))]
            let waste = [wasteObject([SandboxDemo.plantTag(1)])]
            var refused: [(String, HTTPResult)] = []
            refused.append(("manicure without its permission",
                            try await h.write(.POST, "/plants/v2/manicure", manicure, key: "no-manicure-key")))
            refused.append(("waste without its permission",
                            try await h.write(.POST, "/plants/v2/waste", waste, key: "no-waste-key")))
            refused.append(("viewer manicure", try await h.write(.POST, "/plants/v2/manicure", manicure, key: SandboxDemo.viewerKey)))
            refused.append(("viewer waste", try await h.write(.POST, "/plants/v2/waste", waste, key: SandboxDemo.viewerKey)))
            refused.append(("john at LIC-0002", try await h.write(.POST, "/plants/v2/waste",
                                                                   [wasteObject([SandboxDemo.secondLicensePlantTag(1)])],
                                                                   license: SandboxDemo.secondLicense, key: SandboxDemo.johnKey)))
            for (name, result) in refused {
                #expect(result.status == 401, "\(name): \(result.status) \(result.text)")
                #expect(result.body.isEmpty, "\(name): 401 body must be empty: \(result.text)")
            }
            #expect(await h.server.writes().isEmpty)
            #expect(await h.server.plant(label: SandboxDemo.plantTag(1))?.timesHarvested == 0)
            // Each may do the other write.
            #expect(try await h.write(.POST, "/plants/v2/waste", waste, key: "no-manicure-key").status == 200)
            #expect(try await h.write(.POST, "/plants/v2/manicure", manicure, key: "no-waste-key").status == 200)
            // The demo's owner and jane have both, on both licenses.
            for key in [SandboxDemo.ownerKey, SandboxDemo.janeKey] {
                #expect(try await h.write(.POST, "/plants/v2/manicure", [manicureObject(SandboxDemo.secondLicensePlantTag(30))],
                                          license: SandboxDemo.secondLicense, key: key).status == 200)
                #expect(try await h.write(.POST, "/plants/v2/waste", [wasteObject([SandboxDemo.secondLicensePlantTag(3)])],
                                          license: SandboxDemo.secondLicense, key: key).status == 200)
            }
        }
    }

    @Test func theWriteLogNamesTheSignerAndKeepsTheObjects() async throws {
        try await withSandbox { (h: Harness) async throws in
            let manicure = manicureObject(SandboxDemo.plantTag(8), weight: 7.25, harvestName: "Trim Q", plantCount: 2)
            let waste = wasteObject([SandboxDemo.plantTag(8), SandboxDemo.plantTag(9)], reason: "Other", note: "Aphids")
            #expect(try await h.write(.POST, "/plants/v2/manicure", [manicure], key: SandboxDemo.johnKey).status == 200)
            #expect(try await h.write(.POST, "/plants/v2/waste", [waste], key: SandboxDemo.ownerKey).status == 200)
            let writes = await h.server.writes()
            #expect(writes.map(\.userName) == ["john", "owner"])
            #expect(writes.map(\.action) == [.manicurePlants, .wastePlants])
            #expect(writes.map(\.method) == ["POST", "POST"])
            #expect(writes.map(\.path) == ["/plants/v2/manicure", "/plants/v2/waste"])
            #expect(writes[0].objects == [manicure])
            #expect(writes[1].objects == [waste])
            #expect(writes.allSatisfy { $0.license == SandboxDemo.license })
            let overHTTP = try await h.control(.GET, "writes").json?.arrayValue ?? []
            #expect(overHTTP.map { $0[field: "action"]?.stringValue } == ["manicurePlants", "wastePlants"])
            #expect(overHTTP.map { $0[field: "userName"]?.stringValue } == ["john", "owner"])
            #expect(overHTTP.last?[field: "objects"]?[0]?[field: "PlantLabels"]?.arrayValue?.count == 2)
        }
    }

    @Test func applyThenFailAppliesEachWriteOnce() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.plantTag(14)
            try await h.server.setFaults(.applyThenFail(status: 500, count: 1, path: "/plants/v2/manicure"))
            let manicure = try await h.write(.POST, "/plants/v2/manicure", [manicureObject(tag)])
            #expect(manicure.status == 500)
            #expect(await h.server.plant(label: tag)?.harvestCount == 1)
            #expect(await h.server.harvests(license: SandboxDemo.license).count == 1)

            #expect(try await h.control(.POST, "faults", ["kind": "applyThenFail", "drop": true, "count": 1,
                                                          "path": "/plants/v2/waste"]).status == 200)
            await #expect(throws: (any Error).self) {
                _ = try await h.write(.POST, "/plants/v2/waste", [wasteObject([tag])])
            }
            #expect(await h.server.plantWaste(license: SandboxDemo.license).count == 1)
            #expect(await h.server.writes().map(\.action) == [.manicurePlants, .wastePlants])
            #expect(await h.server.faults().isEmpty)
            // A rejected write under the fault is answered normally and applies nothing.
            try await h.server.setFaults(.applyThenFail(drop: true, count: 1))
            let rejected = try await h.write(.POST, "/plants/v2/waste", [wasteObject([tag], reason: "Boredom")])
            #expect(rejected.status == 400)
            #expect(await h.server.plantWaste(license: SandboxDemo.license).count == 1)
        }
    }
}
