import Foundation
import GRDB
import OutlawTestSupport
import Synchronization
import Testing
@testable import OutlawStore

/// PIN checks that guesses cannot race, tickets issued with a good PIN, and PIN hashes peppered with the store key.
@Suite("Logins and PIN hashes")
struct LoginTests {
    let dir: TempDirectory
    init() throws { dir = try TempDirectory("outlawd-login") }

    static let storeKey = KeySeal(text: String(repeating: "ab", count: 32))!

    func store(seal: KeySeal? = nil) throws -> Store {
        try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000, seal: seal)
    }

    @Test func concurrentGuessesDeriveAtMostFiveKeysAndTheLockBeatsALateRightPIN() async throws {
        let store = try store()
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let checks = Counter()
        let outcomes = try await withThrowingTaskGroup(of: LoginOutcome.self) { group in
            for i in 0..<40 {
                let pin = i == 39 ? "4821" : String(format: "%04d", 6000 + i)
                group.addTask {
                    try await store.login(LoginRequest(name: "jane", pin: pin), beforeCheck: { checks.add() }).outcome
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(checks.value <= Store.maxPINFailures, "PBKDF2 ran \(checks.value) times")
        #expect(outcomes.filter { if case .locked = $0 { true } else { false } }.count >= 35)
        guard case .locked = try await store.login(name: "jane", pin: "4821") else {
            Issue.record("the right PIN after the lock was not answered locked")
            return
        }
        #expect(try store.auditEntries().filter { $0.action == "login.locked" }.count == 1)
    }

    @Test func honestLoginsOfOneNameAtOnceAllSucceedAndLockNothing() async throws {
        // A crew's handhelds log the same person in together after a restart: checks still running are not failures.
        let store = try store()
        try store.addUser(name: "john", role: .user, pin: "4821", actor: "test")
        let checks = Counter()
        let outcomes = try await withThrowingTaskGroup(of: LoginOutcome.self) { group in
            for _ in 0..<16 {
                group.addTask { try await store.login(LoginRequest(name: "john", pin: "4821"), beforeCheck: { checks.add() }).outcome }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { if case .ok = $0 { true } else { false } }.count == 16, "\(outcomes)")
        #expect(checks.value == 16)
        #expect(try store.auditEntries().filter { $0.action == "login.locked" }.isEmpty)
    }

    @Test func aGoodPINFromADeviceIssuesATicketBoundToItAndTheUser() async throws {
        let store = try store()
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        _ = try store.addDevice(name: "HH-1", actor: "test")
        let device = try #require(try store.devices().first)
        let now = Date()
        let good = try await store.login(LoginRequest(name: "jane", pin: "4821", ticketDevice: device.id, ticketLifetime: 3600), now: now)
        let ticket = try #require(good.ticket)
        #expect(ticket.expiresAt == now.addingTimeInterval(3600))
        let bad = try await store.login(LoginRequest(name: "jane", pin: "0000", ticketDevice: device.id), now: now)
        #expect(bad.outcome == .badCredentials && bad.ticket == nil)
        // Only the ticket's hash is kept.
        let kept = try DatabaseQueue(path: dir.file("state/outlawd.sqlite")).read { db in
            try Row.fetchAll(db, sql: "SELECT hash, device_id FROM login_tickets")
        }
        #expect(kept.count == 1 && kept[0]["device_id"] as Int64 == device.id)
        #expect(kept[0]["hash"] as Data == Secrets.tokenHash(ticket.token))
        #expect(!(String(data: kept[0]["hash"] as Data, encoding: .utf8) ?? "").contains(ticket.token))
    }

    @Test func withAStoreKeyPINHashesArePepperedAndOldOnesGainThePepperAtTheNextGoodLogin() async throws {
        // A PIN set before the store key existed: plain PBKDF2.
        do {
            let old = try store()
            try old.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        }
        let sealed = try store(seal: Self.storeKey)
        try sealed.addUser(name: "john", role: .user, pin: "1357", actor: "test")
        func row(_ name: String) throws -> (hash: Data, peppered: Bool) {
            try DatabaseQueue(path: dir.file("state/outlawd.sqlite")).read { db in
                let r = try #require(try Row.fetchOne(db, sql: "SELECT pin_hash, pin_peppered FROM users WHERE name = ?", arguments: [name]))
                return (r["pin_hash"], r["pin_peppered"])
            }
        }
        #expect(try row("john").peppered && !row("jane").peppered)
        let before = try row("jane").hash
        guard case .ok = try await sealed.login(name: "jane", pin: "4821") else { Issue.record("old hash no longer verifies"); return }
        let after = try row("jane")
        #expect(after.peppered && after.hash != before)
        guard case .ok = try await sealed.login(name: "jane", pin: "4821") else { Issue.record("upgraded hash does not verify"); return }
        guard case .ok = try await sealed.login(name: "john", pin: "1357") else { Issue.record("peppered hash does not verify"); return }
        // The store alone (no store key, or another one) cannot check a peppered PIN.
        let other = try store(seal: KeySeal(text: String(repeating: "cd", count: 32)))
        #expect(try await other.login(name: "john", pin: "1357") == .badCredentials)
    }
}

/// Counts calls from concurrent tasks.
final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
