import DeviceServer
import Foundation
import Logging
import OutlawKeys
import OutlawTestSupport
import Synchronization
import Testing
@testable import Console
@testable import OutlawStore

/// `ConsoleApp` over a real store file, without HTTP: sign-in, roles, form tokens, idle expiry on an injected clock,
/// and pages that never show a key.
@Suite("Console app", .timeLimit(.minutes(2)))
struct ConsoleAppTests {
    let dir: TempDirectory
    let store: Store
    let clock = TestClock()
    let app: ConsoleApp

    init() throws {
        dir = try TempDirectory("outlawd-console")
        let store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000, seal: nil)
        self.store = store
        try store.addUser(name: "ann", role: .admin, pin: "1111", actor: "test")
        try store.addUser(name: "jane", role: .console, pin: "2222", actor: "test")
        try store.addUser(name: "john", role: .user, pin: "3333", actor: "test")
        let clock = self.clock
        // No Metrc client: a key is stored unverified (Metrc "could not be reached").
        app = ConsoleApp(store: store, keys: { KeyService(store: store, client: nil, requirePersonalKeys: false, allowUnsealedKeys: true) },
                         keyPolicy: { KeyHealthPolicy(checkInterval: 86_400, lifetimeDays: 90, warnDays: 14) },
                         metrcKeyStatus: { _ in LoginKey(metrcKey: .default) },
                         logger: Logger(label: "console-test"), now: { clock.now })
    }

    /// Signs in as `name`; returns the session token and its form token.
    func signIn(_ name: String, pin: String) async throws -> (token: String, csrf: String) {
        let page = await app.handle(ConsoleRequest(method: "GET", path: "/signin"))
        let anonymous = try #require(page.setSession)
        let csrf = try #require(Self.csrf(in: page.body))
        let answer = await app.handle(ConsoleRequest(method: "POST", path: "/signin", sessionToken: anonymous,
                                                     form: ConsoleForm(fields: ["csrf": csrf, "user": name, "pin": pin])))
        #expect(answer.status == 303, "\(answer.body)")
        let token = try #require(answer.setSession)
        #expect(token != anonymous)
        let settings = await app.handle(ConsoleRequest(method: "GET", path: "/status", sessionToken: token))
        return (token, try #require(Self.csrf(in: settings.body)))
    }

    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: #"name="csrf" value="[A-Za-z0-9_-]+""#, options: .regularExpression) else { return nil }
        return String(html[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
    }

    @Test func aUserRoleGets403OnSettingsAndUsers() async throws {
        let (token, _) = try await signIn("john", pin: "3333")
        #expect(await app.handle(ConsoleRequest(method: "GET", path: "/settings", sessionToken: token)).status == 403)
        #expect(await app.handle(ConsoleRequest(method: "GET", path: "/users", sessionToken: token)).status == 403)
        #expect(await app.handle(ConsoleRequest(method: "GET", path: "/status", sessionToken: token)).status == 200)
    }

    @Test func aConsolePersonCannotSetAnothersKey() async throws {
        let (token, csrf) = try await signIn("jane", pin: "2222")
        let answer = await app.handle(ConsoleRequest(method: "POST", path: "/users/key", sessionToken: token,
                                                     form: ConsoleForm(fields: ["csrf": csrf, "user": "john", "key": "johns-secret-key-1234"])))
        #expect(answer.status == 403)
        #expect(try store.keyHealth().isEmpty)
        // Users shows her only herself.
        let users = await app.handle(ConsoleRequest(method: "GET", path: "/users", sessionToken: token))
        #expect(users.body.contains("user-jane") && !users.body.contains("user-john"))
    }

    @Test func postsWithoutTheFormTokenAreRefused() async throws {
        let (token, _) = try await signIn("jane", pin: "2222")
        let answer = await app.handle(ConsoleRequest(method: "POST", path: "/settings/key", sessionToken: token,
                                                     form: ConsoleForm(fields: ["key": "janes-secret-key-9876"])))
        #expect(answer.status == 403)
        #expect(answer.body.contains("form token"))
        #expect(try store.keyHealth().isEmpty)
        // Sign-in without its token is refused too.
        let signin = await app.handle(ConsoleRequest(method: "POST", path: "/signin", form: ConsoleForm(fields: ["user": "jane", "pin": "2222"])))
        #expect(signin.status == 403)
    }

    @Test func sessionsEndAfterThirtyIdleMinutesAndOnSignOut() async throws {
        let (token, csrf) = try await signIn("jane", pin: "2222")
        clock.advance(29 * 60)
        #expect(await app.handle(ConsoleRequest(method: "GET", path: "/settings", sessionToken: token)).status == 200)
        clock.advance(30 * 60)
        #expect(await app.handle(ConsoleRequest(method: "GET", path: "/settings", sessionToken: token)).status == 401)
        let (again, csrf2) = try await signIn("jane", pin: "2222")
        #expect(csrf2 != csrf)
        let out = await app.handle(ConsoleRequest(method: "POST", path: "/signout", sessionToken: again, form: ConsoleForm(fields: ["csrf": csrf2])))
        #expect(out.status == 303 && out.setSession == "")
        #expect(await app.handle(ConsoleRequest(method: "GET", path: "/settings", sessionToken: again)).status == 401)
    }

    @Test func noPageShowsAKey() async throws {
        let key = "Zq7-SECRET-personal-key-WXYZ"
        let (token, csrf) = try await signIn("ann", pin: "1111")
        let set = await app.handle(ConsoleRequest(method: "POST", path: "/users/key", sessionToken: token,
                                                  form: ConsoleForm(fields: ["csrf": csrf, "user": "jane", "key": key])))
        #expect(set.status == 200, "\(set.body)")
        #expect(set.body.contains("could not be reached"))
        #expect(set.body.contains("…WXYZ"))
        let own = await app.handle(ConsoleRequest(method: "POST", path: "/settings/key", sessionToken: token,
                                                  form: ConsoleForm(fields: ["csrf": csrf, "key": key])))
        var pages = [set.body, own.body]
        for page in ConsolePage.allCases {
            pages.append(await app.handle(ConsoleRequest(method: "GET", path: "/\(page.rawValue)", sessionToken: token)).body)
        }
        for body in pages {
            #expect(!body.contains(key))
            #expect(!body.contains(String(key.dropLast(4))))
        }
        // The audit names the admin who set it.
        #expect(try store.auditEntries().contains { $0.action == AuditAction.keySet.rawValue && $0.actor == "ann" && $0.subject == "jane" })
    }

    @Test func fiveWrongPINsLockTheNameAsOnAHandheld() async throws {
        for attempt in 1...5 {
            let page = await app.handle(ConsoleRequest(method: "GET", path: "/signin"))
            let answer = await app.handle(ConsoleRequest(method: "POST", path: "/signin", sessionToken: page.setSession,
                                                         form: ConsoleForm(fields: ["csrf": Self.csrf(in: page.body) ?? "", "user": "jane", "pin": "999\(attempt)"]),
                                                         remote: "10.0.0.\(attempt)"))
            #expect(answer.status == 401)
        }
        // The store's own lock: a handheld's login of the same name is refused now, even with the right PIN.
        let outcome = try await store.login(name: "jane", pin: "2222")
        guard case .locked = outcome else { Issue.record("expected a lock, got \(outcome)"); return }
        let page = await app.handle(ConsoleRequest(method: "GET", path: "/signin"))
        let answer = await app.handle(ConsoleRequest(method: "POST", path: "/signin", sessionToken: page.setSession,
                                                     form: ConsoleForm(fields: ["csrf": Self.csrf(in: page.body) ?? "", "user": "jane", "pin": "2222"])))
        #expect(answer.status == 403)
        #expect(answer.body.contains("locked"))
    }

    /// A browser asks for /favicon.ico (and may open other pages) between loading the sign-in form and posting it:
    /// none of that replaces the session whose form token the form carries.
    @Test func otherRequestsBeforeSignInKeepTheSignInSession() async throws {
        let page = await app.handle(ConsoleRequest(method: "GET", path: "/signin"))
        let anonymous = try #require(page.setSession)
        for path in ["/favicon.ico", "/settings", "/"] {
            let answer = await app.handle(ConsoleRequest(method: "GET", path: path, sessionToken: anonymous))
            #expect(answer.setSession == nil, "\(path)")
        }
        let answer = await app.handle(ConsoleRequest(method: "POST", path: "/signin", sessionToken: anonymous,
                                                     form: ConsoleForm(fields: ["csrf": Self.csrf(in: page.body) ?? "", "user": "jane", "pin": "2222"])))
        #expect(answer.status == 303)
    }

    @Test func anAdminManagesPeople() async throws {
        let (token, csrf) = try await signIn("ann", pin: "1111")
        func post(_ path: String, _ fields: [String: String]) async -> ConsoleResponse {
            var fields = fields
            fields["csrf"] = csrf
            return await app.handle(ConsoleRequest(method: "POST", path: path, sessionToken: token, form: ConsoleForm(fields: fields)))
        }
        #expect(await post("/users/add", ["user": "bob", "role": "console", "pin": "4444"]).status == 200)
        #expect(try store.user(named: "bob")?.role == .console)
        #expect(await post("/users/disable", ["user": "bob"]).status == 200)
        #expect(try store.user(named: "bob")?.active == false)
        #expect(await post("/users/enable", ["user": "bob"]).status == 200)
        #expect(try store.user(named: "bob")?.active == true)
        #expect(await post("/users/pin", ["user": "bob", "pin": "5555"]).status == 200)
        #expect(try await store.login(name: "bob", pin: "5555") != .badCredentials)
        let refused = await post("/users/add", ["user": "bad name", "role": "user", "pin": "4444"])
        #expect(refused.status == 400 && refused.body.contains("User name must be"))
        let actions = try store.auditEntries().filter { $0.actor == "ann" }.map(\.action)
        #expect(actions.contains(AuditAction.userAdd.rawValue) && actions.contains(AuditAction.userEnable.rawValue))
    }
}

/// The console's clock in these tests: moved by hand.
final class TestClock: Sendable {
    private let value = Mutex(Date(timeIntervalSince1970: 2_000_000_000))
    var now: Date { value.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { value.withLock { $0 += seconds } }
}
