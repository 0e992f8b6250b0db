import Foundation
import GRDB
import OutlawProtocol
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// Online backups of the store, the check of a copy, and a restore that never lets Metrc apply an event twice.
@Suite("Backups and restore", .timeLimit(.minutes(2)))
struct BackupTests {
    let dir: TempDirectory
    let store: Store
    static let now = Date()

    init() throws {
        dir = try TempDirectory("outlawd-backup")
        store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000)
    }

    func batch(_ id: String, device: Device, events: Int = 3, at: String = "2026-11-28T14:03:11-08:00") throws -> IncomingBatch {
        let validator = BatchValidator(maxBatchEvents: 100, defaultLicense: "LIC-0001", licenses: [])
        let list: [JSONValue] = (1...events).map { seq in
            ["seq": .number(Double(seq)), "type": "package.adjust", "at": .string(at),
             "package": .string("1A4FF0300000022000000\(String(format: "%03d", seq))"), "quantity": -1, "unit": "Grams",
             "reason": "Drying"]
        }
        let validated = try validator.validate(["id": .string(id), "user": "jane", "events": .array(list)], now: Self.now).get()
        return IncomingBatch(deviceID: device.id, session: "s", batch: validated)
    }

    /// jane, HH-1 (its token returned) and 20 batches of 3 adjustments.
    @discardableResult
    func seeded() async throws -> String {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let token = try store.addDevice(name: "HH-1", actor: "test")
        let d = try #require(try await store.authenticateDevice(name: "HH-1", token: token))
        for i in 0..<20 { _ = try store.commit([try batch("b-\(i)", device: d)], now: Self.now) }
        return token
    }

    @Test func aBackupTakenWhileBatchesAreStoredIsOneCheckedFileWithWhatWasCommitted() async throws {
        let token = try await seeded()
        let d = try #require(try await store.authenticateDevice(name: "HH-1", token: token))
        // Batches go on being stored while the copy is taken: the backup reads one snapshot and blocks no writer.
        let during = try (0..<200).map { try batch("during-\($0)", device: d) }
        let writer = Task.detached { [store] in
            var stored = 0
            for incoming in during {
                _ = try store.commit([incoming])
                stored += 1
            }
            return stored
        }
        let copy = dir.file("backups/first.sqlite")
        let report = try store.backup(to: copy)
        #expect(try await writer.value == 200)
        #expect(report.current && report.bytes > 0 && report.auditRows >= 2)
        #expect(!FileManager.default.fileExists(atPath: copy + "-wal") && !FileManager.default.fileExists(atPath: copy + ".partial"))
        // One file with a rollback-journal header (opening it makes no -wal or -shm), and nothing else left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("backups")) == ["first.sqlite"])
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: copy)).prefix(20).suffix(2)) == [1, 1])
        // The copy holds every batch committed before its snapshot and no half of one.
        let counts = try await DatabaseQueue(path: copy).read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM batches") ?? 0, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0)
        }
        #expect(counts.0 >= 20 && counts.0 <= 220 && counts.1 == counts.0 * 3, "\(counts)")
        #expect(try Store.verifyCopy(at: copy).auditHead == report.auditHead)
        // A backup never replaces a file.
        #expect(throws: StoreError.self) { try store.backup(to: copy) }
    }

    @Test func aCopyThatIsTruncatedCorruptedForeignOrEditedIsRefusedWithItsReason() async throws {
        try await seeded()
        let copy = dir.file("good.sqlite")
        _ = try store.backup(to: copy)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: copy))

        func refusal(at path: String) -> String {
            do {
                _ = try Store.verifyCopy(at: path)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        func refusal(_ data: Data, _ name: String) -> String {
            let path = dir.file(name)
            _ = FileManager.default.createFile(atPath: path, contents: data)
            return refusal(at: path)
        }
        let half = refusal(bytes.prefix(bytes.count / 2), "half.sqlite")
        #expect(half.contains("corrupted"), "\(half)")
        #expect(refusal(bytes.prefix(100), "tiny.sqlite").contains("truncated?"))
        var scrambled = bytes
        for i in stride(from: 4096 + 200, to: min(scrambled.count, 4096 * 6), by: 7) { scrambled[i] ^= 0x5a }
        let scrambledRefusal = refusal(scrambled, "scrambled.sqlite")
        #expect(scrambledRefusal.contains("corrupted") || scrambledRefusal.contains("not an outlawd store"), "\(scrambledRefusal)")
        #expect(refusal(Data(repeating: 0x41, count: 8192), "text.sqlite").contains("not an outlawd store"))
        // The live store's own file is not a backup, and checking it leaves nothing beside it.
        let live = refusal(at: store.path)
        #expect(live.contains("WAL mode") || live.contains("lies beside the copy"), "\(live)")
        var walHeader = bytes
        walHeader[18] = 2
        walHeader[19] = 2
        #expect(refusal(walHeader, "wal.sqlite").contains("in WAL mode"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("wal.sqlite-wal")) && !FileManager.default.fileExists(atPath: dir.file("wal.sqlite-shm")))

        // An audit row edited in the copy (its hash no longer matches) is named.
        let edited = dir.file("edited.sqlite")
        try FileManager.default.copyItem(atPath: copy, toPath: edited)
        try await DatabaseQueue(path: edited).write { db in
            try db.execute(sql: "DROP TRIGGER audit_no_update")
            try db.execute(sql: "UPDATE audit SET actor = 'mallory' WHERE id = 1")
        }
        let reason = refusal(at: edited)
        #expect(reason.contains("audit chain breaks at row 1"), "\(reason)")
    }

    @Test func aRestoreMarksWhatTheCopyHadNotFinishedAsPossiblySentAndKeepsTheOldStoreAside() async throws {
        let token = try await seeded()
        // One event was answered by Metrc before the backup: it stays finished; the rest may have been sent since.
        try await store.pool.write { db in try db.execute(sql: "UPDATE events SET state = 'uploaded' WHERE id = 1") }
        let copy = dir.file("copy.sqlite")
        let report = try store.backup(to: copy)
        let live = store.path
        // The events were collected at 22:03Z; the restore happens at 23:00Z.
        let later = try #require(ISO8601DateFormatter().date(from: "2026-11-28T23:00:00Z"))
        // Only with the store's lock: the daemon's, here taken by nobody else.
        let lock = try StoreLock(storePath: live, refusal: "held")
        let (restored, aside) = try Store.restore(copy, over: live, actor: "op", now: later)
        withExtendedLifetime(lock) {}
        #expect(restored.auditHead == report.auditHead)
        let kept = try #require(aside)
        #expect(FileManager.default.fileExists(atPath: kept))

        let reopened = try DatabaseQueue(path: live)
        // Possibly sent since the copy was taken: what Metrc shows changed after that instant is ours.
        let takenAt = try await DatabaseQueue(path: copy).read { db in
            try Double.fetchOne(db, sql: "SELECT value FROM settings WHERE name = 'backup_taken_at'")
        }
        let since = try #require(takenAt)
        #expect(abs(since - Date().timeIntervalSince1970) < 60)
        let (marked, untouched, lastAction) = try await reopened.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE state != 'uploaded' AND unknown_since = ?", arguments: [since]) ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events WHERE state = 'uploaded' AND unknown_since IS NULL") ?? 0,
             try String.fetchOne(db, sql: "SELECT action FROM audit ORDER BY id DESC LIMIT 1"))
        }
        #expect(marked == 59 && untouched == 1)
        #expect(lastAction == AuditAction.storeRestore.rawValue)
        try reopened.close()
        // The restored store opens as the daemon opens it, with its chain intact through the restore row.
        let opened = try Store(path: live, pinRounds: 1000)
        #expect(try opened.verifyAudit().intact)
        // A batch collected before the restore may be the resend of one the replaced store acked and uploaded after the
        // backup: stored again, and read back before it is sent. One collected after the restore is new.
        let d = try #require(try await opened.authenticateDevice(name: "HH-1", token: token))
        #expect(try opened.commit([try batch("resent", device: d, at: "2026-11-28T14:30:00-08:00"),
                                   try batch("new", device: d, at: "2026-11-28T15:30:00-08:00")]) == [.stored(events: 3), .stored(events: 3)])
        let possiblySent = try await opened.pool.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT b.batch_id FROM events e JOIN batches b ON b.id = e.batch_id WHERE e.unknown_since = ? AND b.batch_id IN ('resent', 'new')",
                                arguments: [since])
        }
        #expect(possiblySent == ["resent"])
    }

    @Test func theStoreLockKeepsARestoreAndASecondDaemonOutWhileOneHoldsIt() throws {
        do {
            let first = try StoreLock(storePath: store.path, refusal: "outlawd is running")
            #expect(throws: StoreError("outlawd is running")) { try StoreLock(storePath: store.path, refusal: "outlawd is running") }
            withExtendedLifetime(first) {}
        }
        // Released with its holder: the next one takes it.
        _ = try StoreLock(storePath: store.path, refusal: "still held")
    }

    @Test func aStoreWithPersonalKeysInClearIsNotBackedUp() throws {
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        try store.setUserKey(user: "jane", key: "jane-metrc-key", status: .ok, actor: "test")
        let refusal = #expect(throws: StoreError.self) { try store.backup(to: dir.file("keys.sqlite")) }
        #expect(refusal?.description.contains("in clear") == true)
        #expect(!FileManager.default.fileExists(atPath: dir.file("keys.sqlite")))
    }

    @Test func anOldCopyIsDeletedAStepAtATimeAndALinkIsRemovedNotFollowed() throws {
        // Three steps and a bit: truncated from the end, then unlinked.
        let copy = dir.file("old.sqlite")
        let size = Int(Store.removalStep) * 3 + 4096
        #expect(FileManager.default.createFile(atPath: copy, contents: Data(repeating: 7, count: size)))
        try Store.removeGradually(copy)
        #expect(!FileManager.default.fileExists(atPath: copy))
        // Already gone counts as deleted.
        try Store.removeGradually(copy)
        // A link in the backup folder goes; what it points at stays whole.
        let target = dir.file("elsewhere.sqlite")
        #expect(FileManager.default.createFile(atPath: target, contents: Data(repeating: 9, count: Int(Store.removalStep) * 2)))
        let link = dir.file("link.sqlite")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        try Store.removeGradually(link)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil)
        #expect((try FileManager.default.attributesOfItem(atPath: target)[.size] as? Int) == Int(Store.removalStep) * 2)
        // A copy hard-linked elsewhere loses only this name; the other keeps every byte.
        let linked = dir.file("linked.sqlite")
        let snapshot = dir.file("snapshot.sqlite")
        #expect(FileManager.default.createFile(atPath: linked, contents: Data(repeating: 5, count: Int(Store.removalStep) * 2)))
        try FileManager.default.linkItem(atPath: linked, toPath: snapshot)
        try Store.removeGradually(linked)
        #expect(!FileManager.default.fileExists(atPath: linked))
        #expect(try Data(contentsOf: URL(fileURLWithPath: snapshot)) == Data(repeating: 5, count: Int(Store.removalStep) * 2))
        // What cannot be deleted says why.
        let locked = dir.file("locked")
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: locked + "/copy.sqlite", contents: Data(count: 10)))
        chmod(locked, 0o500)
        defer { chmod(locked, 0o700) }
        if geteuid() != 0 {
            let refusal = #expect(throws: StoreError.self) { try Store.removeGradually(locked + "/copy.sqlite") }
            #expect(refusal?.description.contains("cannot delete") == true)
        }
    }

    @Test func aWALHeaderIsSetBackToTheRollbackJournalWithoutOpeningTheFile() throws {
        // A closed WAL-mode database, as a copy is right after SQLite's backup API wrote the live store's header.
        let path = dir.file("wal-header.sqlite")
        do {
            let pool = try DatabasePool(path: path)
            try pool.write { db in try db.execute(sql: "CREATE TABLE t (x); INSERT INTO t VALUES (1)") }
            try pool.close()
        }
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path)).prefix(20).suffix(2)) == [2, 2])
        try Store.setRollbackJournalHeader(path)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path)).prefix(20).suffix(2)) == [1, 1])
        // SQLite now reads it as a rollback-journal file: no -wal or -shm is made to read it, and the data is whole.
        var readOnly = Configuration()
        readOnly.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: readOnly)
        #expect(try queue.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "delete")
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT x FROM t") } == 1)
        try queue.close()
        #expect(!FileManager.default.fileExists(atPath: path + "-wal") && !FileManager.default.fileExists(atPath: path + "-shm"))
        // Anything else is refused, unchanged.
        let text = dir.file("text.sqlite")
        #expect(FileManager.default.createFile(atPath: text, contents: Data(repeating: 0x41, count: 100)))
        #expect(throws: StoreError.self) { try Store.setRollbackJournalHeader(text) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: text)) == Data(repeating: 0x41, count: 100))
    }
}
