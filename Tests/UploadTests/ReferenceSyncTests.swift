import Foundation
import Logging
import Metrc
import MetrcSandbox
import OutlawProtocol
import OutlawStore
import OutlawTestSupport
import Reference
import Synchronization
import Testing

/// The reference sync and `pull` against the sandbox over real HTTP and a real store file (no daemon: the
/// end-to-end tests drive the real one).
// Serialized: each test drives its in-process sandbox at Metrc's full 50 GET/s, and this process's two cooperative
// threads serve every in-process sandbox of every test running beside these.
@Suite("Reference sync against the sandbox", .serialized, .timeLimit(.minutes(5)))
struct ReferenceSyncTests {
    static let license = SandboxDemo.license

    struct Rig {
        let dir: TempDirectory
        let store: Store
        let sandbox: MetrcSandboxServer
        let client: MetrcClient
        let sync: ReferenceSync
        let pull: ReferencePull

        static func make(_ configuration: SandboxConfiguration = .init(), limits: ReadLimits = ReadLimits()) async throws -> Rig {
            let dir = try TempDirectory("outlawd-reference")
            let store = try Store(path: dir.file("outlawd.sqlite"), pinRounds: 1000)
            let sandbox = MetrcSandboxServer(state: SandboxState.pagedDemo(), configuration: configuration)
            try await sandbox.start()
            let client = MetrcClient(configuration: .init(baseURL: sandbox.baseURL, vendorKey: SandboxDemo.vendorKey, requestTimeout: 60,
                                                          readLimits: limits))
            let sync = ReferenceSync(store: store, client: client, defaultKey: SandboxDemo.ownerKey,
                                     configuration: ReferenceSyncConfiguration(licenses: [license]), logger: Logger(label: "reference-tests"))
            let pull = ReferencePull(store: store, defaultLicense: license, licenses: [license, SandboxDemo.secondLicense])
            return Rig(dir: dir, store: store, sandbox: sandbox, client: client, sync: sync, pull: pull)
        }

        func shutdown() async throws {
            try await client.shutdown()
            try await sandbox.shutdown()
        }

        /// A pull's lines: items and removed keys by kind, and the final line.
        func pull(_ kinds: [String]?, since: String? = nil) async throws -> Pulled {
            let lines = Lines()
            let last = await pull.answer(.init(kinds: kinds, since: since, license: nil)) { reply in lines.append(reply.line) }
            var pulled = Pulled(final: try #require(JSON.parse(Array(last.line.utf8))))
            for line in lines.all {
                let value = try #require(JSON.parse(Array(line.utf8)))
                #expect(value["op"] == "data")
                let kind = try #require(value["kind"]?.stringValue)
                if let items = value["items"]?.arrayValue {
                    #expect(items.count <= 500)
                    pulled.items[kind, default: []] += items
                }
                if let removed = value["removed"]?.arrayValue { pulled.removed[kind, default: []] += removed.compactMap(\.stringValue) }
            }
            return pulled
        }

        /// Applies a Metrc write as a user of the facility would (the sandbox stamps the records it changes).
        func write(_ action: MetrcAction, _ objects: [JSON]) async throws {
            let response = await client.send(action, license: license, objects: objects, userKey: SandboxDemo.ownerKey)
            guard case .accepted = response else { throw LineClient.Failure(description: "\(action) not accepted: \(response)") }
        }
    }

    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    struct Pulled {
        let final: JSON
        var items: [String: [JSON]] = [:]
        var removed: [String: [String]] = [:]

        var cursor: String? { final["cursor"]?.stringValue }
        func labels(_ kind: String) -> [String] { (items[kind] ?? []).compactMap { $0["label"]?.stringValue } }
        func count(_ kind: String) -> Int? { final["counts"]?[kind]?.integerValue }
    }

    static var today: String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date())
    }

    @Test func firstSyncReadsEveryPageThenAnIncrementalSyncAndAPullWithACursorGetExactlyTheChanges() async throws {
        let rig = try await Rig.make()
        do {
            let state = await rig.sandbox.state()
            let activePlants = state.plants.filter { $0.license == Self.license && $0.isActive }
            let activePackages = state.packages.filter { $0.license == Self.license && $0.isActive }
            let first = await rig.sync.syncAll(forceFull: false)
            #expect(!first.failed, "\(first)")
            #expect(first.kinds.count == ReferenceKind.allCases.count && first.kinds.allSatisfy(\.full))
            func report(_ kind: ReferenceKind, _ r: SyncReport) -> KindSyncReport? { r.kinds.first { $0.kind == kind } }
            #expect(report(.plants, first)?.changed == activePlants.count)
            #expect(report(.plants, first)?.requests ?? 0 >= activePlants.count / 20, "every page read")
            #expect(report(.packages, first)?.changed == activePackages.count)
            #expect(report(.locations, first)?.changed == 32)
            #expect(first.kinds.allSatisfy { $0.rateLimited == 0 })

            let all = try await rig.pull(nil)
            #expect(all.count("plants") == activePlants.count)
            #expect(Set(all.labels("plants")) == Set(activePlants.map(\.label)))
            #expect(all.count("packages") == activePackages.count)
            for kind in ReferenceKind.allCases { #expect((all.count(kind.rawValue) ?? 0) > 20, "\(kind)") }
            #expect(all.removed.isEmpty)
            #expect(all.final["synced_at"]?.stringValue != nil)
            let cursor = try #require(all.cursor)

            // Changes at Metrc: a new plant, a harvested plant, a moved package.
            var changed = await rig.sandbox.state()
            let newLabel = "1A4FF0000000000000099999"
            changed.plants.append(SandboxPlant(id: 99_999, license: Self.license, label: newLabel, strain: "OG Kush", location: "Veg Room",
                                               growthPhase: .vegetative, plantedDate: MetrcDay(year: 2025, month: 3, day: 1)!, lastModified: Date()))
            await rig.sandbox.replaceState(changed)
            let harvested = try #require(activePlants.first { $0.growthPhase == .flowering }).label
            try await rig.write(.harvestPlants, [["Plant": .string(harvested), "Weight": 100, "UnitOfWeight": "Grams",
                                                  "DryingLocation": "Drying Room", "HarvestName": nil, "PatientLicenseNumber": nil,
                                                  "ActualDate": .string(Self.today)]])
            let moved = activePackages[0].label
            try await rig.write(.movePackages, [["Label": .string(moved), "Location": "Quarantine", "MoveDate": .string(Self.today)]])

            let second = await rig.sync.syncAll(forceFull: false)
            #expect(!second.failed, "\(second)")
            #expect(report(.plants, second)?.full == false)
            #expect(report(.plants, second)?.changed == 1)
            #expect(report(.plants, second)?.removed == 1)
            #expect(report(.packages, second)?.changed == 1)
            #expect(report(.locations, second)?.changed == 0)

            let since = try await rig.pull(["plants", "packages", "locations"], since: cursor)
            #expect(since.labels("plants") == [newLabel])
            #expect(since.removed["plants"] == [harvested])
            #expect(since.labels("packages") == [moved])
            #expect(since.items["packages"]?.first?["location"] == "Quarantine")
            #expect(since.items["locations"] == nil)
            #expect(since.count("plants") == 1 && since.count("locations") == 0)

            // Nothing changed since the new cursor; a kind the cursor did not cover comes whole.
            let nextCursor = try #require(since.cursor)
            let again = try await rig.pull(["plants", "strains"], since: nextCursor)
            #expect(again.items["plants"] == nil && again.removed.isEmpty)
            #expect(again.count("strains") == 30)
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    @Test func badPullsAreRefusedWithAReason() async throws {
        let rig = try await Rig.make()
        do {
            _ = await rig.sync.syncAll(forceFull: false)
            for (kinds, since, words) in [(["plants", "trees"], nil, "unknown kind"), ([], nil, "empty"),
                                          (["plants"], "not-a-cursor", "cursor")] as [([String], String?, String)] {
                let lines = Lines()
                let reply = await rig.pull.answer(.init(kinds: kinds, since: since, license: nil)) { lines.append($0.line) }
                #expect(reply["op"] == "error" && reply["code"] == "bad_request", "\(reply.line)")
                #expect(reply["message"]?.stringValue?.contains(words) == true, "\(reply.line)")
                #expect(lines.all.isEmpty)
            }
            let other = await rig.pull.answer(.init(kinds: ["plants"], since: nil, license: "LIC-9999")) { _ in }
            #expect(other["code"] == "bad_request")
            // A cursor of one license is refused for another.
            let cursor = try #require(try await rig.pull(["plants"]).cursor)
            let mixed = await rig.pull.answer(.init(kinds: ["plants"], since: cursor, license: SandboxDemo.secondLicense)) { _ in }
            #expect(mixed["code"] == "bad_request")
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    @Test func aRevokedDefaultKeyIsRecordedAndTheLastGoodCopyIsStillServed() async throws {
        let rig = try await Rig.make()
        do {
            #expect(!(await rig.sync.syncAll(forceFull: false)).failed)
            #expect(await rig.sandbox.revokeUserKey(SandboxDemo.ownerKey))
            let failed = await rig.sync.syncAll(forceFull: true)
            #expect(failed.failed)
            #expect(failed.kinds.allSatisfy { $0.error?.contains("Default key refused by Metrc (401)") == true }, "\(failed)")
            #expect(try rig.store.setting(ReferenceSync.problemSetting)?.contains("Default Metrc key was refused") == true)
            let states = try rig.store.referenceSyncStates(license: Self.license)
            #expect(states.count == ReferenceKind.allCases.count)
            #expect(states.allSatisfy { $0.lastError != nil && $0.lastSuccessAt != nil && $0.count > 0 })
            let served = try await rig.pull(["plants"])
            #expect(served.count("plants") == 300)
            #expect(served.final["synced_at"]?.stringValue != nil)

            #expect(await rig.sandbox.restoreUserKey(SandboxDemo.ownerKey))
            #expect(!(await rig.sync.syncAll(forceFull: false)).failed)
            #expect(try rig.store.setting(ReferenceSync.problemSetting) == nil)
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    @Test func aWindowMetrcRefusesAsTooWideIsReadInHalves() async throws {
        // Two years at most: the full sync's window (from 2010) is split until Metrc takes it.
        let rig = try await Rig.make(SandboxConfiguration(maxModifiedWindow: 2 * 365 * 86_400))
        do {
            let report = await rig.sync.syncAll(forceFull: false)
            #expect(!report.failed, "\(report)")
            #expect(try await rig.pull(["plants"]).count("plants") == 300)
            #expect(report.kinds.first { $0.kind == .plants }.map { $0.requests > 15 + 2 } == true)
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    @Test func aBurstOfSyncsAndReadsAtTheDefaultLimitsNeverGets429() async throws {
        let rig = try await Rig.make()
        do {
            let tally = ReadTally()
            let reports = try await withThrowingTaskGroup(of: [KindSyncReport].self) { group in
                for _ in 0..<2 { group.addTask { await rig.sync.syncAll(forceFull: true).kinds } }
                // Read-backs of the uploader draw from the same budget.
                group.addTask {
                    try await MetrcClient.$readTally.withValue(tally) {
                        for _ in 0..<30 {
                            _ = try await rig.client.list(path: "/packages/v2/adjustments", license: Self.license, userKey: SandboxDemo.ownerKey,
                                                          since: Date().addingTimeInterval(-3600), until: Date())
                        }
                    }
                    return []
                }
                var all: [KindSyncReport] = []
                for try await r in group { all += r }
                return all
            }
            let requests = reports.reduce(0) { $0 + $1.requests } + tally.requests
            #expect(requests > 100, "the burst is more than two seconds of GETs at 50/s")
            #expect(reports.allSatisfy { $0.error == nil }, "\(reports.compactMap(\.error))")
            #expect(reports.reduce(0) { $0 + $1.rateLimited } + tally.rateLimited == 0)
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    /// Pages follow (change, key) across change numbers and ties, each item once, removed ones apart.
    @Test func pagesWalkEveryItemOnceInChangeOrder() async throws {
        let dir = try TempDirectory("outlawd-reference-pages")
        let store = try Store(path: dir.file("outlawd.sqlite"), pinRounds: 1000)
        func item(_ key: String, _ v: Int) -> ReferenceItem { ReferenceItem(key: key, json: #"{"name":"\#(key)","v":\#(v)}"#) }
        _ = try store.applyReference(license: Self.license, kind: .strains, items: (1...7).map { item("s\($0)", 0) }, removedKeys: [])
        _ = try store.applyReference(license: Self.license, kind: .strains, items: [item("s3", 1), item("s9", 1), item("s0", 1)],
                                     removedKeys: ["s5"])
        _ = try store.applyReference(license: Self.license, kind: .strains, items: [item("s1", 2)], removedKeys: [])
        let upTo = try store.referenceChangeCount(license: Self.license)
        #expect(upTo == 3)
        func walk(removed: Bool, since: Int64) throws -> [String] {
            var keys: [String] = []
            var position: (change: Int64, key: String)?
            while true {
                let page = try store.referencePage(license: Self.license, kind: .strains, since: since, upTo: upTo, removed: removed,
                                                   after: position, limit: 2)
                keys += page.items.map(\.key)
                guard let last = page.items.last, page.items.count == 2 else { return keys }
                position = (last.change, last.key)
            }
        }
        #expect(try walk(removed: false, since: 0) == ["s2", "s4", "s6", "s7", "s0", "s3", "s9", "s1"])
        #expect(try walk(removed: true, since: 0) == ["s5"])
        #expect(try walk(removed: false, since: 1) == ["s0", "s3", "s9", "s1"])
        #expect(try walk(removed: false, since: 2) == ["s1"])
    }

    @Test func anUploadMetrcAcceptedChangesTheCopyAtOnce() async throws {
        let dir = try TempDirectory("outlawd-reference-upload")
        let store = try Store(path: dir.file("outlawd.sqlite"), pinRounds: 1000)
        let plant = SandboxDemo.plantTag(1)
        let package = SandboxDemo.packageTag(1)
        func item(_ fields: [String: JSON], _ key: String) -> ReferenceItem {
            ReferenceItem(key: key, json: JSON.object(fields).serialized(sortedKeys: true))
        }
        _ = try store.applyReference(license: Self.license, kind: .plants, items: [
            item(["label": .string(plant), "location": "Veg Room", "sublocation": "Bench 1", "strain": "OG Kush", "phase": "Vegetative"], plant),
            item(["label": .string(SandboxDemo.plantTag(2)), "location": "Veg Room", "sublocation": nil, "strain": "OG Kush",
                  "phase": "Vegetative"], SandboxDemo.plantTag(2)),
        ], removedKeys: [])
        _ = try store.applyReference(license: Self.license, kind: .packages, items: [
            item(["label": .string(package), "quantity": 10, "unit": "Grams", "item": "Buds", "location": "Vault", "sublocation": nil], package),
        ], removedKeys: [])
        let before = try store.referenceChangeCount(license: Self.license)
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let token = try store.addDevice(name: "HH-1", actor: "test")
        let device = try #require(try await store.authenticateDevice(name: "HH-1", token: token))
        let at = "2026-11-28T14:03:11-08:00"
        let events: [JSON] = [
            ["seq": 1, "type": "plant.move", "at": .string(at), "plant": .string(plant), "location": "Flower Room 1"],
            ["seq": 2, "type": "package.adjust", "at": .string(at), "package": .string(package), "quantity": -2.5, "unit": "Grams",
             "reason": "Drying"],
            ["seq": 3, "type": "plant.destroy", "at": .string(at), "plant": .string(SandboxDemo.plantTag(2)), "waste_weight": 1,
             "waste_unit": "Grams", "waste_method": "Compost", "waste_material": "Soil", "reason": "Pests"],
        ]
        let validator = BatchValidator(maxBatchEvents: 10, defaultLicense: Self.license, licenses: [])
        let batch = try validator.validate(["id": "b1", "user": "jane", "events": .array(events)], now: Date()).get()
        _ = try store.commit([IncomingBatch(deviceID: device.id, session: "s", batch: batch)])
        let ids = try #require(try store.batchDetail(device: "HH-1", id: "b1")).1.map(\.id)
        try store.resolve(ids.map { ($0, .uploaded(metrcID: nil)) })

        #expect(try store.referenceChangeCount(license: Self.license) > before)
        let page = try store.referencePage(license: Self.license, kind: .plants, since: before, upTo: .max, removed: false,
                                           after: nil, limit: 10)
        #expect(page.items.count == 1)
        let first = try #require(page.items.first)
        let moved = try #require(JSON.parse(Array(first.json.utf8)))
        #expect(moved["location"] == "Flower Room 1" && moved["sublocation"] == .null)
        let removed = try store.referencePage(license: Self.license, kind: .plants, since: before, upTo: .max, removed: true,
                                              after: nil, limit: 10)
        #expect(removed.items.map(\.key) == [SandboxDemo.plantTag(2)])
        let adjusted = try store.referencePage(license: Self.license, kind: .packages, since: before, upTo: .max, removed: false,
                                               after: nil, limit: 10)
        #expect(adjusted.items.first.flatMap { JSON.parse(Array($0.json.utf8)) }?["quantity"] == 7.5)
    }
}
