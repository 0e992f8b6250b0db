import Foundation
import GRDB
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// The audit table's hash chain: intact after ordinary use, and an edit made behind the store's back (the real
/// sqlite3 shell, triggers dropped) is named at the row it touched.
@Suite("Audit chain")
struct AuditChainTests {
    let dir: TempDirectory
    let store: Store

    init() throws {
        dir = try TempDirectory("outlawd-audit")
        store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000)
    }

    static let sqlite3 = "/usr/bin/sqlite3"

    /// Five rows of the kinds the daemon writes, some with NULL subject or detail.
    func fiveRows() throws {
        _ = try store.addDevice(name: "HH-1", actor: "op")
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "op")
        try store.setUploadsPaused(true, actor: "op")
        try store.audit(actor: "outlawd", action: AuditAction(rawValue: "daemon.start"), subject: "/etc/outlawd/outlawd.toml", detail: "version=0.1.0")
        try store.audit(actor: "op", action: AuditAction(rawValue: "note"), subject: "x", detail: "ünïcode, \"quotes\" and\nnewlines")
    }

    /// Runs SQL through the sqlite3 shell, as someone with the file and no outlawd would.
    func shell(_ sql: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.sqlite3), "needs the sqlite3 package (scripts/bootstrap --test)")
        let run = try await runCommand(Self.sqlite3, [store.path, sql])
        try #require(run.status == 0, "sqlite3: \(run.stderr)")
    }

    @Test func anUntouchedChainVerifiesToItsHead() throws {
        #expect(try store.verifyAudit() == AuditVerification(rows: 0, head: nil, firstBad: nil))
        #expect(try store.auditHead() == nil)
        try fiveRows()
        let result = try store.verifyAudit()
        #expect(result.intact)
        #expect(result.rows == 5)
        let head = try #require(try store.auditHead())
        #expect(result.head == head)
        #expect(head.id == 5 && head.hash.count == 32 && head.hex.count == 64)
        // Each row points at the one before it; the first at 32 zero bytes.
        let links = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT prev_hash, hash FROM audit ORDER BY id").map { ($0[0] as Data, $0[1] as Data) }
        }
        #expect(links.first?.0 == Data(count: 32))
        for (earlier, later) in zip(links, links.dropFirst()) { #expect(later.0 == earlier.1) }
    }

    @Test func anEditWithTheTriggersDroppedIsFoundAtThatRow() async throws {
        try fiveRows()
        try await shell("DROP TRIGGER audit_no_update; UPDATE audit SET actor='mallory' WHERE id=3;")
        let result = try store.verifyAudit()
        #expect(!result.intact)
        #expect(result.rows == 2)
        #expect(result.firstBad == AuditBreak(id: 3, kind: .content, problem: "its content does not match its hash (edited?)"))
        #expect(result.firstBad?.description == "row 3: its content does not match its hash (edited?)")
    }

    @Test func anEditThatAlsoRehashesItsRowIsFoundAtTheNextRow() async throws {
        // Recomputing row 3's own hash is not enough: row 4 still points at the old one.
        try fiveRows()
        try await shell("DROP TRIGGER audit_no_update; UPDATE audit SET actor='mallory' WHERE id=3;")
        try await store.pool.write { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT id, at, actor, action, subject, detail, prev_hash FROM audit WHERE id = 3"))
            let rehashed = AuditChain.hash(previous: row[6], fields: (0..<6).map { row[$0] })
            try db.execute(sql: "UPDATE audit SET hash = ? WHERE id = 3", arguments: [rehashed])
        }
        let result = try store.verifyAudit()
        #expect(result.firstBad?.id == 4)
        #expect(result.firstBad?.kind == .previousHash)
        #expect(result.rows == 3)
    }

    @Test func aDeletedRowIsFoundAtTheRowAfterIt() async throws {
        try fiveRows()
        try await shell("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id=3;")
        let result = try store.verifyAudit()
        #expect(result.firstBad == AuditBreak(id: 4, kind: .previousHash,
                                              problem: "its previous hash is not row 2's hash (row removed or reordered?)"))
        // Removing the first row shows at the new first row.
        try await shell("DELETE FROM audit WHERE id=1;")
        #expect(try store.verifyAudit().firstBad?.id == 2)
        #expect(try store.verifyAudit().firstBad?.kind == .previousHash)
    }

    @Test func rowsWrittenAfterTamperingStillChainAndTheBreakStaysNamed() async throws {
        try fiveRows()
        try await shell("DROP TRIGGER audit_no_update; UPDATE audit SET detail='role=admin' WHERE id=2;")
        try store.audit(actor: "op", action: AuditAction(rawValue: "later"), subject: nil)
        #expect(try store.verifyAudit().firstBad?.id == 2)
        #expect(try store.auditHead()?.id == 6)
    }

    /// A store from before the chain (v3) gets its existing rows chained by migration v4, in id order.
    @Test func theV3EraRowsAreBackfilledIntoAnIntactChain() async throws {
        let path = dir.file("old/outlawd.sqlite")
        try FileManager.default.createDirectory(atPath: dir.file("old"), withIntermediateDirectories: true)
        do {
            let pool = try DatabasePool(path: path)
            try Store.migrator.migrate(pool, upTo: "v3: order over every tag an event names; read-back baselines")
            try await pool.write { db in
                try db.execute(sql: """
                    INSERT INTO audit (at, actor, action, subject, detail) VALUES
                      (1764633600.25, 'root', 'device.add', 'HH-1', NULL),
                      (1764633601.5, 'root', 'user.add', 'jane', 'role=user'),
                      (1764633602, 'outlawd', 'uploads.pause', NULL, NULL);
                    """)
            }
        }
        let upgraded = try Store(path: path, pinRounds: 1000)
        let result = try upgraded.verifyAudit()
        #expect(result.intact && result.rows == 3)
        #expect(result.head?.id == 3)
        // The append-only triggers are back after the backfill.
        #expect(throws: (any Error).self) { try upgraded.pool.write { db in try db.execute(sql: "UPDATE audit SET actor = 'z'") } }
        #expect(throws: (any Error).self) { try upgraded.pool.write { db in try db.execute(sql: "DELETE FROM audit") } }
        // New rows continue the backfilled chain.
        try upgraded.audit(actor: "op", action: AuditAction(rawValue: "after"), subject: nil)
        #expect(try upgraded.verifyAudit().rows == 4)
        #expect(try upgraded.verifyAudit().intact)
    }

    /// The encoding documented on `AuditChain`, recomputed here by hand for one row.
    @Test func theHashIsTheDocumentedEncoding() throws {
        try store.audit(actor: "op", action: AuditAction(rawValue: "a"), subject: nil, detail: "d")
        let (at, stored) = try store.pool.read { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT at, hash FROM audit WHERE id = 1"))
            return (row[0] as Double, row[1] as Data)
        }
        func bigEndian(_ n: UInt64) -> Data { withUnsafeBytes(of: n.bigEndian) { Data($0) } }
        var bytes = Data(count: 32)
        bytes += Data([1]) + bigEndian(1)
        bytes += Data([2]) + bigEndian(at.bitPattern)
        bytes += Data([3, 0, 0, 0, 2]) + Data("op".utf8)
        bytes += Data([3, 0, 0, 0, 1]) + Data("a".utf8)
        bytes += Data([0])
        bytes += Data([3, 0, 0, 0, 1]) + Data("d".utf8)
        #expect(Secrets.sha256(bytes) == stored)
    }
}
