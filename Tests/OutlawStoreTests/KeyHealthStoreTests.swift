import Foundation
import GRDB
import OutlawProtocol
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// What the scheduled key check records (migration "v5: key health").
@Suite("Store: key health")
struct KeyHealthStoreTests {
    let dir: TempDirectory
    let store: Store
    let t0 = Date(timeIntervalSince1970: 1_790_000_000.25)

    init() throws {
        dir = try TempDirectory("outlawd-keyhealth")
        store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000)
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
    }

    func jane() throws -> KeyHealthRecord { try #require(try store.keyHealth().first { $0.user == "jane" }) }

    @Test func settingAKeyCountsAsAnAcceptedCheck() throws {
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "op", now: t0)
        var key = try jane()
        #expect(key.last4 == "0001" && key.status == .ok && key.setBy == "op")
        #expect(key.lastCheckResult == .accepted && key.lastCheckAt == t0 && key.acceptedAt == t0 && key.metrcExpiresAt == nil)
        // Stored while Metrc was unreachable: never checked yet.
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0002", status: .unverified, actor: "op", now: t0)
        key = try jane()
        #expect(key.status == .unverified && key.lastCheckAt == nil && key.lastCheckResult == nil && key.acceptedAt == nil)
    }

    @Test func anAcceptedCheckMakesAnUnverifiedKeyGood() throws {
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .unverified, actor: "op", now: t0)
        let setAt = try jane().setAt
        let later = t0.addingTimeInterval(60)
        let expires = t0.addingTimeInterval(86_400 * 30)
        #expect(try store.recordKeyCheck(userID: try jane().userID, setAt: setAt, result: .accepted, metrcExpiresAt: expires, now: later))
        let key = try jane()
        #expect(key.status == .ok && key.acceptedAt == later && key.lastCheckAt == later && key.lastCheckResult == .accepted)
        #expect(key.metrcExpiresAt == expires)
        // Unreachable: only the attempt is noted.
        let after = later.addingTimeInterval(60)
        #expect(try store.recordKeyCheck(userID: key.userID, setAt: setAt, result: .unreachable, now: after))
        #expect(try jane().acceptedAt == later && jane().lastCheckAt == after && jane().lastCheckResult == .unreachable)
    }

    @Test func aCheckOfAReplacedKeyChangesNothing() throws {
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "op", now: t0)
        let old = try jane()
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0002", status: .ok, actor: "op", now: t0.addingTimeInterval(5))
        #expect(try !store.recordKeyCheck(userID: old.userID, setAt: old.setAt, result: .unreachable, now: t0.addingTimeInterval(9)))
        #expect(try store.markUserKeyRejected(userID: old.userID, setAt: old.setAt, now: t0.addingTimeInterval(9)) == nil)
        #expect(try jane().status == .ok && jane().last4 == "0002" && jane().lastCheckAt == t0.addingTimeInterval(5))
    }

    @Test func aRefusedCheckHoldsTheUsersWaitingEventsOnce() async throws {
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "op", now: t0)
        let token = try store.addDevice(name: "HH-1", actor: "test")
        let device = try #require(try await store.authenticateDevice(name: "HH-1", token: token))
        let validator = BatchValidator(maxBatchEvents: 10, defaultLicense: "LIC-0001", licenses: [])
        let batch = try validator.validate(["id": "b1", "user": "jane", "events": [
            ["seq": 1, "type": "plant.move", "at": "2026-11-28T14:03:11-08:00", "plant": "1A4FF0100000022000000001", "location": "Veg Room"],
        ]], now: Date()).get()
        #expect(try store.commit([IncomingBatch(deviceID: device.id, session: "s", batch: batch)]) == [.stored(events: 1)])
        let key = try jane()
        let now = t0.addingTimeInterval(86_400)
        #expect(try store.markUserKeyRejected(userID: key.userID, setAt: key.setAt, now: now) == 1)
        let after = try jane()
        #expect(after.status == .rejected && after.lastCheckResult == .refused && after.lastCheckAt == now && after.acceptedAt == t0)
        #expect(try store.queueStats().held == 1)
        // Already rejected: nothing more happens (no second audit row, no second journal error).
        #expect(try store.markUserKeyRejected(userID: key.userID, setAt: key.setAt, now: now) == nil)
        #expect(try store.auditEntries().filter { $0.action == "key.rejected" }.count == 1)
    }

    @Test func anAcceptedUploadMovesAcceptedAtButNeverUnrejects() throws {
        try store.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "op", now: t0)
        let id = try jane().userID
        try store.markUserKeyGood(userID: id, now: t0.addingTimeInterval(10))
        #expect(try jane().acceptedAt == t0.addingTimeInterval(10))
        try store.markUserKeyRejected(userID: id, now: t0.addingTimeInterval(20))
        try store.markUserKeyGood(userID: id, now: t0.addingTimeInterval(30))
        #expect(try jane().status == .rejected && jane().acceptedAt == t0.addingTimeInterval(10))
    }

    @Test func theDefaultKeyIsRememberedByFingerprintNeverByValue() throws {
        #expect(try store.defaultKeyHealth() == nil)
        try store.recordDefaultKeyCheck(key: "default-key-aaaa", result: .accepted, now: t0)
        try store.recordDefaultKeyCheck(key: "default-key-aaaa", result: .unreachable, now: t0.addingTimeInterval(60))
        let health = try #require(try store.defaultKeyHealth(key: "default-key-aaaa"))
        #expect(health.since == t0 && health.last4 == "aaaa" && health.acceptedAt == t0)
        #expect(health.lastCheckAt == t0.addingTimeInterval(60) && health.lastCheckResult == .unreachable)
        #expect(try !(store.setting("default_key_health") ?? "").contains("default-key-aaaa"))
        // Another key: not this record; once checked, it starts its own.
        #expect(try store.defaultKeyHealth(key: "default-key-bbbb") == nil)
        try store.recordDefaultKeyCheck(key: "default-key-bbbb", result: .accepted, now: t0.addingTimeInterval(120))
        #expect(try store.defaultKeyHealth()?.since == t0.addingTimeInterval(120))
    }

    /// Keys stored before v5 start from what was known: an `ok` key was accepted when it was last checked.
    @Test func keysFromBeforeTheMigrationKeepWhatWasKnown() async throws {
        let path = dir.file("old/outlawd.sqlite")
        try FileManager.default.createDirectory(atPath: dir.file("old"), withIntermediateDirectories: true)
        do {
            let pool = try DatabasePool(path: path)
            try Store.migrator.migrate(pool, upTo: "v4: audit hash chain")
            try await pool.write { db in
                try db.execute(sql: """
                    INSERT INTO users (id, name, role, pin_hash, pin_salt, pin_rounds, created_at) VALUES
                      (1, 'jane', 'user', x'00', x'00', 1000, 0), (2, 'john', 'user', x'00', x'00', 1000, 0),
                      (3, 'ann', 'user', x'00', x'00', 1000, 0);
                    INSERT INTO user_keys (user_id, key, last4, status, set_at, set_by, checked_at) VALUES
                      (1, 'k1-xxxxxxxx', 'xxxx', 'ok', 100, 'op', 200),
                      (2, 'k2-yyyyyyyy', 'yyyy', 'rejected', 100, 'op', 300),
                      (3, 'k3-zzzzzzzz', 'zzzz', 'unverified', 100, 'op', NULL);
                    """)
            }
        }
        let migrated = try Store(path: path, pinRounds: 1000)
        let keys = Dictionary(uniqueKeysWithValues: try migrated.keyHealth().map { ($0.user, $0) })
        #expect(keys["jane"]?.acceptedAt == Date(timeIntervalSince1970: 200) && keys["jane"]?.lastCheckResult == .accepted)
        #expect(keys["john"]?.acceptedAt == nil && keys["john"]?.lastCheckResult == .refused
                && keys["john"]?.lastCheckAt == Date(timeIntervalSince1970: 300))
        #expect(keys["ann"]?.lastCheckAt == nil && keys["ann"]?.lastCheckResult == nil)
    }
}
