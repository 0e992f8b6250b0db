import Foundation
import Testing
import MetrcSandbox
import NIOHTTP1

@Suite("Writes over HTTP")
struct WriteHTTPTests {
    @Test func harvestIsAppliedAndVisibleInReads() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.floweringPlantTag(10)
            let before = try await h.get("/plants/v2/flowering")
            #expect(before.json?[field: "Total"]?.intValue == 150)
            let result = try await h.write(.PUT, "/plants/v2/harvest", [harvestObject(tag, weight: 250.75)])
            #expect(result.status == 200, "\(result.text)")
            #expect(result.json?[field: "Ids"]?.arrayValue?.count == 1)
            let plant = try await h.get("/plants/v2/\(tag)")
            #expect(plant.status == 200)
            #expect(plant.json?[field: "State"]?.stringValue == "Harvested")
            #expect(plant.json?[field: "HarvestedWetWeight"]?.doubleValue == 250.75)
            #expect(plant.json?[field: "HarvestedDate"]?.stringValue == today)
            let after = try await h.get("/plants/v2/flowering")
            #expect(after.json?[field: "Total"]?.intValue == 149)
            #expect(!(after.json?.labels.contains(tag) ?? true))
            let inactive = try await h.get("/plants/v2/inactive")
            #expect(inactive.json?.labels == [tag])
            let harvests = try await h.get("/harvests/v2/active")
            #expect(harvests.json?.data.first?[field: "Name"]?.stringValue == "\(today)-Drying Room-H")
        }
    }

    @Test func movePlantChangesItsLocation() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.vegetativePlantTag(3)
            let result = try await h.write(.PUT, "/plants/v2/location",
                                           [movePlantObject(tag, location: "flower room 1", sublocation: "Bench 2")])
            #expect(result.status == 200, "\(result.text)")
            let plant = try await h.get("/plants/v2/\(tag)")
            #expect(plant.json?[field: "LocationName"]?.stringValue == "Flower Room 1")
            #expect(plant.json?[field: "SublocationName"]?.stringValue == "Bench 2")
            // By Id instead of Label.
            let byId: JSONValue = ["Id": 10004, "Location": "Quarantine", "ActualDate": .string(today)]
            #expect(try await h.write(.PUT, "/plants/v2/location", [byId]).status == 200)
            #expect(await h.server.plant(label: SandboxDemo.plantTag(4))?.location == "Quarantine")
        }
    }

    @Test func destroyRemovesThePlantAndNamesTheUser() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.vegetativePlantTag(7)
            let result = try await h.write(.DELETE, "/plants/v2/", [destroyObject(tag, reason: "Other", note: "Root rot")],
                                           key: SandboxDemo.johnKey)
            #expect(result.status == 200, "\(result.text)")
            let plant = try await h.get("/plants/v2/\(tag)")
            #expect(plant.json?[field: "State"]?.stringValue == "Destroyed")
            #expect(plant.json?[field: "DestroyedByUserName"]?.stringValue == "john")
            #expect(plant.json?[field: "DestroyedNote"]?.stringValue == "Root rot")
            let vegetative = try await h.get("/plants/v2/vegetative")
            #expect(vegetative.json?[field: "Total"]?.intValue == 149)
            #expect(!(vegetative.json?.labels.contains(tag) ?? true))
        }
    }

    @Test func movePackageChangesItsLocation() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.packageTag(12)
            let result = try await h.write(.PUT, "/packages/v2/location", [movePackageObject(tag)])
            #expect(result.status == 200, "\(result.text)")
            let package = try await h.get("/packages/v2/\(tag)")
            #expect(package.json?[field: "LocationName"]?.stringValue == "Quarantine")
            #expect(package.json?[field: "SublocationName"]?.stringValue == "Rack 1")
        }
    }

    @Test func adjustChangesQuantityAndIsRecorded() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.packageTag(1)  // 101 g
            let result = try await h.write(.POST, "/packages/v2/adjust",
                                           [adjustObject(tag, quantity: -2.5, reason: "Scale Variance", note: "new scale")])
            #expect(result.status == 200, "\(result.text)")
            let package = try await h.get("/packages/v2/\(tag)")
            #expect(package.json?[field: "Quantity"]?.doubleValue == 98.5)
            let history = try await h.get("/packages/v2/adjustments")
            let entry = try #require(history.json?.data.first)
            #expect(history.json?[field: "Total"]?.intValue == 1)
            #expect(entry[field: "PackageLabel"]?.stringValue == tag)
            #expect(entry[field: "Quantity"]?.doubleValue == -2.5)
            #expect(entry[field: "UnitOfMeasureName"]?.stringValue == "Grams")
            #expect(entry[field: "AdjustmentReasonName"]?.stringValue == "Scale Variance")
            #expect(entry[field: "AdjustmentDate"]?.stringValue == today)
            #expect(entry[field: "ReasonNote"]?.stringValue == "new scale")
            #expect(entry[field: "AdjustedByUserName"]?.stringValue == "jane")
            #expect(entry[field: "Id"]?.intValue != nil)
        }
    }

    @Test func theSameAdjustPostedTwiceAdjustsTwice() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.packageTag(2)  // 102 g
            let body = [adjustObject(tag, quantity: -1)]
            #expect(try await h.write(.POST, "/packages/v2/adjust", body).status == 200)
            #expect(try await h.write(.POST, "/packages/v2/adjust", body).status == 200)
            #expect(await h.server.package(label: tag)?.quantity == 100)
            let records = await h.server.adjustments(license: SandboxDemo.license)
            #expect(records.count == 2)
            #expect(Set(records.map(\.id)).count == 2)
            #expect(await h.server.writes().count == 2)
        }
    }

    @Test func eachValidationErrorIsReportedOnItsRow() async throws {
        try await withSandbox { (h: Harness) async throws in
            let flowering = SandboxDemo.floweringPlantTag(1)
            let cases: [(method: HTTPMethod, path: String, good: JSONValue, bad: JSONValue, expected: String)] = [
                (.PUT, "/plants/v2/harvest", harvestObject(flowering), harvestObject("ABCDEF012345670000000001"), "was not found"),
                (.PUT, "/plants/v2/harvest", harvestObject(flowering), harvestObject(SandboxDemo.vegetativePlantTag(1)), "flowering"),
                (.PUT, "/plants/v2/harvest", harvestObject(flowering), harvestObject(SandboxDemo.floweringPlantTag(2), weight: 0), "Weight must be greater than 0"),
                (.PUT, "/plants/v2/harvest", harvestObject(flowering), harvestObject(SandboxDemo.floweringPlantTag(2), unit: "Each"), "not a weight unit"),
                (.PUT, "/plants/v2/harvest", harvestObject(flowering), harvestObject(SandboxDemo.floweringPlantTag(2), location: "Attic"), "Attic"),
                (.PUT, "/plants/v2/harvest", harvestObject(flowering), harvestObject(SandboxDemo.floweringPlantTag(2), date: "2025/06/30"), "not a valid date"),
                (.PUT, "/plants/v2/harvest", harvestObject(flowering), harvestObject(SandboxDemo.floweringPlantTag(2), weight: "12"), "must be a number"),
                (.PUT, "/plants/v2/location", movePlantObject(flowering), movePlantObject(flowering, location: "Nowhere"), "Nowhere"),
                (.PUT, "/plants/v2/location", movePlantObject(flowering), movePlantObject(SandboxDemo.plantTag(2), sublocation: "Shelf Z"), "Shelf Z"),
                (.DELETE, "/plants/v2", destroyObject(flowering), destroyObject(SandboxDemo.plantTag(2), method: "Burying"), "Burying"),
                (.DELETE, "/plants/v2", destroyObject(flowering), destroyObject(SandboxDemo.plantTag(2), reason: "Boredom"), "Boredom"),
                (.DELETE, "/plants/v2", destroyObject(flowering), destroyObject(SandboxDemo.plantTag(2), reason: "Damage"), "ReasonNote is required"),
                (.DELETE, "/plants/v2", destroyObject(flowering), destroyObject(SandboxDemo.plantTag(2), unit: "Liters"), "not a weight unit"),
                (.PUT, "/packages/v2/location", movePackageObject(SandboxDemo.packageTag(1)), movePackageObject("1A4FF0399999922000000001"), "was not found"),
                (.PUT, "/packages/v2/location", movePackageObject(SandboxDemo.packageTag(1)), movePackageObject(SandboxDemo.packageTag(2), date: "2099-01-01"), "future"),
                (.POST, "/packages/v2/adjust", adjustObject(SandboxDemo.packageTag(1)), adjustObject(SandboxDemo.packageTag(2), reason: "Entry Error"), "ReasonNote is required"),
                (.POST, "/packages/v2/adjust", adjustObject(SandboxDemo.packageTag(1)), adjustObject(SandboxDemo.packageTag(2), unit: "Each"), "cannot be used"),
                (.POST, "/packages/v2/adjust", adjustObject(SandboxDemo.packageTag(1)), adjustObject(SandboxDemo.packageTag(2), reason: "Gremlins"), "Gremlins"),
                (.POST, "/packages/v2/adjust", adjustObject(SandboxDemo.packageTag(1)), adjustObject(SandboxDemo.packageTag(2), quantity: -1000), "negative"),
            ]
            let stateBefore = await h.server.state()
            for item in cases {
                let result = try await h.write(item.method, item.path, [item.good, item.bad])
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

    @Test func aRejectedRequestAppliesNothingEvenItsValidObjects() async throws {
        try await withSandbox { (h: Harness) async throws in
            let objects = [
                adjustObject(SandboxDemo.packageTag(1), quantity: -1),
                adjustObject(SandboxDemo.packageTag(3), quantity: -1),
                adjustObject(SandboxDemo.packageTag(5), quantity: 5, unit: "Pounds"),  // Each package
            ]
            let result = try await h.write(.POST, "/packages/v2/adjust", objects)
            #expect(result.status == 400)
            #expect(result.rows.map(\.row) == [2])
            #expect(await h.server.package(label: SandboxDemo.packageTag(1))?.quantity == 101)
            #expect(await h.server.package(label: SandboxDemo.packageTag(3))?.quantity == 103)
            #expect(await h.server.adjustments(license: SandboxDemo.license).isEmpty)
        }
    }

    @Test func malformedBodiesAreMessages() async throws {
        try await withSandbox { (h: Harness) async throws in
            let auth = Harness.credentials(SandboxDemo.janeKey)
            let notJSON = try await h.request(.POST, "/packages/v2/adjust?licenseNumber=LIC-0001", auth: auth, body: Array("nope".utf8))
            #expect(notJSON.status == 400)
            #expect(notJSON.json?[field: "Message"]?.stringValue != nil)
            let object = try await h.request(.POST, "/packages/v2/adjust?licenseNumber=LIC-0001", auth: auth, body: Array("{}".utf8))
            #expect(object.status == 400)
            #expect(object.json?[field: "Message"]?.stringValue?.contains("array") == true)
            let notObjects = try await h.write(.POST, "/packages/v2/adjust", [1, "x"])
            #expect(notObjects.rows.map(\.row) == [0, 1])
        }
    }

    @Test func tooManyObjectsIs413() async throws {
        try await withSandbox(configuration: SandboxConfiguration(objectLimit: 100)) { (h: Harness) async throws in
            let objects = (1...101).map { adjustObject(SandboxDemo.packageTag($0), quantity: 1, unit: "Each") }
            let result = try await h.write(.POST, "/packages/v2/adjust", objects)
            #expect(result.status == 413)
            #expect(result.json?[field: "Message"]?.stringValue?.contains("101") == true)
            let exactly = (1...100).map { movePackageObject(SandboxDemo.packageTag($0)) }
            #expect(try await h.write(.PUT, "/packages/v2/location", exactly).status == 200)
        }
    }

    @Test func aBodyOverTheByteLimitIs413() async throws {
        try await withSandbox(configuration: SandboxConfiguration(maxBodyBytes: 2048)) { (h: Harness) async throws in
            let objects = (1...30).map { movePackageObject(SandboxDemo.packageTag($0)) }
            #expect(JSONValue.array(objects).bytes.count > 2048)
            let result = try await h.write(.PUT, "/packages/v2/location", objects)
            #expect(result.status == 413)
            #expect(await h.server.package(label: SandboxDemo.packageTag(1))?.location == "Vault")
            // The server is still fine afterwards.
            #expect(try await h.write(.PUT, "/packages/v2/location", [movePackageObject(SandboxDemo.packageTag(1))]).status == 200)
        }
    }

    @Test func theWriteLogNamesTheSigningUser() async throws {
        try await withSandbox { (h: Harness) async throws in
            #expect(try await h.write(.PUT, "/plants/v2/harvest", [harvestObject(SandboxDemo.floweringPlantTag(5))],
                                      key: SandboxDemo.janeKey).status == 200)
            #expect(try await h.write(.PUT, "/plants/v2/location", [movePlantObject(SandboxDemo.plantTag(9))],
                                      key: SandboxDemo.johnKey).status == 200)
            #expect(try await h.write(.POST, "/packages/v2/adjust", [adjustObject(SandboxDemo.packageTag(9))],
                                      key: SandboxDemo.ownerKey).status == 200)
            let writes = await h.server.writes()
            #expect(writes.map(\.userName) == ["jane", "john", "owner"])
            #expect(writes.map(\.action) == [.harvestPlants, .movePlants, .adjustPackages])
            #expect(writes.allSatisfy { $0.license == SandboxDemo.license })
            #expect(writes[0].objects[0]?[field: "Plant"]?.stringValue == SandboxDemo.floweringPlantTag(5))
            #expect(writes[2].method == "POST")
            let overHTTP = try await h.control(.GET, "writes")
            let entries = overHTTP.json?.arrayValue ?? []
            #expect(entries.map { $0[field: "userName"]?.stringValue } == ["jane", "john", "owner"])
            #expect(entries.first?[field: "path"]?.stringValue == "/plants/v2/harvest")
            #expect(entries.first?[field: "objects"]?[0]?[field: "Plant"]?.stringValue == SandboxDemo.floweringPlantTag(5))
            let johnOnly = try await h.control(.GET, "writes?user=john")
            #expect(johnOnly.json?.arrayValue?.count == 1)
        }
    }

    @Test func writesWorkOnTheSecondLicenseSeparately() async throws {
        try await withSandbox { (h: Harness) async throws in
            let tag = SandboxDemo.secondLicensePackageTag(1)
            // The LIC-0002 package is unknown at LIC-0001.
            let wrong = try await h.write(.PUT, "/packages/v2/location", [movePackageObject(tag)])
            #expect(wrong.status == 400)
            let right = try await h.write(.PUT, "/packages/v2/location", [movePackageObject(tag)], license: SandboxDemo.secondLicense)
            #expect(right.status == 200, "\(right.text)")
            #expect(await h.server.writes().first?.license == SandboxDemo.secondLicense)
        }
    }
}

