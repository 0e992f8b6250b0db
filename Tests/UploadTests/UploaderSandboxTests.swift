import Foundation
import Logging
import Metrc
import MetrcSandbox
import OutlawProtocol
@testable import OutlawStore
import OutlawTestSupport
import Testing
@testable import Upload

typealias JSON = OutlawProtocol.JSONValue

/// The uploader's `send` and its read-back, each on its own: a real store file, the sandbox over real HTTP,
/// no daemon and no upload loop.
@Suite("Uploader send and read-back against the sandbox", .timeLimit(.minutes(3)))
struct UploaderSandboxTests {
    /// A store with jane (personal key) and a device, a running sandbox, and an uploader pointed at it.
    struct Rig {
        let dir: TempDirectory
        let store: Store
        let device: Device
        let sandbox: MetrcSandboxServer
        let client: MetrcClient
        let uploader: Uploader

        static func make(sandboxConfiguration: SandboxConfiguration = .init()) async throws -> Rig {
            let dir = try TempDirectory("outlawd-uploader")
            let store = try Store(path: dir.file("outlawd.sqlite"), pinRounds: 1000)
            try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
            try store.setUserKey(user: "jane", key: SandboxDemo.janeKey, status: .ok, actor: "test")
            let token = try store.addDevice(name: "HH-1", actor: "test")
            let device = try #require(try await store.authenticateDevice(name: "HH-1", token: token))
            let sandbox = MetrcSandboxServer(state: .demo(), configuration: sandboxConfiguration)
            try await sandbox.start()
            let client = MetrcClient(configuration: .init(baseURL: sandbox.baseURL, vendorKey: SandboxDemo.vendorKey, requestTimeout: 30))
            let uploader = Uploader(store: store, client: client, defaultKey: SandboxDemo.ownerKey,
                                    configuration: UploaderConfiguration(backoff: Backoff(base: 0, cap: 0)),
                                    logger: Logger(label: "uploader-tests"))
            return Rig(dir: dir, store: store, device: device, sandbox: sandbox, client: client, uploader: uploader)
        }

        func shutdown() async throws {
            try await client.shutdown()
            try await sandbox.shutdown()
        }

        /// Stores one batch of jane's, as a handheld would have sent it.
        func storeBatch(_ id: String, _ events: [[String: JSON]]) throws {
            let validator = BatchValidator(maxBatchEvents: 5000, defaultLicense: SandboxDemo.license, licenses: [])
            let list = events.enumerated().map { i, e in JSON.object(e.merging(["seq": .number(Double(i + 1))]) { a, _ in a }) }
            let batch = try validator.validate(["id": .string(id), "user": "jane", "events": .array(list)], now: Date()).get()
            #expect(try store.commit([IncomingBatch(deviceID: device.id, session: "s", batch: batch)]) == [.stored(events: events.count)])
        }

        /// What the planner would send now, signed by jane's key.
        func plannedRequests() throws -> [PlannedRequest] {
            let ready = try store.readyEvents(now: Date(), limit: 100)
            #expect(ready.unreadable.isEmpty)
            return UploadPlanner.plan(ready.events, objectsPerRequest: 100) { _ in .personal(key: SandboxDemo.janeKey) }.requests
        }

        func states(_ id: String) throws -> [EventState] {
            try #require(try store.batchDetail(device: "HH-1", id: id)).1.map(\.state)
        }

        func attemptCount() throws -> Int {
            try store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM upload_attempts") ?? 0 }
        }

        /// The plant tags of every object Metrc applied, in order.
        func appliedLabels() async -> [String] {
            await sandbox.writes().flatMap { $0.objects.arrayValue ?? [] }.compactMap { $0[field: "Label"]?.stringValue }
        }

        func attemptOutcomes() throws -> [String] {
            try store.pool.read { db in try String.fetchAll(db, sql: "SELECT outcome FROM upload_attempts ORDER BY id") }
        }
    }

    static let at = "2026-11-28T14:03:11-08:00"

    static func move(_ plant: Int, to location: String = "Flower Room 2") -> [String: JSON] {
        ["type": "plant.move", "at": .string(at), "plant": .string(SandboxDemo.plantTag(plant)), "location": .string(location)]
    }

    static func adjust(_ package: Int) -> [String: JSON] {
        ["type": "package.adjust", "at": .string(at), "package": .string(SandboxDemo.packageTag(package)), "quantity": -2,
         "unit": "Grams", "reason": "Drying"]
    }

    /// One pass of the upload loop sends each tag's next event as soon as Metrc has answered for the one before:
    /// three moves of one plant go out in order in a single pass, beside another tag's event.
    @Test func onePassFollowsEachTagToItsLastEventInOrder() async throws {
        let rig = try await Rig.make()
        do {
            try rig.storeBatch("chain", [Self.move(1, to: "Flower Room 1"), Self.adjust(2), Self.move(1, to: "Flower Room 2"),
                                         Self.move(1, to: "Flower Room 1")])
            #expect(try await rig.uploader.pass())
            #expect(try rig.states("chain") == [.uploaded, .uploaded, .uploaded, .uploaded])
            let moves = await rig.sandbox.writes().filter { $0.action == .movePlants }
            #expect(moves.count == 3, "one request each: a tag's events never share a request")
            let locations = moves.compactMap { $0.objects.arrayValue?.first?[field: "Location"]?.stringValue }
            #expect(locations == ["Flower Room 1", "Flower Room 2", "Flower Room 1"])
            #expect(try await rig.uploader.pass() == false, "nothing left for a second pass")
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    /// A request recorded ahead of a free slot, when uploads are paused before it leaves, is taken back: its
    /// attempt says it was not sent, its event is queued again with nothing to read back, and goes once on resume.
    @Test func requestsRecordedAheadAreTakenBackWhenUploadsPause() async throws {
        let rig = try await Rig.make()
        do {
            let uploader = Uploader(store: rig.store, client: rig.client, defaultKey: SandboxDemo.ownerKey,
                                    configuration: UploaderConfiguration(objectsPerRequest: 1, concurrency: 1, backoff: Backoff(base: 0, cap: 0)),
                                    logger: Logger(label: "uploader-tests"))
            try rig.storeBatch("ahead", [Self.move(1), Self.move(2), Self.move(3)])
            try await rig.sandbox.setFaults(.latency(milliseconds: 1500, method: "PUT"))
            let pass = Task { try await uploader.pass() }
            // One request at Metrc (for 1.5 s) and the next one's attempt recorded, waiting for the slot.
            try await eventually("the next request recorded ahead", every: .milliseconds(10)) { try rig.attemptCount() >= 2 ? true : nil }
            try rig.store.setUploadsPaused(true, actor: "test")
            _ = try await pass.value
            #expect(try rig.attemptOutcomes() == [AttemptOutcome.accepted.rawValue, AttemptOutcome.notSent.rawValue])
            #expect(try rig.states("ahead") == [.uploaded, .queued, .queued])
            #expect(await rig.sandbox.writes().count == 1)

            try await rig.sandbox.setFaults()
            try rig.store.setUploadsPaused(false, actor: "test")
            while try await uploader.pass() {}
            #expect(try rig.states("ahead") == [.uploaded, .uploaded, .uploaded])
            let labels = await rig.appliedLabels()
            #expect(labels.sorted() == [1, 2, 3].map(SandboxDemo.plantTag).sorted(), "each plant moved exactly once")
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    /// Metrc never has more than `concurrency` requests of ours, with attempts recorded ahead of their slots and
    /// with the halves of requests it found too large (this sandbox takes 2 objects a request, we send 4).
    @Test func metrcNeverHasMoreThanConcurrencyRequests() async throws {
        let rig = try await Rig.make(sandboxConfiguration: SandboxConfiguration(objectLimit: 2))
        do {
            let uploader = Uploader(store: rig.store, client: rig.client, defaultKey: SandboxDemo.ownerKey,
                                    configuration: UploaderConfiguration(objectsPerRequest: 4, concurrency: 2, backoff: Backoff(base: 0, cap: 0)),
                                    logger: Logger(label: "uploader-tests"))
            try rig.storeBatch("wide", (1...16).map { Self.move($0) })
            try await rig.sandbox.setFaults(.latency(milliseconds: 200, method: "PUT"))
            rig.sandbox.resetMostWritesAtOnce()
            while try await uploader.pass() {}
            #expect(try rig.states("wide") == Array(repeating: .uploaded, count: 16))
            let labels = await rig.appliedLabels()
            #expect(labels.sorted() == (1...16).map(SandboxDemo.plantTag).sorted(), "each plant moved exactly once")
            #expect(rig.sandbox.mostWritesAtOnce() == 2, "Metrc had \(rig.sandbox.mostWritesAtOnce()) requests at once")
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    @Test func aRejectedRowFailsAloneAndTheRestGoOnTheNextSend() async throws {
        let rig = try await Rig.make()
        do {
            try rig.storeBatch("b", [Self.move(1), Self.move(2, to: "Nowhere Room"), Self.move(3)])
            let first = try rig.plannedRequests()
            #expect(first.count == 1)
            await rig.uploader.send(first[0])
            #expect(try rig.states("b") == [.queued, .failed, .queued])
            let failed = try #require(try rig.store.batchDetail(device: "HH-1", id: "b")).1[1]
            #expect(failed.message?.contains("Nowhere Room") == true, "\(failed.message ?? "")")
            #expect(await rig.sandbox.writes().isEmpty, "Metrc applies nothing of a request with a bad row")

            let second = try rig.plannedRequests()
            #expect(second.map { $0.events.count } == [2])
            await rig.uploader.send(second[0])
            #expect(try rig.states("b") == [.uploaded, .failed, .uploaded])
            let writes = await rig.sandbox.writes()
            #expect(writes.count == 1 && writes.allSatisfy { $0.userName == SandboxDemo.janeUserName })
            #expect(try rig.attemptOutcomes() == [AttemptOutcome.rejected.rawValue, AttemptOutcome.accepted.rawValue])
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    @Test func anAdjustmentAppliedThenFailedIsReadBackAndNeverSentAgain() async throws {
        let rig = try await Rig.make()
        do {
            try rig.storeBatch("adj", [Self.adjust(2)])
            try await rig.sandbox.setFaults(.applyThenFail(status: 500, count: 1))
            await rig.uploader.send(try rig.plannedRequests()[0])
            // The outcome is unknown: queued again, marked for a read-back.
            let unknown = try rig.store.readyEvents(now: Date().addingTimeInterval(1), limit: 10).events
            #expect(unknown.count == 1 && unknown[0].unknownSince != nil)
            #expect(await rig.sandbox.adjustments(license: SandboxDemo.license).count == 1)

            let resend = await rig.uploader.reconciler.reconcile(unknown) { _ in .personal(key: SandboxDemo.janeKey) }
            #expect(resend.isEmpty, "Metrc's history shows it applied: nothing to resend")
            #expect(try rig.states("adj") == [.uploaded])
            #expect(await rig.sandbox.adjustments(license: SandboxDemo.license).count == 1)
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    @Test func aMoveThatFailedBeforeMetrcAppliedItIsSentAgain() async throws {
        let rig = try await Rig.make()
        do {
            try rig.storeBatch("mv", [Self.move(7, to: "Quarantine")])
            try await rig.sandbox.setFaults(.error(status: 503, count: 1))
            await rig.uploader.send(try rig.plannedRequests()[0])
            let unknown = try rig.store.readyEvents(now: Date().addingTimeInterval(1), limit: 10).events
            #expect(unknown.count == 1 && unknown[0].unknownSince != nil)

            let resend = await rig.uploader.reconciler.reconcile(unknown) { _ in .personal(key: SandboxDemo.janeKey) }
            #expect(resend.map(\.id) == unknown.map(\.id), "the plant is not in Quarantine: the move goes again")
            #expect(try rig.states("mv") == [.queued])
            #expect(try rig.store.readyEvents(now: Date().addingTimeInterval(1), limit: 10).events.first?.unknownSince == nil)
            #expect(await rig.sandbox.writes().isEmpty)
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }

    static func manicure(_ plant: String) -> [String: JSON] {
        ["type": "plant.manicure", "at": .string(at), "plant": .string(plant), "weight": 12.5, "unit": "Grams",
         "drying_location": "Drying Room"]
    }

    @Test func aManicureWhosePlantChangedTwiceIsHeldForAPersonNotSentAgain() async throws {
        let rig = try await Rig.make()
        do {
            let plant = SandboxDemo.floweringPlantTag(5)
            try rig.storeBatch("m", [Self.manicure(plant)])
            try await rig.sandbox.setFaults(.applyThenFail(status: 500, count: 1))
            await rig.uploader.send(try rig.plannedRequests()[0])
            // Someone else manicures the same plant at Metrc meanwhile: the count moved by two.
            let other = MetrcBody.object(type: .plantManicure, fields: Self.manicure(plant), date: "2026-11-28")
            let response = await rig.client.send(.manicurePlants, license: SandboxDemo.license, objects: [other], userKey: SandboxDemo.ownerKey)
            guard case .accepted = response else {
                Issue.record("the other manicure was not accepted: \(response)")
                try await rig.shutdown()
                return
            }
            let unknown = try rig.store.readyEvents(now: Date().addingTimeInterval(1), limit: 10).events
            #expect(unknown.count == 1 && unknown[0].readBackBase != nil)

            let resend = await rig.uploader.reconciler.reconcile(unknown) { _ in .personal(key: SandboxDemo.janeKey) }
            #expect(resend.isEmpty, "never sent blindly")
            let event = try #require(try rig.store.batchDetail(device: "HH-1", id: "m")).1[0]
            #expect(event.state == .held)
            #expect(event.message?.contains("manicure outcome unknown") == true, "\(event.message ?? "")")
            let failures = try rig.store.failures(FailureFilter())
            #expect(failures.first?.events.first?.heldCode == .readBackUndecided)
            #expect(await rig.sandbox.writes().filter { $0.action.rawValue == "manicurePlants" }.count == 2)
        } catch {
            try await rig.shutdown()
            throw error
        }
        try await rig.shutdown()
    }
}

extension Uploader {
    /// One request's life as a pass takes it, on its own: attempt recorded, sent, outcome recorded (a split's
    /// halves are the pass's to send, not this).
    func send(_ request: PlannedRequest) async {
        guard let recorded = await sender.record(request) else { return }
        await sender.conclude(await sender.transmit(recorded))
    }
}
