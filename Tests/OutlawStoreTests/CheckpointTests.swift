import Foundation
import GRDB
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// Checkpoints moved off the writer: a real store file, the daemon's own setting.
@Suite("Background checkpoints")
struct CheckpointTests {
    /// Writes about 1,600 pages of log in 200 transactions, more than SQLite's own 1,000-page checkpoint.
    static func fill(_ store: Store) throws {
        try store.pool.write { db in try db.execute(sql: "CREATE TABLE filler (b BLOB)") }
        for _ in 0..<200 {
            try store.pool.write { db in try db.execute(sql: "INSERT INTO filler (b) VALUES (zeroblob(30000))") }
        }
    }

    static func fillerRows(_ store: Store) throws -> Int? {
        try store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM filler") }
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    @Test func theWriterLeavesTheLogToTheCheckpointer() throws {
        let dir = try TempDirectory("outlawd-checkpoint")
        let path = dir.file("outlawd.sqlite")
        let store = try Store(path: path, pinRounds: 1000)
        // A checkpointer that does not get round to it within the test: what reaches the file is the writer's doing.
        try store.checkpointInBackground(every: .seconds(3600))
        let before = Self.size(path)
        try Self.fill(store)
        #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") } == 1000)
        #expect(try store.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") }
                == Checkpointer.writerBackstopPages)
        #expect(Self.size(path) - before < 1 << 20, "the writer checkpointed itself")
        #expect(Self.size(path + "-wal") > 6_000_000)
    }

    @Test func theCheckpointerCopiesTheLogIntoTheFile() async throws {
        let dir = try TempDirectory("outlawd-checkpoint")
        let path = dir.file("outlawd.sqlite")
        let store = try Store(path: path, pinRounds: 1000)
        try store.checkpointInBackground(every: .milliseconds(20))
        try Self.fill(store)
        let deadline = ContinuousClock.now + .seconds(20)
        while Self.size(path) < 6_000_000, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(Self.size(path) >= 6_000_000, "the log's pages never reached the database file")
        // And what it copied is the data, readable from the file alone once the log is gone.
        #expect(try Self.fillerRows(store) == 200)
    }
}
