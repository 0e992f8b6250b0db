import Foundation
import Testing
import MetrcSandbox
import NIOHTTP1

@Suite("Auth and reads over HTTP")
struct AuthAndReadHTTPTests {
    @Test func unauthorizedCasesAre401WithoutJSON() async throws {
        try await withSandbox { (h: Harness) async throws in
            let path = "/packages/v2/active?licenseNumber=LIC-0001"
            var results: [(String, HTTPResult)] = []
            results.append(("no auth", try await h.request(.GET, path, auth: nil)))
            results.append(("not basic", try await h.request(.GET, path, auth: "Bearer x")))
            results.append(("unknown vendor", try await h.request(.GET, path, auth: Harness.credentials(SandboxDemo.janeKey, vendor: "other-vendor"))))
            results.append(("unknown user key", try await h.request(.GET, path, auth: Harness.credentials("no-such-key"))))
            results.append(("no access to license", try await h.get("/packages/v2/active", license: SandboxDemo.secondLicense, key: SandboxDemo.johnKey)))
            results.append(("unknown license", try await h.get("/packages/v2/active", license: "LIC-9999")))
            results.append(("no permission", try await h.write(.POST, "/packages/v2/adjust", [adjustObject(SandboxDemo.packageTag(1))], key: SandboxDemo.viewerKey)))
            for (name, result) in results {
                #expect(result.status == 401, "\(name): \(result.status)")
                #expect(result.json == nil, "\(name): 401 body must not be JSON: \(result.text)")
            }
            // The viewer may read.
            #expect(try await h.get("/packages/v2/active", key: SandboxDemo.viewerKey).status == 200)
            #expect(await h.server.writes().isEmpty)
        }
    }

    @Test func revokedExpiredAndReplacedKeysAre401UntilRestored() async throws {
        try await withSandbox { (h: Harness) async throws in
            #expect(try await h.get("/facilities/v2/", license: nil).status == 200)
            #expect(try await h.control(.POST, "keys/revoke", ["key": .string(SandboxDemo.janeKey)]).status == 200)
            #expect(try await h.get("/facilities/v2/", license: nil).status == 401)
            #expect(try await h.control(.POST, "keys/restore", ["user": "jane"]).status == 200)
            #expect(try await h.get("/facilities/v2/", license: nil).status == 200)

            await h.server.expireUserKey(SandboxDemo.johnKey)
            let expired = try await h.write(.PUT, "/plants/v2/location", [movePlantObject(SandboxDemo.plantTag(1))], key: SandboxDemo.johnKey)
            #expect(expired.status == 401)
            #expect(await h.server.plant(label: SandboxDemo.plantTag(1))?.location == "Veg Room")
            await h.server.restoreUserKey(SandboxDemo.johnKey)
            #expect(try await h.get("/plants/v2/vegetative", key: SandboxDemo.johnKey).status == 200)

            #expect(try await h.control(.POST, "keys/expire", ["user": "owner"]).status == 200)
            #expect(try await h.get("/facilities/v2/", license: nil, key: SandboxDemo.ownerKey).status == 401)

            await h.server.setUserKey(user: "jane", key: "jane-new-key")
            #expect(try await h.get("/facilities/v2/", license: nil).status == 401)
            #expect(try await h.get("/facilities/v2/", license: nil, key: "jane-new-key").status == 200)
            #expect(try await h.control(.POST, "keys/set", ["user": "jane", "key": "jane-third-key"]).status == 200)
            #expect(try await h.get("/facilities/v2/", license: nil, key: "jane-new-key").status == 401)
            #expect(try await h.get("/facilities/v2/", license: nil, key: "jane-third-key").status == 200)
            #expect(try await h.control(.POST, "keys/revoke", ["user": "nobody"]).status == 404)
        }
    }

    @Test func missingLicenseNumberIsA400Message() async throws {
        try await withSandbox { (h: Harness) async throws in
            for path in ["/plants/v2/vegetative", "/packages/v2/active", "/locations/v2/active", "/packages/v2/adjustments"] {
                let result = try await h.get(path, license: nil)
                #expect(result.status == 400, "\(path)")
                #expect(result.json?[field: "Message"]?.stringValue?.contains("licenseNumber") == true)
            }
            let write = try await h.request(.PUT, "/plants/v2/harvest", auth: Harness.credentials(SandboxDemo.janeKey),
                                            body: JSONValue.array([harvestObject(SandboxDemo.floweringPlantTag(1))]).bytes)
            #expect(write.status == 400)
            #expect(write.json?[field: "Message"] != nil)
            // Global lists need no license.
            #expect(try await h.get("/unitsofmeasure/v2/active", license: nil).status == 200)
            #expect(try await h.get("/plants/v2/waste/methods/all", license: nil).status == 200)
        }
    }

    @Test func facilitiesAndGlobalListsAreBareArrays() async throws {
        try await withSandbox { (h: Harness) async throws in
            let jane = try await h.get("/facilities/v2/", license: nil)
            let licenses = jane.json?.arrayValue?.compactMap { $0[field: "License"]?[field: "Number"]?.stringValue }
            #expect(licenses == ["LIC-0001", "LIC-0002"])
            let john = try await h.get("/facilities/v2", license: nil, key: SandboxDemo.johnKey)
            #expect(john.json?.arrayValue?.count == 1)
            let owner = try await h.get("/facilities/v2/", license: nil, key: SandboxDemo.ownerKey)
            #expect(owner.json?[0]?[field: "IsOwner"]?.boolValue == true)
            #expect(jane.json?[0]?[field: "IsOwner"]?.boolValue == false)
            let units = try await h.get("/unitsofmeasure/v2/active", license: nil)
            let grams = units.json?.arrayValue?.first { $0[field: "Name"]?.stringValue == "Grams" }
            #expect(grams?[field: "QuantityType"]?.stringValue == "WeightBased")
            let methods = try await h.get("/wastemethods/v2/", license: nil)
            #expect(methods.json?.arrayValue?.count == 4)
        }
    }

    @Test func referenceListsArePagedEnvelopes() async throws {
        try await withSandbox { (h: Harness) async throws in
            let locations = try await h.get("/locations/v2/active")
            let names = locations.json?.data.compactMap { $0[field: "Name"]?.stringValue } ?? []
            #expect(names.contains("Drying Room") && names.contains("Vault") && names.contains("Veg Room"))
            let reasons = try await h.get("/packages/v2/adjust/reasons")
            let scale = reasons.json?.data.first { $0[field: "Name"]?.stringValue == "Scale Variance" }
            #expect(scale?[field: "RequiresNote"]?.boolValue == true)
            let waste = try await h.get("/plants/v2/waste/reasons")
            #expect(waste.json?.data.isEmpty == false)
            for path in ["/sublocations/v2/active", "/strains/v2/active", "/items/v2/active", "/plants/v2/waste/methods/all"] {
                let result = try await h.get(path)
                #expect(result.status == 200, "\(path)")
                #expect((result.json?[field: "Total"]?.intValue ?? 0) > 0, "\(path)")
            }
        }
    }

    @Test func pagingEnvelope() async throws {
        try await withSandbox { (h: Harness) async throws in
            let last = try await h.get("/plants/v2/vegetative", query: ["pageNumber": "8", "pageSize": "20"])
            let json = try #require(last.json)
            #expect(json[field: "Total"]?.intValue == 150)
            #expect(json[field: "TotalRecords"]?.intValue == 150)
            #expect(json[field: "TotalPages"]?.intValue == 8)
            #expect(json[field: "RecordsOnPage"]?.intValue == 10)
            #expect(json[field: "Page"]?.intValue == 8)
            #expect(json[field: "CurrentPage"]?.intValue == 8)
            #expect(json[field: "PageSize"]?.intValue == 20)
            #expect(json.labels.first == SandboxDemo.plantTag(141))
            let first = try await h.get("/plants/v2/vegetative", query: ["pageNumber": "1", "pageSize": "5"])
            #expect(first.json?.labels == (1...5).map(SandboxDemo.plantTag))
            // Walking every page yields every plant once.
            var seen: [String] = []
            for page in 1...8 {
                seen += (try await h.get("/plants/v2/vegetative", query: ["pageNumber": "\(page)", "pageSize": "20"])).json?.labels ?? []
            }
            #expect(seen == (1...150).map(SandboxDemo.plantTag))
            let tooBig = try await h.get("/plants/v2/vegetative", query: ["pageSize": "21"])
            #expect(tooBig.status == 400)
            #expect(tooBig.json?[field: "Message"] != nil)
            let unpaged = try await h.get("/packages/v2/active")
            #expect(unpaged.json?.data.count == 300)
        }
    }

    @Test func windowFiltering() async throws {
        let clock = ManualClock(MetrcTimestamp.parse("2025-07-01T12:00:00Z")!)
        try await withSandbox(configuration: SandboxConfiguration(now: { clock.now })) { (h: Harness) async throws in
            let window = ["lastModifiedStart": "2025-06-01T01:00:00Z", "lastModifiedEnd": "2025-06-01T10:00:00Z"]
            let plants = try await h.get("/plants/v2/vegetative", query: window)
            #expect(plants.json?.labels == (1...10).map(SandboxDemo.plantTag))
            let packages = try await h.get("/packages/v2/active", query: window)
            #expect(packages.json?[field: "Total"]?.intValue == 10)
            // A change moves the record into the window of "now".
            let moved = SandboxDemo.vegetativePlantTag(100)
            #expect(try await h.write(.PUT, "/plants/v2/location", [movePlantObject(moved, date: "2025-07-01")]).status == 200)
            let recent = try await h.get("/plants/v2/vegetative", query: [
                "lastModifiedStart": "2025-07-01T11:59:00Z", "lastModifiedEnd": "2025-07-01T12:01:00Z",
            ])
            #expect(recent.json?.labels == [moved])
            let adjustments = try await h.get("/packages/v2/adjustments", query: [
                "lastModifiedStart": "2025-07-01T11:00:00Z", "lastModifiedEnd": "2025-07-01T13:00:00Z",
            ])
            #expect(adjustments.json?[field: "Total"]?.intValue == 0)
            let reversed = try await h.get("/plants/v2/vegetative", query: [
                "lastModifiedStart": "2025-07-02T00:00:00Z", "lastModifiedEnd": "2025-07-01T00:00:00Z",
            ])
            #expect(reversed.status == 400)
            let garbage = try await h.get("/plants/v2/vegetative", query: ["lastModifiedStart": "last tuesday"])
            #expect(garbage.status == 400)
        }
    }

    @Test func unknownLabelsAndPathsAre404AndWrongMethods405() async throws {
        try await withSandbox { (h: Harness) async throws in
            #expect(try await h.get("/plants/v2/ABCDEF012345670000000001").status == 404)
            #expect(try await h.get("/packages/v2/\(SandboxDemo.plantTag(1))").status == 404)
            #expect(try await h.get("/plants/v1/vegetative").status == 404)
            #expect(try await h.get("/plants/v2/harvest").status == 405)
            #expect(try await h.get("/plants/v2/\(SandboxDemo.secondLicensePlantTag(1))").status == 404)
            #expect(try await h.get("/plants/v2/\(SandboxDemo.secondLicensePlantTag(1))", license: SandboxDemo.secondLicense).status == 200)
        }
    }

    @Test func controlAPIAddsLocationsAndServesState() async throws {
        try await withSandbox { (h: Harness) async throws in
            let created = try await h.control(.POST, "locations", ["license": "LIC-0001", "name": "Clone Room"])
            #expect(created.status == 201)
            try await h.server.addLocation(license: SandboxDemo.license, name: "Mother Room")
            #expect(try await h.control(.POST, "sublocations", ["license": "LIC-0001", "name": "Tray 9"]).status == 201)
            let move = try await h.write(.PUT, "/plants/v2/location", [movePlantObject(SandboxDemo.plantTag(1), location: "Clone Room", sublocation: "Tray 9")])
            #expect(move.status == 200, "\(move.text)")
            #expect(try await h.write(.PUT, "/plants/v2/location", [movePlantObject(SandboxDemo.plantTag(2), location: "Mother Room")]).status == 200)
            #expect(try await h.control(.POST, "locations", ["license": "LIC-0001", "name": "Clone Room"]).status == 400)
            let state = try await h.control(.GET, "state")
            let decoded = try SandboxState.decode(json: Data(state.body))
            #expect(decoded.plant(label: SandboxDemo.plantTag(1), license: SandboxDemo.license)?.location == "Clone Room")
            #expect(try await h.control(.GET, "health").json?[field: "ok"]?.boolValue == true)
            #expect(try await h.control(.GET, "nonsense").status == 404)
            // Replacing the state over HTTP.
            var small = SandboxState.demo()
            small.plants = Array(small.plants.prefix(3))
            let put = try await h.request(.PUT, "/_sandbox/state", auth: nil, body: Array(try small.encodedJSON()))
            #expect(put.status == 200)
            #expect(try await h.get("/plants/v2/vegetative").json?[field: "Total"]?.intValue == 3)
        }
    }
}
