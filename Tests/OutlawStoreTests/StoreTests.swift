import Foundation
import GRDB
import OutlawProtocol
import OutlawTestSupport
import Synchronization
import Testing
@testable import OutlawStore

@Suite("Store")
struct StoreTests {
    let dir: TempDirectory
    let store: Store

    init() throws {
        dir = try TempDirectory("outlawd-store")
        store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000)
    }

    static let now = Date()

    func validated(id: String, user: String = "jane", weight: Double = 12.5, events: Int = 1) throws -> ValidatedBatch {
        let validator = BatchValidator(maxBatchEvents: 5000, defaultLicense: "LIC-0001", licenses: [])
        let list: [JSONValue] = (1...events).map { seq in
            ["seq": .number(Double(seq)), "type": "plant.harvest", "at": "2026-11-28T14:03:11-08:00",
             "plant": "1A4FF0100000022000000001", "weight": .number(weight), "unit": "Grams", "drying_location": "Drying Room"]
        }
        return try validator.validate(["id": .string(id), "user": .string(user), "events": .array(list)], now: Self.now).get()
    }

    func device() async throws -> Device {
        let token = try store.addDevice(name: "HH-1", actor: "test")
        return try #require(try await store.authenticateDevice(name: "HH-1", token: token))
    }

    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func theStoreIsOwnerOnlyWhateverTheUmask() throws {
        // The test process's umask (usually 022) would leave a plain SQLite file world-readable.
        let path = dir.file("state/outlawd.sqlite")
        _ = try store.addDevice(name: "HH-1", actor: "test")
        #expect(try Self.mode(dir.file("state")) == 0o700)
        for file in [path, path + "-wal", path + "-shm"] {
            #expect(try Self.mode(file) == 0o600, "\(file)")
        }
        // A store an older version left readable by others is tightened when it is opened.
        let old = dir.file("old/outlawd.sqlite")
        try FileManager.default.createDirectory(atPath: dir.file("old"), withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: old, contents: nil, attributes: [.posixPermissions: 0o644]))
        _ = try Store(path: old, pinRounds: 1000)
        #expect(try Self.mode(old) == 0o600)
    }

    @Test func durabilitySettings() throws {
        #expect(try store.synchronousMode() == 2)
        #expect(try store.journalMode() == "wal")
    }

    @Test func deviceTokensAreCheckedAndStoredOnlyAsHashes() async throws {
        let token = try store.addDevice(name: "HH-1", actor: "test")
        #expect(token.count >= 40)
        #expect(try await store.authenticateDevice(name: "HH-1", token: token)?.name == "HH-1")
        #expect(try await store.authenticateDevice(name: "HH-1", token: token + "x") == nil)
        #expect(try await store.authenticateDevice(name: "HH-2", token: token) == nil)
        let file = try Data(contentsOf: URL(fileURLWithPath: store.path))
        #expect(file.range(of: Data(token.utf8)) == nil)
        try store.disableDevice(name: "HH-1", actor: "test")
        #expect(try await store.authenticateDevice(name: "HH-1", token: token) == nil)
        #expect(throws: StoreError.self) { try store.addDevice(name: "HH-1", actor: "test") }
        #expect(throws: StoreError.self) { try store.addDevice(name: "bad name", actor: "test") }
    }

    @Test func loginAndLockout() async throws {
        try store.addUser(name: "jane", role: .console, pin: "4821", actor: "test")
        let t0 = Date()
        guard case .ok(let user) = try await store.login(name: "jane", pin: "4821", now: t0) else {
            Issue.record("right PIN refused")
            return
        }
        #expect(user.role == .console)
        for i in 0..<4 {
            #expect(try await store.login(name: "jane", pin: "0000", now: t0.addingTimeInterval(Double(i))) == .badCredentials)
        }
        // The right PIN before the 5th failure still works, and clears the count.
        guard case .ok = try await store.login(name: "jane", pin: "4821", now: t0.addingTimeInterval(5)) else {
            Issue.record("right PIN refused after 4 failures")
            return
        }
        for i in 0..<5 {
            #expect(try await store.login(name: "jane", pin: "0000", now: t0.addingTimeInterval(10 + Double(i))) == .badCredentials)
        }
        guard case .locked = try await store.login(name: "jane", pin: "4821", now: t0.addingTimeInterval(20)) else {
            Issue.record("not locked after 5 wrong PINs")
            return
        }
        guard case .ok = try await store.login(name: "jane", pin: "4821", now: t0.addingTimeInterval(14 + 15 * 60 + 1)) else {
            Issue.record("still locked after 15 minutes")
            return
        }
        #expect(try store.auditEntries().contains { $0.action == "login.locked" && $0.subject == "jane" })
    }

    @Test func failuresSpreadOverMoreThan15MinutesDoNotLock() async throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let t0 = Date()
        for i in 0..<6 {
            _ = try await store.login(name: "jane", pin: "9999", now: t0.addingTimeInterval(Double(i) * 301))
        }
        guard case .ok = try await store.login(name: "jane", pin: "4821", now: t0.addingTimeInterval(6 * 301)) else {
            Issue.record("locked by failures outside the window")
            return
        }
    }

    @Test func unknownAndInactiveUsers() async throws {
        #expect(try await store.login(name: "ghost", pin: "1234") == .badCredentials)
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        try store.disableUser(name: "jane", actor: "test")
        #expect(try await store.login(name: "jane", pin: "4821") == .inactiveUser)
        #expect(try await store.login(name: "jane", pin: "1111") == .badCredentials)
    }

    @Test func batchesStoreDedupeAndConflict() async throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let d = try await device()
        let b = try validated(id: "b-1", events: 3)
        let outcomes = try store.commit([IncomingBatch(deviceID: d.id, session: "s", batch: b),
                                         IncomingBatch(deviceID: d.id, session: "s", batch: b),
                                         IncomingBatch(deviceID: d.id, session: "s", batch: try validated(id: "b-1", weight: 99))])
        #expect(outcomes == [.stored(events: 3), .duplicate(events: 3),
                             .rejected(code: .idConflict, message: "batch b-1 was already stored with different content")])
        let all = try store.batches(BatchFilter())
        #expect(all.count == 1)
        #expect(all[0].events.total == 3 && all[0].state == .queued && all[0].user == "jane")
        let (_, events) = try #require(try store.batchDetail(device: "HH-1", id: "b-1"))
        #expect(events.map(\.seq) == [1, 2, 3])
        #expect(events.allSatisfy { $0.user == "jane" && $0.metrcDate == "2026-11-28" && $0.state == .queued })
    }

    @Test func unknownOrInactiveCollectorStoresNothing() async throws {
        let d = try await device()
        try store.addUser(name: "john", role: .user, pin: "4821", actor: "test")
        try store.disableUser(name: "john", actor: "test")
        let outcomes = try store.commit([IncomingBatch(deviceID: d.id, session: "s", batch: try validated(id: "a", user: "ghost")),
                                         IncomingBatch(deviceID: d.id, session: "s", batch: try validated(id: "b", user: "john"))])
        let codes: [NackCode?] = outcomes.map { if case .rejected(let r) = $0 { r.code } else { nil } }
        #expect(codes == [.unknownUser, .inactiveUser])
        #expect(try store.batches(BatchFilter()).isEmpty)
    }

    @Test func groupCommitAnswersEveryWriterOnce() async throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let d = try await device()
        let writer = BatchWriter(store: store, minFreeBytes: 0)
        let batches = try (0..<50).map { try validated(id: "g-\($0)", events: 2) }
        let outcomes = await withTaskGroup(of: BatchOutcome.self) { group in
            for b in batches { group.addTask { await writer.write(IncomingBatch(deviceID: d.id, session: "s", batch: b)) } }
            return await group.reduce(into: [BatchOutcome]()) { $0.append($1) }
        }
        #expect(outcomes.count == 50)
        #expect(outcomes.allSatisfy { $0 == .stored(events: 2) })
        #expect(try store.batches(BatchFilter()).count == 50)
    }

    @Test func aGroupTakesBatchesUpToTheEventLimitAndAlwaysTheFirst() {
        #expect(BatchWriter.groupSize([], limit: 10) == 0)
        #expect(BatchWriter.groupSize([4, 4, 2, 1], limit: 10) == 3)
        #expect(BatchWriter.groupSize([4, 7, 1], limit: 10) == 1, "a batch that does not fit waits, even if a later one would")
        #expect(BatchWriter.groupSize([25, 1], limit: 10) == 1, "a batch bigger than the limit goes alone")
        #expect(BatchWriter.groupSize(Array(repeating: 500, count: 40)) == BatchWriter.eventsPerTransaction / 500)
    }

    /// Many big batches at once: every one answered, in transactions of at most the limit.
    @Test func bigGroupsAreSplitAndTheBacklogEmpties() async throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let d = try await device()
        // Each transaction asks the clock once: a second later each time, so its batches share a received_at.
        let ticks = Mutex(0.0)
        let writer = BatchWriter(store: store, minFreeBytes: 0, clock: { Date(timeIntervalSince1970: ticks.withLock { $0 += 1; return $0 }) })
        let batches = try (0..<30).map { try validated(id: "big-\($0)", events: 500) }
        let outcomes = await withTaskGroup(of: BatchOutcome.self) { group in
            for b in batches { group.addTask { await writer.write(IncomingBatch(deviceID: d.id, session: "s", batch: b)) } }
            return await group.reduce(into: [BatchOutcome]()) { $0.append($1) }
        }
        #expect(outcomes.count == 30 && outcomes.allSatisfy { $0 == .stored(events: 500) })
        let received = try await store.pool.read { db in try Double.fetchAll(db, sql: "SELECT received_at FROM batches") }
        #expect(received.count == 30)
        let perTransaction = Dictionary(grouping: received, by: { $0 }).values.map(\.count)
        #expect(perTransaction.allSatisfy { $0 <= BatchWriter.eventsPerTransaction / 500 }, "\(perTransaction)")
        #expect(perTransaction.count >= 30 / (BatchWriter.eventsPerTransaction / 500))
    }

    /// Async reads (a device's `status`) beside synchronous ones (the uploader's) on the cooperative threads, many
    /// more of each than the store has reader connections: every one finishes. GRDB's async read held its reader
    /// while its task waited for a cooperative thread, and the synchronous reads held those threads waiting for a
    /// reader: the flat-out bench deadlocked so. A deadlock aborts the run (with this message) instead of hanging it.
    @Test func asyncAndSynchronousReadsTogetherNeverDeadlock() async throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let d = try await device()
        #expect(try store.commit([IncomingBatch(deviceID: d.id, session: "s", batch: try validated(id: "r"))]) == [.stored(events: 1)])
        let finished = Mutex(false)
        Thread {
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                if finished.withLock({ $0 }) { return }
                Thread.sleep(forTimeInterval: 0.5)
            }
            fatalError("asyncAndSynchronousReadsTogetherNeverDeadlock: the store's reads deadlocked")
        }.start()
        defer { finished.withLock { $0 = true } }
        let store = self.store
        let deviceID = d.id
        let answered = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<400 {
                group.addTask {
                    if i % 2 == 0 { return (try? await store.batchStatuses(deviceID: deviceID, ids: ["r"]))?["r"] != nil }
                    return (try? store.batches(BatchFilter()))?.count == 1
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(answered == 400)
    }

    @Test func nearlyFullDiskRefusesWithUnavailable() async throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let d = try await device()
        let writer = BatchWriter(store: store, minFreeBytes: Int64.max)
        let outcome = await writer.write(IncomingBatch(deviceID: d.id, session: "s", batch: try validated(id: "x")))
        guard case .rejected(let rejection) = outcome else {
            Issue.record("stored on a full disk")
            return
        }
        #expect(rejection.code == .unavailable)
        #expect(try store.batches(BatchFilter()).isEmpty)
    }

    @Test func auditIsAppendOnly() throws {
        try store.audit(actor: "op", action: AuditAction(rawValue: "test"), subject: "x")
        #expect(throws: (any Error).self) { try store.pool.write { db in try db.execute(sql: "DELETE FROM audit") } }
        #expect(throws: (any Error).self) { try store.pool.write { db in try db.execute(sql: "UPDATE audit SET actor = 'z'") } }
        #expect(try store.auditEntries().first?.actor == "op")
    }

    /// A waste record naming three plants waits for an earlier move of one of them, and a later destroy of
    /// another waits for it; events of other plants are not held up.
    @Test func aWasteKeepsItsPlaceInTheOrderOfEveryPlantItNames() async throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let d = try await device()
        let p = (1...4).map { String(format: "1A4FF01000000220000%05d", $0) }
        let at: JSONValue = "2026-11-28T14:03:11-08:00"
        let events: [JSONValue] = [
            ["seq": 1, "type": "plant.move", "at": at, "plant": .string(p[0]), "location": "Veg Room"],
            ["seq": 2, "type": "plant.waste", "at": at, "plants": [.string(p[0]), .string(p[1]), .string(p[2])], "waste_weight": 3,
             "waste_unit": "Grams", "waste_method": "Compost", "waste_material": "Soil", "reason": "Trim"],
            ["seq": 3, "type": "plant.destroy", "at": at, "plant": .string(p[1]), "waste_weight": 1, "waste_unit": "Grams",
             "waste_method": "Compost", "waste_material": "Soil", "reason": "Mold"],
            ["seq": 4, "type": "plant.move", "at": at, "plant": .string(p[3]), "location": "Veg Room"],
        ]
        let validator = BatchValidator(maxBatchEvents: 10, defaultLicense: "LIC-0001", licenses: [])
        let batch = try validator.validate(["id": "w", "user": "jane", "events": .array(events)], now: Self.now).get()
        #expect(try store.commit([IncomingBatch(deviceID: d.id, session: "s", batch: batch)]) == [.stored(events: 4)])
        var offered = try store.readyEvents(now: Self.now, limit: 10).events
        #expect(offered.map(\.type) == [.plantMove, .plantMove])
        try store.resolve([(offered[0].id, .uploaded(metrcID: nil))], now: Self.now)
        offered = try store.readyEvents(now: Self.now, limit: 10).events
        #expect(Set(offered.map(\.type)) == [.plantMove, .plantWaste])
        let waste = try #require(offered.first { $0.type == .plantWaste })
        try store.resolve([(waste.id, .uploaded(metrcID: nil))], now: Self.now)
        #expect(try store.readyEvents(now: Self.now, limit: 10).events.map(\.type).contains(.plantDestroy))
    }

    /// A store written before the order-over-every-tag migration keeps every queued event, in order.
    @Test func eventsStoredBeforeTheTagTableAreStillOfferedInOrder() async throws {
        let path = dir.file("old/outlawd.sqlite")
        try FileManager.default.createDirectory(atPath: dir.file("old"), withIntermediateDirectories: true)
        do {
            let pool = try DatabasePool(path: path)
            try Store.migrator.migrate(pool, upTo: "v2: uploads, keys, attempts")
            try await pool.write { db in
                try db.execute(sql: """
                    INSERT INTO devices (id, name, token_hash, created_at) VALUES (1, 'HH-1', x'00', 0);
                    INSERT INTO users (id, name, role, pin_hash, pin_salt, pin_rounds, created_at) VALUES (1, 'jane', 'user', x'00', x'00', 1000, 0);
                    INSERT INTO batches (id, device_id, batch_id, user_id, license, content_hash, event_count, received_at, session)
                      VALUES (1, 1, 'old', 1, 'LIC-0001', x'00', 2, 0, 's');
                    INSERT INTO events (batch_id, seq, type, tag, at, metrc_date, fields, user_id, license, state, updated_at) VALUES
                      (1, 1, 'plant.move', 'T1', '2026-11-28T14:03:11-08:00', '2026-11-28', '{"plant":"T1","location":"Veg Room"}', 1, 'LIC-0001', 'queued', 0),
                      (1, 2, 'plant.move', 'T1', '2026-11-28T14:03:11-08:00', '2026-11-28', '{"plant":"T1","location":"Vault"}', 1, 'LIC-0001', 'queued', 0);
                    """)
            }
        }
        let upgraded = try Store(path: path, pinRounds: 1000)
        let offered = try upgraded.readyEvents(now: Self.now, limit: 10).events
        #expect(offered.map(\.tag) == ["T1"], "the second move of T1 still waits for the first")
        #expect(offered.first?.fields["location"] == "Veg Room")
    }

    @Test func batchStateSummary() {
        func state(_ pairs: [(EventState, Int)]) -> BatchState {
            var c = EventCounts()
            for (s, n) in pairs { c.add(state: s, count: n) }
            return c.batchState
        }
        #expect(state([(.recorded, 3)]) == .recorded)
        #expect(state([(.queued, 2), (.recorded, 1)]) == .queued)
        #expect(state([(.queued, 1), (.uploaded, 1)]) == .uploading)
        #expect(state([(.uploaded, 2), (.recorded, 1)]) == .uploaded)
        #expect(state([(.uploaded, 1), (.failed, 1)]) == .partial)
        #expect(state([(.failed, 2)]) == .failed)
        #expect(state([(.held, 1), (.uploaded, 1)]) == .held)
        // In review: a person must act, before anything else; rejected in review counts as failed.
        #expect(state([(.review, 1), (.held, 1), (.uploaded, 1)]) == .review)
        #expect(state([(.review, 1), (.recorded, 1)]) == .review)
        #expect(state([(.rejected, 2), (.recorded, 1)]) == .failed)
        #expect(state([(.rejected, 1), (.uploaded, 1)]) == .partial)
        #expect(state([(.rejected, 1), (.queued, 1)]) == .uploading)
    }

    /// `batches --state` filters in SQL; it must pick exactly the batches whose derived state (in Swift) is that
    /// state, for every mix of event states.
    @Test func stateFilterInSQLAgreesWithTheDerivedState() async throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let d = try await device()
        let states = EventState.allCases
        for mask in 1..<(1 << states.count) {
            let chosen = states.indices.filter { mask & (1 << $0) != 0 }.map { states[$0] }
            let batch = try validated(id: "m-\(mask)", events: chosen.count)
            let outcome = try store.commit([IncomingBatch(deviceID: d.id, session: "s", batch: batch)])
            #expect(outcome == [.stored(events: chosen.count)])
            try await store.pool.write { db in
                for (i, state) in chosen.enumerated() {
                    try db.execute(sql: """
                        UPDATE events SET state = ? WHERE seq = ? AND batch_id = (SELECT id FROM batches WHERE batch_id = ?)
                        """, arguments: [state, i + 1, "m-\(mask)"])
                }
            }
        }
        let all = try store.batches(BatchFilter())
        #expect(all.count == (1 << states.count) - 1)
        // Every batch state occurs among the mixes, so each branch of the SQL is compared.
        #expect(Set(all.map(\.state)) == Set(BatchState.allCases))
        for state in BatchState.allCases {
            let filtered = try store.batches(BatchFilter(state: state)).map(\.id)
            #expect(filtered == all.filter { $0.state == state }.map(\.id), "\(state)")
        }
        #expect(try store.batches(BatchFilter(limit: 5)).count == 5)
    }

    @Test func personalKeysAreSealedAtRestWithTheStoreKey() async throws {
        let hexKey = String(repeating: "ab", count: 32)
        let seal = try #require(KeySeal(text: hexKey))
        let path = dir.file("sealed/outlawd.sqlite")
        let sealed = try Store(path: path, pinRounds: 1000, seal: seal)
        try sealed.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let jane = try #require(try sealed.user(named: "jane"))
        try sealed.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "test")
        #expect(try sealed.signingKeys(userIDs: [jane.id])[jane.id]?.key == "jane-metrc-key-0001")
        #expect(try sealed.userKeys().first?.last4 == "0001")
        // Not in the file, the WAL or any listing.
        for file in [path, path + "-wal"] {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()
            #expect(bytes.range(of: Data("jane-metrc-key-0001".utf8)) == nil)
        }
        // Without the store key, or with another one, nothing signs with it.
        let noKey = try Store(path: path, pinRounds: 1000)
        #expect(throws: StoreError.self) { try noKey.signingKeys(userIDs: [jane.id]) }
        let otherSeal: KeySeal = try #require(KeySeal(text: String(repeating: "cd", count: 32)))
        let wrong = try Store(path: path, pinRounds: 1000, seal: otherSeal)
        #expect(throws: StoreError.self) { try wrong.signingKeys(userIDs: [jane.id]) }
    }

    @Test func plainKeysAreSealedOnceAStoreKeyIsConfigured() async throws {
        let path = dir.file("later/outlawd.sqlite")
        let plain = try Store(path: path, pinRounds: 1000)
        try plain.addUser(name: "john", role: .user, pin: "4821", actor: "test")
        try plain.setUserKey(user: "john", key: "john-metrc-key-0002", status: .ok, actor: "test")
        let base64Seal: KeySeal = try #require(KeySeal(text: Data(repeating: 7, count: 32).base64EncodedString()))
        let sealed = try Store(path: path, pinRounds: 1000, seal: base64Seal)
        #expect(try sealed.sealPlainKeys() == 1)
        #expect(try sealed.sealPlainKeys() == 0)
        let john = try #require(try sealed.user(named: "john"))
        #expect(try sealed.signingKeys(userIDs: [john.id])[john.id]?.key == "john-metrc-key-0002")
        #expect(KeySeal(text: "too short") == nil)
    }
}
