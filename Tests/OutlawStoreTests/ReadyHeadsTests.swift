import Foundation
import GRDB
import GRDBSQLite
import OutlawProtocol
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// The ready heads (v11) against the order per tag's own definition, and what one plan costs as the queue grows.
@Suite("Ready heads", .timeLimit(.minutes(3)))
struct ReadyHeadsTests {
    /// The definition the heads replace: a queued event is ready when no earlier unfinished event shares a tag.
    static func readyByDefinition(_ db: Database) throws -> [Int64] {
        try Int64.fetchAll(db, sql: """
            SELECT e.id FROM events e
            WHERE e.state = 'queued' AND NOT EXISTS (
              SELECT 1 FROM event_tags mine
              JOIN event_tags other ON other.tag = mine.tag AND other.event_id < mine.event_id
              JOIN events p ON p.id = other.event_id
              WHERE mine.event_id = e.id AND p.state IN \(ReadyHeads.unfinishedList))
            ORDER BY e.id
            """)
    }

    static func readyByHeads(_ db: Database) throws -> [Int64] {
        let ready = try Store.readyEvents(db, now: Date.distantFuture, limit: 1_000_000)
        return (ready.events.map(\.id) + ready.unreadable.map(\.id)).sorted()
    }

    /// A store with one user, one device and one batch to hang events on; returns (store, batch row id, user id).
    static func emptyStore(_ dir: TempDirectory) throws -> (Store, Int64, Int64) {
        let store = try Store(path: dir.file("outlawd.sqlite"), pinRounds: 1000)
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        _ = try store.addDevice(name: "HH-1", actor: "test")
        let (batch, user) = try store.pool.write { db -> (Int64, Int64) in
            let user = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE name = 'jane'") ?? 0
            let device = try Int64.fetchOne(db, sql: "SELECT id FROM devices WHERE name = 'HH-1'") ?? 0
            try db.execute(sql: """
                INSERT INTO batches (device_id, batch_id, user_id, license, content_hash, event_count, received_at, session)
                VALUES (?, 'seed', ?, 'LIC-0001', x'00', 0, 0, 's')
                """, arguments: [device, user])
            return (db.lastInsertedRowID, user)
        }
        return (store, batch, user)
    }

    static let fields = #"{"plant":"P","location":"Veg Room"}"#

    /// An event stored as ingest stores it (`ReadyHeads.Ingest`); `keepingHeads: false` on a store
    /// from before v11, which has only the tag rows.
    static func insertEvent(_ db: Database, batch: Int64, user: Int64, seq: Int, state: EventState, tags: [String],
                            keepingHeads: Bool = true) throws -> Int64 {
        let tags = state == .recorded ? [] : ReadyHeads.distinct(tags)
        let heads = keepingHeads ? try ReadyHeads.Ingest(db) : nil
        let id = try ReadyHeads.Ingest.nextEventID(db)
        let pending = try heads?.claimHeads(eventID: id, tags: tags) ?? 0
        try db.execute(sql: """
            INSERT INTO events (id, batch_id, seq, type, tag, at, metrc_date, fields, user_id, license, state, updated_at\(keepingHeads ? ", heads_pending" : ""))
            VALUES (?, ?, ?, 'plant.move', ?, '2026-11-28T14:03:11-08:00', '2026-11-28', ?, ?, 'LIC-0001', ?, 0\(keepingHeads ? ", \(pending)" : ""))
            """, arguments: [id, batch, seq, tags.first ?? "", fields, user, state])
        if let heads {
            try heads.addTagRows(eventID: id, tags: tags)
        } else {
            for tag in tags { try db.execute(sql: "INSERT INTO event_tags (tag, event_id) VALUES (?, ?)", arguments: [tag, id]) }
        }
        return id
    }

    /// Random ingests and every kind of state change (answers, holds, review, replay, retention's deletes), each
    /// checked against the definition: the triggers must agree with it after every step, whatever the path.
    /// The SQLite work runs on the test support's own pool (`offload`), never on the two cooperative threads the
    /// whole test process shares: minutes of synchronous work there starved other suites' HTTP clients and uploaders.
    @Test(arguments: [1, 2, 3, 4])
    func headsAgreeWithTheDefinitionAfterEveryChange(seed: UInt64) async throws {
        try await offload { try Self.walk(seed: seed) }
    }

    static func walk(seed: UInt64) throws {
        let dir = try TempDirectory("outlawd-heads")
        let (store, batch, user) = try Self.emptyStore(dir)
        var random = SeededRandom(seed: seed)
        let tags = ["A", "B", "C", "D", "E", "F"]
        var seq = 0
        for step in 0..<600 {
            try store.pool.write { db in
                let ids = try Int64.fetchAll(db, sql: "SELECT id FROM events ORDER BY id")
                let roll = Int.random(in: 0..<100, using: &random)
                if roll < 35 || ids.isEmpty {
                    seq += 1
                    let count = [1, 1, 1, 2, 3].randomElement(using: &random)!
                    let eventTags = (0..<count).map { _ in tags.randomElement(using: &random)! }
                    let state: EventState = [.queued, .queued, .queued, .review, .recorded].randomElement(using: &random)!
                    _ = try Self.insertEvent(db, batch: batch, user: user, seq: seq, state: state, tags: eventTags)
                } else if roll < 90 {
                    let id = ids.randomElement(using: &random)!
                    let state = try EventState.fetchOne(db, sql: "SELECT state FROM events WHERE id = ?", arguments: [id])!
                    let next: [EventState] = switch state {
                    case .queued: [.uploading, .held, .uploaded, .failed]
                    case .uploading: [.uploaded, .queued, .failed, .held]
                    case .held: [.queued, .failed]
                    case .review: [.queued, .rejected]
                    case .failed: [.queued]  // a replay
                    case .uploaded, .rejected, .recorded: []
                    }
                    if let to = next.randomElement(using: &random) {
                        try db.execute(sql: "UPDATE events SET state = ? WHERE id = ?", arguments: [to, id])
                    }
                } else {
                    // Retention: a finished event leaves with its tag rows.
                    let finished = try Int64.fetchAll(db, sql: "SELECT id FROM events WHERE state IN ('uploaded', 'rejected', 'recorded')")
                    if let id = finished.randomElement(using: &random) {
                        try db.execute(sql: "DELETE FROM event_tags WHERE event_id = ?", arguments: [id])
                        try db.execute(sql: "DELETE FROM events WHERE id = ?", arguments: [id])
                    }
                }
            }
            let (byDefinition, byHeads) = try store.pool.read { db in (try Self.readyByDefinition(db), try Self.readyByHeads(db)) }
            guard byHeads == byDefinition else {
                throw StoreError("seed \(seed), step \(step): ready by heads \(byHeads), by definition \(byDefinition)")
            }
        }
        let queued = try store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE state = 'queued'") ?? 0 }
        guard queued > 0 else { throw StoreError("seed \(seed): the walk ended with nothing queued: it tested little") }
    }

    /// Ingest keeps the heads itself (v14: no trigger fires on its tag rows): batches committed through the store,
    /// scans and an event naming a plant twice among them, agree with the definition after every commit and answer.
    @Test func batchesCommittedByTheStoreKeepTheHeads() async throws {
        try await offload {
            let dir = try TempDirectory("outlawd-heads-ingest")
            let (store, _, _) = try Self.emptyStore(dir)
            let device = try store.pool.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM devices WHERE name = 'HH-1'") ?? 0 }
            let validator = BatchValidator(maxBatchEvents: 100, defaultLicense: "LIC-0001", licenses: [])
            let at: JSONValue = "2026-11-28T14:03:11-08:00"
            let now = try #require(ISO8601DateFormatter().date(from: "2026-11-28T22:10:00Z"))
            var random = SeededRandom(seed: 7)
            let plants = (1...4).map { "1A4FF01000000220000000\(10 + $0)" }
            var sawWaiting = false
            for b in 0..<12 {
                let events: [JSONValue] = (1...5).map { seq in
                    let plant = JSONValue.string(plants.randomElement(using: &random)!)
                    switch Int.random(in: 0..<4, using: &random) {
                    case 0: return ["seq": .number(Double(seq)), "type": "plant.scan", "at": at, "plant": plant]
                    case 1: return ["seq": .number(Double(seq)), "type": "plant.waste", "at": at, "plants": [plant, plant],
                                    "waste_weight": 3, "waste_unit": "Grams", "waste_method": "Compost", "waste_material": "Soil",
                                    "reason": "Trim"]
                    default: return ["seq": .number(Double(seq)), "type": "plant.move", "at": at, "plant": plant, "location": "Veg Room"]
                    }
                }
                let batch = try validator.validate(["id": .string("b-\(b)"), "user": "jane", "events": .array(events)], now: now).get()
                #expect(try store.commit([IncomingBatch(deviceID: device, session: "s", batch: batch)]) == [.stored(events: 5)])
                var (byDefinition, byHeads) = try store.pool.read { db in (try Self.readyByDefinition(db), try Self.readyByHeads(db)) }
                #expect(byHeads == byDefinition, "after batch \(b)")
                let queued = try store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE state = 'queued'") ?? 0 }
                if queued > byHeads.count { sawWaiting = true }
                // Every other batch, Metrc answers the first ready event.
                if b % 2 == 1, let first = byHeads.first {
                    try store.resolve([(first, .uploaded(metrcID: nil))], now: now)
                    (byDefinition, byHeads) = try store.pool.read { db in (try Self.readyByDefinition(db), try Self.readyByHeads(db)) }
                    #expect(byHeads == byDefinition, "after answering event \(first)")
                }
            }
            #expect(sawWaiting, "no event waited for another: the seed tested little")
        }
    }

    /// A store from before v11 (chains half uploaded, a replayed event, a review) gets its heads from the migration.
    @Test func theMigrationDerivesTheHeadsOfAnOlderStore() throws {
        let dir = try TempDirectory("outlawd-heads-migration")
        let path = dir.file("outlawd.sqlite")
        do {
            let queue = try DatabaseQueue(path: path)
            try Store.migrator.migrate(queue, upTo: "v10: attempt outcomes stored as identifiers, not display text")
            try queue.write { db in
                try db.execute(sql: "INSERT INTO users (name, role, pin_hash, pin_salt, pin_rounds, created_at) VALUES ('jane', 'user', x'00', x'00', 1, 0)")
                try db.execute(sql: "INSERT INTO devices (name, token_hash, active, created_at) VALUES ('HH-1', x'00', 1, 0)")
                try db.execute(sql: """
                    INSERT INTO batches (device_id, batch_id, user_id, license, content_hash, event_count, received_at, session)
                    VALUES (1, 'b', 1, 'LIC-0001', x'00', 0, 0, 's')
                    """)
                let plan: [(EventState, [String])] = [
                    (.uploaded, ["A"]), (.queued, ["A"]), (.queued, ["A", "B"]), (.failed, ["B"]), (.queued, ["B"]),
                    (.review, ["C"]), (.queued, ["C"]), (.held, ["D"]), (.queued, ["E"]), (.queued, ["E", "F"]), (.recorded, ["F"]),
                ]
                for (seq, (state, tags)) in plan.enumerated() {
                    _ = try Self.insertEvent(db, batch: 1, user: 1, seq: seq, state: state, tags: tags, keepingHeads: false)
                }
            }
        } catch let error as DatabaseError where error.message?.contains("no such column") == true {
            Issue.record("the v10 schema in this test no longer matches: \(error)")
            return
        }
        let store = try Store(path: path, pinRounds: 1000)
        let (byDefinition, byHeads) = try store.pool.read { db in (try Self.readyByDefinition(db), try Self.readyByHeads(db)) }
        #expect(byDefinition == [2, 9])  // 3 waits for 2 on A, 5 for 3 on B, 7 for the review, 10 for 9
        #expect(byHeads == byDefinition)
    }

    /// What `body` returns, and the SQLite VM instructions it spent, counted by a progress handler on `db`.
    static func countingInstructions<T>(_ db: Database, _ body: () throws -> T) throws -> (value: T, instructions: Int) {
        let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { counter.deallocate() }
        counter.pointee = 0
        sqlite3_progress_handler(db.sqliteConnection, 1, { context in
            context!.assumingMemoryBound(to: Int.self).pointee += 1
            return 0
        }, counter)
        defer { sqlite3_progress_handler(db.sqliteConnection, 0, nil, nil) }
        return (try body(), counter.pointee)
    }

    /// SQLite VM instructions spent on one plan, on a connection of its own.
    static func planWork(_ path: String, limit: Int) throws -> (instructions: Int, events: Int) {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in
            let (ready, instructions) = try countingInstructions(db) { try Store.readyEvents(db, now: Date(), limit: limit) }
            return (instructions, ready.events.count)
        }
    }

    /// The work of the planning query before v11 (the definition, limited like a plan), for comparison.
    static func definitionWork(_ path: String) throws -> Int {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in
            try countingInstructions(db) { try Int64.fetchAll(db, sql: """
                SELECT e.id FROM events e
                WHERE e.state = 'queued' AND NOT EXISTS (
                  SELECT 1 FROM event_tags mine
                  JOIN event_tags other ON other.tag = mine.tag AND other.event_id < mine.event_id
                  JOIN events p ON p.id = other.event_id
                  WHERE mine.event_id = e.id AND p.state IN \(ReadyHeads.unfinishedList))
                ORDER BY e.id LIMIT 800
                """) }.instructions
        }
    }

    /// A queue of `count` events where ready ones are scarce: a held user's events first, then 450 long chains (the
    /// shape that drained at 2% of its bound), so a plan that walks the queue walks all of it.
    static func seedQueue(_ store: Store, batch: Int64, user: Int64, count: Int) throws {
        // A second, held user: their events sit at the front of the queue and must not be walked by every plan.
        try store.addUser(name: "held", role: .user, pin: "4821", actor: "test")
        try store.pool.write { db in
            let held = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE name = 'held'") ?? 0
            try db.execute(sql: """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                INSERT INTO events (batch_id, seq, type, tag, at, metrc_date, fields, user_id, license, state, updated_at)
                SELECT ?, i, 'plant.move',
                       CASE WHEN i <= ? / 10 THEN 'held-' || i ELSE 'chain-' || (i % 450) END,
                       '2026-11-28T14:03:11-08:00', '2026-11-28', ?,
                       CASE WHEN i <= ? / 10 THEN ? ELSE ? END, 'LIC-0001',
                       CASE WHEN i <= ? / 10 THEN 'held' ELSE 'queued' END, 0
                FROM n
                """, arguments: [count, batch, count, fields, count, held, user, count])
            try db.execute(sql: "INSERT INTO event_tags (tag, event_id) SELECT tag, id FROM events")
            try ReadyHeads.derive(db)
        }
    }

    @Test func onePlanCostsTheSameWithAThousandOrAMillionQueued() async throws {
        var work: [Int: (instructions: Int, events: Int)] = [:]
        var walk: [Int: Int] = [:]
        for count in [1_000, 1_000_000] {
            // Seconds of SQLite on the test support's pool, not on a cooperative thread (see the walk above).
            let (plan, definition, ready) = try await offload { () -> ((instructions: Int, events: Int), Int, Int) in
                let dir = try TempDirectory("outlawd-plan-work")
                let (store, batch, user) = try Self.emptyStore(dir)
                try Self.seedQueue(store, batch: batch, user: user, count: count)
                // The uploader's plan: concurrency 4 × 100 objects a request × 2.
                return (try Self.planWork(dir.file("outlawd.sqlite"), limit: 800), try Self.definitionWork(dir.file("outlawd.sqlite")),
                        try store.pool.read { db in try Self.readyByDefinition(db).count })
            }
            work[count] = plan
            walk[count] = definition
            try #require(plan.events == min(800, ready), "\(count) queued: the plan read \(plan.events) of \(ready) ready")
        }
        let small = try #require(work[1_000]), large = try #require(work[1_000_000])
        try #require(small.events == 450 && large.events == 450, "each plan reads the 450 chain heads")
        let ratio = Double(large.instructions) / Double(small.instructions) * Double(small.events) / Double(large.events)
        print("plan work: \(small.instructions) VM instructions for \(small.events) events with 1,000 queued; "
              + "\(large.instructions) for \(large.events) with 1,000,000 (per event ratio \(String(format: "%.2f", ratio)))")
        #expect(ratio < 2, "one plan with a million queued costs \(ratio)× the work per event of one with a thousand")
        // The same seed makes the walk the heads replaced grow with the queue: this test tells the two apart.
        let walkRatio = Double(walk[1_000_000] ?? 0) / Double(max(1, walk[1_000] ?? 0))
        print("the walk by definition: \(walk[1_000] ?? 0) VM instructions with 1,000 queued, \(walk[1_000_000] ?? 0) with 1,000,000")
        #expect(walkRatio > 100)
    }
}

/// A small deterministic generator (SplitMix64), so a failing walk can be replayed from its seed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
