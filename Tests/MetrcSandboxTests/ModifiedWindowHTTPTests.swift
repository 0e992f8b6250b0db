import Foundation
import Testing
import MetrcSandbox
import NIOHTTP1

/// `yyyy-mm-ddThh:mm:ssZ`, as Metrc's documentation writes window ends.
func zulu(_ date: Date) -> String {
    MetrcTimestamp.format(date).replacingOccurrences(of: "+00:00", with: "Z")
}

/// A `lastModifiedStart`/`lastModifiedEnd` query from `start` to `end`.
func window(_ start: Date, _ end: Date) -> [String: String] {
    ["lastModifiedStart": zulu(start), "lastModifiedEnd": zulu(end)]
}

extension Harness {
    /// Every label of a list, read page by page (`pageSize` 20) as the daemon's sync reads it.
    func allLabels(_ path: String, license: String = SandboxDemo.license,
                   query: [String: String] = [:]) async throws -> [String] {
        var labels: [String] = []
        var pageNumber = 1
        while true {
            var pageQuery = query
            pageQuery["pageNumber"] = String(pageNumber)
            pageQuery["pageSize"] = "20"
            let page = try await get(path, license: license, query: pageQuery)
            guard page.status == 200, let json = page.json else {
                throw TestFailure("\(path) page \(pageNumber): \(page.status) \(page.text)")
            }
            labels += json.labels
            let totalPages = json[field: "TotalPages"]?.intValue ?? 0
            if pageNumber >= totalPages { return labels }
            pageNumber += 1
        }
    }
}

@Suite("lastModified windows: width limit, and what a window finds after a change")
struct ModifiedWindowHTTPTests {
    static let base = SandboxDemo.baseDate
    static let unlimited = SandboxConfiguration(rateLimits: .unlimited, maxModifiedWindow: 24 * 3600)

    @Test func aWindowWiderThanTheLimitIsA400WithMetrcsMessage() async throws {
        try await withSandbox(configuration: Self.unlimited) { (h: Harness) async throws in
            let wide = try await h.get("/plants/v2/vegetative", query: window(Self.base, Self.base.addingTimeInterval(48 * 3600)))
            #expect(wide.status == 400)
            let message = try #require(wide.json?[field: "Message"]?.stringValue, "not a Message object: \(wide.text)")
            for word in ["lastModifiedStart", "lastModifiedEnd", "apart", "24 hours"] {
                #expect(message.contains(word), "\(word) not in \(message)")
            }
            // One end only: the window is unbounded, so it is too wide too.
            let onlyStart = try await h.get("/packages/v2/active", query: ["lastModifiedStart": zulu(Self.base)])
            #expect(onlyStart.status == 400)
            #expect(onlyStart.json?[field: "Message"]?.stringValue == message)
            let onlyEnd = try await h.get("/strains/v2/active", query: ["lastModifiedEnd": zulu(Self.base)])
            #expect(onlyEnd.status == 400)
            #expect(onlyEnd.json?[field: "Message"]?.stringValue?.contains("apart") == true)
        }
    }

    @Test func aWindowWithinTheLimitAndNoWindowAtAllWork() async throws {
        try await withSandbox(configuration: Self.unlimited) { (h: Harness) async throws in
            // Exactly 24 hours: plants 1...24 were last modified 1...24 hours after the base date.
            let exact = try await h.get("/plants/v2/vegetative", query: window(Self.base, Self.base.addingTimeInterval(24 * 3600)))
            #expect(exact.status == 200, "\(exact.text)")
            #expect(exact.json?.labels == (1...24).map(SandboxDemo.plantTag))
            let paged = try await h.allLabels("/plants/v2/vegetative", query: window(Self.base, Self.base.addingTimeInterval(24 * 3600)))
            #expect(paged == (1...24).map(SandboxDemo.plantTag))
            let none = try await h.get("/plants/v2/vegetative")
            #expect(none.status == 200)
            #expect(none.json?[field: "Total"]?.intValue == 150)
            // Lists that are not filtered by LastModified, and single records, ignore the window.
            let wide = window(Self.base, Self.base.addingTimeInterval(30 * 86_400))
            #expect(try await h.get("/plants/v2/waste/reasons", query: wide).status == 200)
            #expect(try await h.get("/packages/v2/adjust/reasons", query: wide).status == 200)
            #expect(try await h.get("/unitsofmeasure/v2/active", license: nil, query: wide).status == 200)
            #expect(try await h.get("/plants/v2/\(SandboxDemo.plantTag(1))", query: wide).status == 200)
        }
    }

    @Test func withoutALimitAnyWindowIsAccepted() async throws {
        try await withSandbox { (h: Harness) async throws in
            let month = try await h.get("/plants/v2/vegetative", query: window(Self.base, Self.base.addingTimeInterval(30 * 86_400)))
            #expect(month.status == 200)
            #expect(month.json?[field: "Total"]?.intValue == 150)
            #expect(try await h.get("/packages/v2/active", query: ["lastModifiedStart": zulu(Self.base)]).status == 200)
        }
    }

    @Test func theMessageNamesTheLimitInHours() {
        #expect(ModifiedWindow.tooWideMessage(limit: 86_400)
            == "The lastModifiedStart and lastModifiedEnd parameters must not be more than 24 hours apart.")
        #expect(ModifiedWindow.tooWideMessage(limit: 1800).contains("0.5 hours apart"))
        #expect(ModifiedWindow.tooWideMessage(limit: 3600).contains("1 hour apart"))
        #expect(throws: MetrcError.self) { try ModifiedWindow(start: Self.base).checkWidth(atMost: 3600) }
        #expect(throws: MetrcError.self) {
            try ModifiedWindow(start: Self.base, end: Self.base.addingTimeInterval(3601)).checkWidth(atMost: 3600)
        }
        #expect(throws: Never.self) {
            try ModifiedWindow(start: Self.base, end: Self.base.addingTimeInterval(3600)).checkWidth(atMost: 3600)
            try ModifiedWindow().checkWidth(atMost: 3600)
        }
    }

    /// What an incremental sync relies on: each Metrc write stamps the records it changes with the sandbox clock, so a
    /// window covering the change finds them (in the list they now belong to) and a window before it does not.
    @Test func changedRecordsShowInAWindowCoveringTheChangeOnly() async throws {
        let t0 = MetrcTimestamp.parse("2025-07-01T12:00:00Z")!
        let clock = ManualClock(t0)
        let configuration = SandboxConfiguration(rateLimits: .unlimited, maxModifiedWindow: 3600, now: { clock.now })
        try await withSandbox(configuration: configuration) { (h: Harness) async throws in
            let day: JSONValue = "2025-07-01"
            let harvested = SandboxDemo.floweringPlantTag(10)
            let destroyed = SandboxDemo.vegetativePlantTag(7)
            let movedPlant = SandboxDemo.vegetativePlantTag(3)
            let movedPackage = SandboxDemo.packageTag(12)
            let adjusted = SandboxDemo.packageTag(13)
            let finished = SandboxDemo.packageTag(14)
            clock.advance(seconds: 60)
            #expect(try await h.write(.PUT, "/plants/v2/harvest", [harvestObject(harvested, date: day)]).status == 200)
            #expect(try await h.write(.DELETE, "/plants/v2/", [destroyObject(destroyed, date: day)]).status == 200)
            #expect(try await h.write(.PUT, "/plants/v2/location", [movePlantObject(movedPlant, location: "Quarantine", date: day)]).status == 200)
            #expect(try await h.write(.PUT, "/packages/v2/location", [movePackageObject(movedPackage, date: day)]).status == 200)
            #expect(try await h.write(.POST, "/packages/v2/adjust", [adjustObject(adjusted, date: day)]).status == 200)
            #expect(try await h.control(.POST, "packages/finish", ["license": "LIC-0001", "label": .string(finished)]).status == 200)

            let covering = window(t0.addingTimeInterval(30), t0.addingTimeInterval(90))
            let before = window(t0.addingTimeInterval(-1800), t0.addingTimeInterval(30))
            #expect(Set(try await h.allLabels("/plants/v2/inactive", query: covering)) == [harvested, destroyed])
            #expect(try await h.allLabels("/plants/v2/vegetative", query: covering) == [movedPlant])
            #expect(try await h.allLabels("/plants/v2/flowering", query: covering).isEmpty)
            #expect(Set(try await h.allLabels("/packages/v2/active", query: covering)) == [movedPackage, adjusted])
            #expect(try await h.allLabels("/packages/v2/inactive", query: covering) == [finished])
            for path in ["/plants/v2/inactive", "/plants/v2/vegetative", "/plants/v2/flowering", "/packages/v2/active",
                         "/packages/v2/inactive"] {
                #expect(try await h.allLabels(path, query: before).isEmpty, "\(path) before the change")
            }
            // The records say when: LastModified is the sandbox clock at the write.
            let plant = try await h.get("/plants/v2/\(harvested)")
            #expect(plant.json?[field: "LastModified"]?.stringValue == "2025-07-01T12:01:00+00:00")
            // A finished package left the active list for good.
            #expect(!(try await h.allLabels("/packages/v2/active", query: window(t0, t0.addingTimeInterval(3600)))).contains(finished))
        }
    }
}
