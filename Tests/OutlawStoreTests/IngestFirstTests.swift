import Foundation
import OutlawTestSupport
import Synchronization
import Testing
@testable import OutlawStore

/// Devices' commits before background writes at the one writer (`IngestFirst`).
@Suite("Ingest first", .timeLimit(.minutes(1)))
struct IngestFirstTests {
    @Test func aBackgroundWriteGoesAtOnceWhenNoDeviceCommitWaits() {
        let gate = IngestFirst()
        let started = ContinuousClock.now
        gate.yieldToIngest(patience: 30)
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(gate.waitingCommits == 0)
    }

    @Test func aBackgroundWriteWaitsUntilTheWaitingDeviceCommitHasTheWriter() async throws {
        let gate = IngestFirst()
        let entered = Mutex(false)
        let sawEntered = Mutex<Bool?>(nil)
        gate.ingestArrives()
        let finished = Thread {
            gate.yieldToIngest(patience: 30)
            sawEntered.withLock { $0 = entered.withLock { $0 } }
        }
        finished.start()
        // Proof the background write is waiting at the gate (or, were the gate broken, that it went on already).
        _ = try await eventually("the background write at the gate") {
            gate.yieldingWrites == 1 || sawEntered.withLock({ $0 }) != nil ? true : nil
        }
        entered.withLock { $0 = true }
        gate.ingestEntered()
        let saw = try await eventually("the background write going on") { sawEntered.withLock { $0 } }
        #expect(saw, "the background write went before the device's commit had the writer")
        #expect(gate.waitingCommits == 0)
        #expect(gate.yieldingWrites == 0)
    }

    @Test func aBackgroundWriteWaitsNoLongerThanItsPatience() {
        let gate = IngestFirst()
        gate.ingestArrives()  // and never gets the writer
        let started = ContinuousClock.now
        gate.yieldToIngest(patience: 0.05)
        #expect(ContinuousClock.now - started >= .milliseconds(50))
        #expect(gate.waitingCommits == 1)
    }

    /// Through the store: a device's commit counts as waiting until it has the writer, and a background write (an
    /// upload's record) still goes once it has.
    @Test func theStoresCommitsAndBackgroundWritesTakeTheirTurns() throws {
        let dir = try TempDirectory()
        let store = try Store(path: dir.file("outlawd.sqlite"), pinRounds: 1000)
        #expect(store.ingestFirst.waitingCommits == 0)
        _ = try store.commit([])
        #expect(store.ingestFirst.waitingCommits == 0, "a commit leaves the gate as it found it")
        try store.backgroundWrite { db in try db.execute(sql: "SELECT 1") }
    }

    /// A write a restart redoes (retention's deletes) commits without a sync of its own, and the writer is back to
    /// `synchronous=FULL` after it, whether it committed or threw: devices' acks must sync.
    @Test func aWriteWithTheNextCommitsSyncLeavesTheWriterSyncingAgain() throws {
        struct Refused: Error {}
        let dir = try TempDirectory()
        let store = try Store(path: dir.file("outlawd.sqlite"), pinRounds: 1000)
        #expect(try store.synchronousMode() == 2)
        let during = try store.backgroundWrite(sync: .withNextCommit) { db in
            try db.execute(sql: "INSERT INTO settings (name, value) VALUES ('bench.probe', 'kept')")
            return try Int.fetchOne(db, sql: "PRAGMA synchronous")
        }
        #expect(during == 1, "the write itself runs with synchronous=NORMAL")
        #expect(try store.synchronousMode() == 2, "after a committed write the writer syncs again")
        #expect(throws: Refused.self) {
            try store.backgroundWrite(sync: .withNextCommit) { db in
                try db.execute(sql: "INSERT INTO settings (name, value) VALUES ('bench.gone', 'rolled back')")
                throw Refused()
            }
        }
        #expect(try store.synchronousMode() == 2, "after a write that threw the writer syncs again")
        let values = try store.pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM settings WHERE name LIKE 'bench.%'") }
        #expect(values == ["bench.probe"], "the committed write is kept, the thrown one rolled back")
        #expect(try store.backgroundWrite { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
    }
}
