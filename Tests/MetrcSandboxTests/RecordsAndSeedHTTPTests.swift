import Foundation
import Testing
@testable import MetrcSandbox
import NIOHTTP1
import OutlawTestSupport

@Suite("Adding records and seeding, for incremental syncs")
struct RecordsAndSeedHTTPTests {
    static let t0 = MetrcTimestamp.parse("2025-07-01T12:00:00Z")!

    static func configuration(_ clock: ManualClock) -> SandboxConfiguration {
        SandboxConfiguration(rateLimits: .unlimited, maxModifiedWindow: 24 * 3600, now: { clock.now })
    }

    /// A window around the clock's start (12:00) that the demo data (June 2025) is outside of.
    static var today: [String: String] { window(t0.addingTimeInterval(-3600), t0.addingTimeInterval(3600)) }

    static let newPlant = "1A4FF0700000000000000001"
    static let newPlant2 = "1A4FF0700000000000000002"
    static let newPackage = "1A4FF0800000000000000001"

    @Test func plantsPackagesStrainsAndItemsAddedOverHTTPShowInTheLists() async throws {
        let clock = ManualClock(Self.t0)
        try await withSandbox(configuration: Self.configuration(clock)) { (h: Harness) async throws in
            let strain = try await h.control(.POST, "strains", ["license": "LIC-0001", "name": "Gelato", "indicaPercentage": 55, "sativaPercentage": 45])
            #expect(strain.status == 201, "\(strain.text)")
            #expect(strain.json?[field: "Name"]?.stringValue == "Gelato")
            let item = try await h.control(.POST, "items", ["license": "LIC-0001", "name": "Gelato Buds", "category": "Buds",
                                                            "unitOfMeasure": "grams", "strain": "gelato"])
            #expect(item.status == 201, "\(item.text)")
            #expect(item.json?[field: "UnitOfMeasureName"]?.stringValue == "Grams")
            #expect(item.json?[field: "StrainName"]?.stringValue == "Gelato")

            let plant = try await h.control(.POST, "plants", [
                "license": "LIC-0001", "label": .string(Self.newPlant), "strain": "Gelato", "location": "flower room 1",
                "sublocation": "Bench 2", "phase": "flowering"])
            #expect(plant.status == 201, "\(plant.text)")
            #expect(plant.json?[field: "Label"]?.stringValue == Self.newPlant)
            #expect(plant.json?[field: "GrowthPhase"]?.stringValue == "Flowering")
            #expect(plant.json?[field: "LocationName"]?.stringValue == "Flower Room 1")
            #expect(plant.json?[field: "LastModified"]?.stringValue == "2025-07-01T12:00:00+00:00")
            // An array adds several (and answers an array); no phase is vegetative.
            let more = try await h.control(.POST, "plants", [[
                "license": "LIC-0001", "label": .string(Self.newPlant2), "strain": "OG Kush", "location": "Veg Room"]])
            #expect(more.status == 201, "\(more.text)")
            #expect(more.json?.arrayValue?.first?[field: "GrowthPhase"]?.stringValue == "Vegetative")
            let package = try await h.control(.POST, "packages", [
                "license": "LIC-0001", "label": .string(Self.newPackage), "item": "Gelato Buds", "quantity": 250.5,
                "unitOfMeasure": "Grams", "location": "Vault", "sublocation": "Shelf A"])
            #expect(package.status == 201, "\(package.text)")
            #expect(package.json?[field: "Quantity"]?.doubleValue == 250.5)
            #expect(package.json?[field: "Item"]?[field: "Name"]?.stringValue == "Gelato Buds")

            #expect(try await h.allLabels("/plants/v2/flowering", query: Self.today) == [Self.newPlant])
            #expect(try await h.allLabels("/plants/v2/vegetative", query: Self.today) == [Self.newPlant2])
            #expect(try await h.allLabels("/packages/v2/active", query: Self.today) == [Self.newPackage])
            let strains = try await h.get("/strains/v2/active", query: Self.today)
            #expect(strains.json?.data.compactMap { $0[field: "Name"]?.stringValue } == ["Gelato"])
            #expect(strains.json?.data.first?[field: "IsUsed"]?.boolValue == true)
            let items = try await h.get("/items/v2/active", query: Self.today)
            #expect(items.json?.data.compactMap { $0[field: "Name"]?.stringValue } == ["Gelato Buds"])
            #expect(items.json?.data.first?[field: "IsUsed"]?.boolValue == true)
            // The new records take Metrc writes like any other.
            let harvest = try await h.write(.PUT, "/plants/v2/harvest", [harvestObject(Self.newPlant, date: "2025-07-01")])
            #expect(harvest.status == 200, "\(harvest.text)")
        }
    }

    @Test func badRecordsAreRefusedAndAnArrayIsAllOrNothing() async throws {
        let clock = ManualClock(Self.t0)
        try await withSandbox(configuration: Self.configuration(clock)) { (h: Harness) async throws in
            let good: JSONValue = ["license": "LIC-0001", "label": .string(Self.newPlant), "strain": "OG Kush", "location": "Veg Room"]
            func plant(_ changes: [String: JSONValue]) -> JSONValue {
                var fields = good.objectValue ?? [:]
                for (key, value) in changes { fields[key] = value }
                return .object(fields)
            }
            let cases: [(JSONValue, Int, String)] = [
                (plant(["label": .string(SandboxDemo.plantTag(1))]), 400, "already in use"),
                (plant(["label": .string(SandboxDemo.packageTag(1))]), 400, "already in use"),
                (plant(["label": "1a4ff07000000000000000zz"]), 400, "not valid"),
                (plant(["strain": "Nope Haze"]), 400, "Nope Haze"),
                (plant(["location": "Attic"]), 400, "Attic"),
                (plant(["sublocation": "Shelf Z"]), 400, "Shelf Z"),
                (plant(["phase": "budding"]), 400, "phase"),
                (plant(["label": nil]), 400, "label is required"),
                (plant(["license": "LIC-9999"]), 404, "LIC-9999"),
                (plant(["plantedDate": "2025/01/01"]), 400, "not a valid date"),
                (.array([good, plant(["label": .string(Self.newPlant2), "strain": "Nope Haze"])]), 400, "Nope Haze"),
            ]
            for (body, status, text) in cases {
                let result = try await h.control(.POST, "plants", body)
                #expect(result.status == status, "\(body.serialized): \(result.text)")
                #expect(result.json?[field: "Message"]?.stringValue?.contains(text) == true, "\(text) not in \(result.text)")
            }
            // Not even the valid first object of the refused array was added.
            #expect(await h.server.plant(label: Self.newPlant) == nil)
            let package: JSONValue = ["license": "LIC-0001", "label": .string(Self.newPackage), "item": "Pre-Roll 1g",
                                      "quantity": 5, "unitOfMeasure": "Grams", "location": "Vault"]
            let wrongUnit = try await h.control(.POST, "packages", package)
            #expect(wrongUnit.status == 400)
            #expect(wrongUnit.json?[field: "Message"]?.stringValue?.contains("cannot measure") == true)
            #expect(try await h.control(.POST, "strains", ["license": "LIC-0001", "name": "og kush"]).status == 400)
            #expect(try await h.control(.POST, "items", ["license": "LIC-0001", "name": "X", "unitOfMeasure": "Cubits"]).status == 400)
            #expect(try await h.control(.POST, "packages/finish", ["license": "LIC-0001", "label": .string(Self.newPackage)]).status == 404)
            #expect(await h.server.state() == SandboxState.demo())
        }
    }

    @Test func recordsAddedInProcessShowInTheLists() async throws {
        let clock = ManualClock(Self.t0)
        try await withSandbox(configuration: Self.configuration(clock)) { (h: Harness) async throws in
            let strain = try await h.server.addStrain(license: SandboxDemo.license, name: "Runtz")
            #expect(strain.lastModified == Self.t0)
            let item = try await h.server.addItem(license: SandboxDemo.license, name: "Runtz Pre-Roll",
                                                  category: "Pre-Roll Flower", unitOfMeasure: "Each", strain: "Runtz")
            #expect(item.strain == "Runtz")
            clock.advance(seconds: 5)
            let plant = try await h.server.addPlant(license: SandboxDemo.license, label: Self.newPlant, strain: "runtz",
                                                    location: "Veg Room", sublocation: "Bench 1")
            #expect(plant.strain == "Runtz")
            #expect(plant.growthPhase == .vegetative)
            #expect(plant.lastModified == Self.t0.addingTimeInterval(5))
            #expect(plant.plantedDate == MetrcDay("2025-06-01"))
            let package = try await h.server.addPackage(license: SandboxDemo.license, label: Self.newPackage,
                                                        item: "Runtz Pre-Roll", quantity: 12, location: "Vault")
            #expect(package.unitOfMeasure == "Each")
            #expect(await h.server.plant(label: Self.newPlant) == plant)

            #expect(try await h.allLabels("/plants/v2/vegetative", query: Self.today) == [Self.newPlant])
            #expect(try await h.allLabels("/packages/v2/active", query: Self.today) == [Self.newPackage])
            let strains = try await h.get("/strains/v2/active", query: Self.today)
            #expect(strains.json?.data.compactMap { $0[field: "Name"]?.stringValue } == ["Runtz"])

            clock.advance(seconds: 5)
            let finished = try await h.server.finishPackage(license: SandboxDemo.license, label: Self.newPackage)
            #expect(finished.finishedDate == MetrcDay("2025-07-01"))
            #expect(finished.lastModified == Self.t0.addingTimeInterval(10))
            #expect(try await h.allLabels("/packages/v2/active", query: Self.today).isEmpty)
            #expect(try await h.allLabels("/packages/v2/inactive", query: Self.today) == [Self.newPackage])

            await #expect(throws: MetrcError.badRequest("Tag \(Self.newPlant) is already in use.")) {
                try await h.server.addPlant(license: SandboxDemo.license, label: Self.newPlant, strain: "Runtz", location: "Veg Room")
            }
            do throws(MetrcError) {
                try await h.server.finishPackage(license: SandboxDemo.license, label: Self.newPackage)
                Issue.record("finishing twice was accepted")
            } catch {
                #expect(error.status == 400)
            }
            do throws(MetrcError) {
                try await h.server.seed(license: "LIC-9999", plants: 1, packages: 0)
                Issue.record("seeding an unknown facility was accepted")
            } catch {
                #expect(error.status == 404)
            }
        }
    }

    @Test func seedMakesUniqueValidTagsThatPageThroughTheLists() async throws {
        let clock = ManualClock(Self.t0)
        try await withSandbox(configuration: Self.configuration(clock)) { (h: Harness) async throws in
            let result = try await h.control(.POST, "seed", ["license": "LIC-0001", "plants": 1001, "packages": 250])
            #expect(result.status == 201, "\(result.text)")
            #expect(result.json?[field: "plants"]?.intValue == 1001)
            #expect(result.json?[field: "packages"]?.intValue == 250)
            #expect(result.json?[field: "firstPlantLabel"]?.stringValue == "1A4FF0500000000000000001")
            #expect(result.json?[field: "lastPackageLabel"]?.stringValue == "1A4FF0600000000000000250")

            let vegetative = try await h.allLabels("/plants/v2/vegetative", query: Self.today)
            let flowering = try await h.allLabels("/plants/v2/flowering", query: Self.today)
            let packages = try await h.allLabels("/packages/v2/active", query: Self.today)
            #expect(vegetative.count == 501)
            #expect(flowering.count == 500)
            #expect(packages.count == 250)
            let plants = vegetative + flowering
            #expect(Set(plants).count == 1001)
            #expect(Set(packages).count == 250)
            #expect((plants + packages).allSatisfy(isWellFormedTag))
            #expect(Set(plants).isDisjoint(with: packages))
            // Spread over the facility's strains, locations and items; all valid records of LIC-0001.
            let seeded = await h.server.plants(license: SandboxDemo.license).filter { $0.lastModified == Self.t0 }
            #expect(Set(seeded.map(\.strain)) == Set(SandboxDemo.strains))
            #expect(Set(seeded.map(\.location)) == Set(SandboxDemo.locations))
            let seededPackages = await h.server.packages(license: SandboxDemo.license).filter { $0.lastModified == Self.t0 }
            #expect(Set(seededPackages.map(\.item)).count == 6)
            // Without a window the lists hold the demo records too.
            let all = try await h.get("/plants/v2/vegetative", query: ["pageNumber": "1", "pageSize": "20"])
            #expect(all.json?[field: "TotalRecords"]?.intValue == 150 + 501)

            // Seeding again continues the numbering: still unique, and writes accept the new tags.
            clock.advance(seconds: 60)
            let again = try await h.server.seed(license: SandboxDemo.license, plants: 3, packages: 2)
            #expect(again.plantLabels == ["1A4FF0500000000000001002", "1A4FF0500000000000001003", "1A4FF0500000000000001004"])
            #expect(Set(again.plantLabels).isDisjoint(with: plants))
            let moved = try await h.write(.PUT, "/packages/v2/location", [movePackageObject(again.packageLabels[0], date: "2025-07-01")])
            #expect(moved.status == 200, "\(moved.text)")
        }
    }

    /// Lists filter first and render only the page: the envelope asks for that range alone.
    @Test func theEnvelopeRendersOnlyTheRequestedPage() {
        var rendered: [Range<Int>] = []
        let envelope = pageEnvelope(total: 100_000, page: PageRequest(pageNumber: 3, pageSize: 20)) { range in
            rendered.append(range)
            return range.map { .int($0) }
        }
        #expect(rendered == [40..<60])
        #expect(envelope[field: "Data"]?[0]?.intValue == 40)
        #expect(envelope[field: "TotalRecords"]?.intValue == 100_000)
        let beyond = pageEnvelope(total: 5, page: PageRequest(pageNumber: .max, pageSize: 20)) { range in range.map { .int($0) } }
        #expect(beyond[field: "RecordsOnPage"]?.intValue == 0)
    }

    /// 20,000 plants seed with unique tags and page correctly (the sandbox shares the test process's two
    /// cooperative threads with every other test's sandbox: a bigger seed would starve them). How fast is not asserted (a loaded machine would
    /// make that flaky): `theEnvelopeRendersOnlyTheRequestedPage` checks that a page renders only its records.
    @Test func twentyThousandPlantsSeedAndPage() async throws {
        let clock = ManualClock(Self.t0)
        try await withSandbox(configuration: Self.configuration(clock)) { (h: Harness) async throws in
            let result = try await h.server.seed(license: SandboxDemo.license, plants: 20_000, packages: 5_000)
            #expect(result.plantLabels.count == 20_000)
            #expect(Set(result.plantLabels).count == 20_000)
            for (path, total) in [("/plants/v2/vegetative", 10_150), ("/plants/v2/flowering", 10_150), ("/packages/v2/active", 5_300)] {
                let lastPage = (total + 19) / 20
                for pageNumber in [1, lastPage] {
                    let page = try await h.get(path, query: ["pageNumber": String(pageNumber), "pageSize": "20"])
                    #expect(page.status == 200)
                    #expect(page.json?[field: "TotalRecords"]?.intValue == total, "\(path)")
                    #expect(page.json?[field: "RecordsOnPage"]?.intValue == min(20, total - (pageNumber - 1) * 20),
                            "\(path) page \(pageNumber)")
                }
            }
            let windowed = try await h.get("/plants/v2/flowering", query: Self.today.merging(["pageNumber": "500", "pageSize": "20"]) { $1 })
            #expect(windowed.json?[field: "TotalRecords"]?.intValue == 10_000)
            #expect(windowed.json?.labels == Array(result.plantLabels.enumerated().filter { $0.offset % 2 == 1 }.map(\.element).suffix(20)))
        }
    }

    @Test(.enabled(if: Binaries.exists("metrc-sandbox"), "needs the built metrc-sandbox executable"))
    func theExecutableSeedsAndLimitsWindows() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("metrc-sandbox"))
        process.arguments = ["--port", "0", "--demo", "--no-rate-limits", "--max-window-hours", "0.5",
                             "--seed-plants", "41", "--seed-packages", "7"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let reader = out.fileHandleForReading
        let text = try await offload { () -> String in
            var text = ""
            while !text.contains("licenses:") {
                let data = reader.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            return text
        }
        #expect(text.contains("seeded 41 plants and 7 packages at LIC-0001"), "\(text)")
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("port=") }, "no port= line in \(text)")
        let base = "http://127.0.0.1:\(line.dropFirst(5))"
        let auth = "sandbox-vendor-key:sandbox-jane-key"
        let list = try await runCommand("/usr/bin/curl", ["-s", "-u", auth, base + "/plants/v2/vegetative?licenseNumber=LIC-0001&pageNumber=1&pageSize=20"])
        #expect(JSONValue.parse(list.stdout)?[field: "Total"]?.intValue == 150 + 21)
        let wide = try await runCommand("/usr/bin/curl", ["-s", "-w", "\n%{http_code}", "-u", auth,
            base + "/plants/v2/vegetative?licenseNumber=LIC-0001&lastModifiedStart=2025-06-01T00:00:00Z&lastModifiedEnd=2025-06-01T01:00:00Z"])
        #expect(wide.stdout.hasSuffix("\n400"), "\(wide.stdout)")
        #expect(wide.stdout.contains("0.5 hours apart"))
        let narrow = try await runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", auth,
            base + "/plants/v2/vegetative?licenseNumber=LIC-0001&lastModifiedStart=2025-06-01T00:00:00Z&lastModifiedEnd=2025-06-01T00:30:00Z"])
        #expect(narrow.stdout == "200")

        let noFacility = try await runCommand(Binaries.path("metrc-sandbox"), ["--port", "0", "--seed-plants", "5"])
        #expect(noFacility.status != 0)
        #expect(noFacility.stderr.contains("--demo or --state"), "\(noFacility.stderr)")
    }
}
