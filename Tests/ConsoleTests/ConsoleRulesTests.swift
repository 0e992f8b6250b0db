import Foundation
import Testing
@testable import Console
@testable import OutlawKeys
@testable import OutlawStore

/// The console's pure parts: who may do what, form tokens, session expiry on an injected clock, bounded forms.
@Suite("Console rules", .timeLimit(.minutes(1)))
struct ConsoleRulesTests {
    static func user(_ name: String, _ role: Role, active: Bool = true) -> User {
        User(id: 1, name: name, role: role, active: active, createdAt: Date(timeIntervalSince1970: 0))
    }

    @Test func pagesByRole() {
        #expect(ConsoleAccess.pages(for: .admin) == ConsolePage.allCases)
        #expect(ConsoleAccess.pages(for: .console) == [.settings, .users, .keys, .review, .failed, .status])
        #expect(ConsoleAccess.pages(for: .user) == [.status])
        #expect(!ConsoleAccess.canSee(.settings, role: .user))
        #expect(!ConsoleAccess.canSee(.users, role: .user))
    }

    @Test func whoSetsWhoseKey() {
        #expect(ConsoleAccess.canSetKey(actor: Self.user("ann", .admin), target: "john"))
        #expect(ConsoleAccess.canSetKey(actor: Self.user("jane", .console), target: "jane"))
        #expect(!ConsoleAccess.canSetKey(actor: Self.user("jane", .console), target: "john"))
        #expect(!ConsoleAccess.canSetKey(actor: Self.user("john", .user), target: "john"))
        #expect(!ConsoleAccess.canSetKey(actor: Self.user("ann", .admin, active: false), target: "john"))
        #expect(ConsoleAccess.canManageUsers(Self.user("ann", .admin)))
        #expect(!ConsoleAccess.canManageUsers(Self.user("jane", .console)))
        #expect(ConsoleAccess.canDecide(Self.user("jane", .console)))
        #expect(!ConsoleAccess.canDecide(Self.user("john", .user)))
    }

    @Test func formTokensMatchExactly() {
        let token = ConsoleSessions.randomToken()
        #expect(CSRF.matches(token, token))
        #expect(!CSRF.matches(nil, token))
        #expect(!CSRF.matches("", token))
        #expect(!CSRF.matches(String(token.dropLast()) + (token.last == "A" ? "B" : "A"), token))
        #expect(!CSRF.matches(token + "x", token))
    }

    @Test func sessionsEndAfterThirtyIdleMinutesAndOnClose() {
        var sessions = ConsoleSessions()
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        let (token, session) = sessions.open(user: "jane", now: t0)
        #expect(token.count == 43)  // 256 random bits
        #expect(sessions.touch(token, now: t0.addingTimeInterval(29 * 60))?.csrf == session.csrf)
        // Each request restarts the idle time: 29 more minutes are still fine, 30 idle ones are not.
        #expect(sessions.touch(token, now: t0.addingTimeInterval(58 * 60)) != nil)
        #expect(sessions.touch(token, now: t0.addingTimeInterval(88 * 60)) == nil)
        #expect(sessions.touch(token, now: t0.addingTimeInterval(88 * 60 + 1)) == nil)
        let (other, _) = sessions.open(user: "john", now: t0)
        sessions.close(other)
        #expect(sessions.touch(other, now: t0) == nil)
    }

    @Test func aTamperedTokenMatchesNothing() {
        var sessions = ConsoleSessions()
        let now = Date()
        let (token, _) = sessions.open(user: "jane", now: now)
        var bytes = Array(token.utf8)
        bytes[5] = bytes[5] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        #expect(sessions.touch(String(decoding: bytes, as: UTF8.self), now: now) == nil)
        #expect(sessions.touch(token + "=", now: now) == nil)
        #expect(sessions.touch("", now: now) == nil)
        #expect(sessions.touch(token, now: now) != nil)
    }

    @Test func sessionsStayBounded() {
        var sessions = ConsoleSessions(capacity: 10)
        let now = Date()
        for i in 0..<50 { _ = sessions.open(user: nil, now: now.addingTimeInterval(Double(i))) }
        #expect(sessions.count == 10)
    }

    @Test func formsAreDecodedAndBounded() throws {
        let form = try ConsoleForm(body: Array("csrf=abc&user=jane+doe&key=a%2Bb%3D&csrf=evil".utf8))
        #expect(form["csrf"] == "abc")  // the first copy wins
        #expect(form["user"] == "jane doe")
        #expect(form["key"] == "a+b=")
        #expect(throws: ConsoleForm.Refusal.self) { try ConsoleForm(body: Array(repeating: UInt8(ascii: "a"), count: ConsoleForm.maxBodyBytes + 1)) }
        #expect(throws: ConsoleForm.Refusal.self) { try ConsoleForm(body: Array(("k=" + String(repeating: "x", count: 1025)).utf8)) }
        #expect(throws: ConsoleForm.Refusal.self) { try ConsoleForm(body: Array((0..<65).map { "f\($0)=1" }.joined(separator: "&").utf8)) }
        #expect(throws: ConsoleForm.Refusal.self) { try ConsoleForm(body: Array("k=%zz".utf8)) }
        #expect(throws: ConsoleForm.Refusal.self) { try ConsoleForm(body: Array("k=%ff".utf8)) }
    }

    @Test func cookiesAreSecureHttpOnlyStrict() {
        let cookie = ConsoleServer.sessionCookie("abc")
        #expect(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"))
        #expect(ConsoleServer.sessionCookie("").contains("Max-Age=0"))
        #expect(ConsoleServer.sessionToken(["a=1; __Host-outlaw=tok; b=2"]) == "tok")
        #expect(ConsoleServer.sessionToken(["a=1"]) == nil)
    }

    @Test func everyAnswerCarriesTheSecurityHeaders() {
        for response in [ConsoleResponse(status: 200, body: "x"), ConsoleResponse(status: 303, body: "", setSession: "tok", location: "/"),
                         ConsoleResponse(status: 403, body: "no")] {
            let headers = Dictionary(ConsoleServer.headers(for: response), uniquingKeysWith: { a, _ in a })
            #expect(headers["Cache-Control"] == "no-store")
            #expect(headers["Content-Security-Policy"]?.hasPrefix("default-src 'self'") == true)
        }
        let signedIn = Dictionary(ConsoleServer.headers(for: ConsoleResponse(status: 303, body: "", setSession: "tok")), uniquingKeysWith: { a, _ in a })
        #expect(signedIn["Set-Cookie"] == "__Host-outlaw=tok; Path=/; Secure; HttpOnly; SameSite=Strict")
    }

    @Test func templatesEscapeHTML() {
        let html = ConsoleTemplates.render("message", ["text": "<script>alert(1)</script> & \"x\""])
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;"))
    }

    @Test func keysPageOrderPutsRejectedThenExpiringFirst() {
        func row(_ user: String, _ status: String, expiring: Bool) -> KeyRow {
            KeyRow(user: user, kind: "personal", last4: "abcd", status: status, setAt: Date(), setBy: "x", lastCheckAt: nil,
                   lastCheckResult: nil, acceptedAt: nil, expectedExpiry: "2027-01-01", expiring: expiring)
        }
        let rows = [row("a", "ok", expiring: false), row("b", "ok", expiring: true), row("c", "rejected", expiring: false), row("d", "ok", expiring: false)]
        #expect(KeyRow.urgentFirst(rows).map(\.user) == ["c", "b", "a", "d"])
    }
}
