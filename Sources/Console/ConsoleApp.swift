import DeviceServer
import Foundation
import Logging
import OutlawKeys
import OutlawProtocol
import OutlawStore
import Synchronization

/// A request as the console needs it, apart from HTTP: the adapter (`ConsoleServer`) fills it, the tests build it.
public struct ConsoleRequest: Sendable {
    public var method: String
    public var path: String
    /// The `__Host-outlaw` cookie's token, if sent.
    public var sessionToken: String?
    /// The posted form (nil for a GET), already bounded by `ConsoleForm`.
    public var form: ConsoleForm?
    /// The remote address: sign-in failures are spaced per address.
    public var remote: String

    public init(method: String, path: String, sessionToken: String? = nil, form: ConsoleForm? = nil, remote: String = "127.0.0.1") {
        self.method = method
        self.path = path
        self.sessionToken = sessionToken
        self.form = form
        self.remote = remote
    }
}

/// An answer: status, the session cookie to set (or clear), a redirect, the body.
public struct ConsoleResponse: Sendable {
    public var status: Int
    public var body: String
    public var contentType = "text/html; charset=utf-8"
    /// A new session's token: the adapter sets the cookie. `""` clears it.
    public var setSession: String?
    public var location: String?

    public init(status: Int, body: String, setSession: String? = nil, location: String? = nil) {
        self.status = status
        self.body = body
        self.setSession = setSession
        self.location = location
    }

    static func redirect(_ location: String, setSession: String? = nil) -> ConsoleResponse {
        ConsoleResponse(status: 303, body: "", setSession: setSession, location: location)
    }
}

/// What the Status page shows beyond the store: the daemon's settings that the verdict needs.
public struct ConsoleStatusSettings: Sendable {
    public var alertAfterHours: Double
    public var referenceSync: Bool
    public var referenceSyncInterval: TimeInterval
    public var connectedDevices: @Sendable () -> Int
    /// The licenses served now: their reference lists say how fresh the copy of Metrc's lists is.
    public var licenses: [String]

    public init(alertAfterHours: Double = 48, referenceSync: Bool = false, referenceSyncInterval: TimeInterval = 300, licenses: [String] = [],
                connectedDevices: @escaping @Sendable () -> Int = { 0 }) {
        self.licenses = licenses
        self.alertAfterHours = alertAfterHours
        self.referenceSync = referenceSync
        self.referenceSyncInterval = referenceSyncInterval
        self.connectedDevices = connectedDevices
    }
}

/// The console itself, apart from HTTP: sessions, sign-in, the pages and their actions, each through the services
/// the device protocol and outlawctl use (`PINCheck`, `KeyService`, the store's review, replay and user calls).
public final class ConsoleApp: Sendable {
    public static let statusRefreshSeconds = 10
    /// The Status page's facts are read again at most this often (seconds).
    static let statusMaxAge: TimeInterval = 5
    let statusCache = Mutex<StatusSnapshot?>(nil)
    let store: Store
    let keys: @Sendable () -> KeyService
    let keyPolicy: @Sendable () -> KeyHealthPolicy
    let metrcKeyStatus: @Sendable (User) async -> LoginKey
    let status: ConsoleStatusSettings
    let pinCheck: PINCheck<String>
    let sessions = Mutex(ConsoleSessions())
    let now: @Sendable () -> Date
    let logger: Logger

    public init(store: Store, keys: @escaping @Sendable () -> KeyService, keyPolicy: @escaping @Sendable () -> KeyHealthPolicy,
                metrcKeyStatus: @escaping @Sendable (User) async -> LoginKey, status: ConsoleStatusSettings = ConsoleStatusSettings(),
                pinCheck: PINCheck<String>? = nil, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.keys = keys
        self.keyPolicy = keyPolicy
        self.metrcKeyStatus = metrcKeyStatus
        self.status = status
        self.pinCheck = pinCheck ?? PINCheck(store: store)
        self.logger = logger
        self.now = now
    }

    /// A signed-in person for one request: who they are now (role and state read again each time) and their session.
    struct Visitor: Sendable {
        let user: User
        let session: ConsoleSession
    }

    public func handle(_ request: ConsoleRequest) async -> ConsoleResponse {
        if request.method == "GET", request.path == "/console.css" {
            var css = ConsoleResponse(status: 200, body: ConsoleTemplates.css)
            css.contentType = "text/css; charset=utf-8"
            return css
        }
        if request.path == "/favicon.ico" { return ConsoleResponse(status: 404, body: "") }
        guard request.method == "GET" || request.method == "POST" else {
            return page(status: 405, title: "Not allowed", problem: "This console answers only page loads and its own forms.", visitor: nil)
        }
        if request.path == "/signin" { return await signIn(request) }
        // Every other page needs a live, signed-in session.
        let session = request.sessionToken.flatMap { token in sessions.withLock { $0.touch(token, now: now()) } }
        guard let session, let name = session.user else {
            let sentence = request.sessionToken == nil ? "Sign in to use the console."
                : "Your session has ended or its cookie is not valid. Sign in again."
            // No cookie, or a live one from before sign-in: to the sign-in page, keeping that session (a browser's own
            // requests, such as /favicon.ico, must not replace the session whose form token the open page carries).
            if request.method == "GET", request.sessionToken == nil || session != nil { return .redirect("/signin") }
            return signInPage(status: request.method == "POST" ? 403 : 401, problem: sentence, user: "", fresh: true)
        }
        let user: User?
        // Store calls go through `Blocking.run`, never on the cooperative pool the device sessions share.
        do { user = try await Blocking.run { [store] in try store.user(named: name) } } catch { return unavailable(nil) }
        guard let user, user.active else {
            if let token = request.sessionToken { sessions.withLock { $0.close(token) } }
            return signInPage(status: 403, problem: "This account is disabled. Ask an admin.", user: "", fresh: true)
        }
        let visitor = Visitor(user: user, session: session)
        if request.method == "POST" {
            guard let form = request.form, CSRF.matches(form["csrf"], session.csrf) else {
                formRefused(request, user: user.name)
                return page(status: 403, title: "Form refused",
                            problem: "This form was refused: it did not carry this session's form token. Reload the page and try again.",
                            visitor: visitor)
            }
            return await post(request.path, form: form, visitor: visitor, token: request.sessionToken ?? "")
        }
        return await get(request.path, visitor: visitor)
    }

    func get(_ path: String, visitor: Visitor) async -> ConsoleResponse {
        if path == "/" { return .redirect(ConsoleAccess.canSee(.settings, role: visitor.user.role) ? "/settings" : "/status") }
        guard let page = ConsolePage(rawValue: String(path.dropFirst())) else { return notFound(visitor) }
        guard ConsoleAccess.canSee(page, role: visitor.user.role) else { return forbidden(visitor) }
        return await show(page, visitor: visitor)
    }

    /// A page as it stands, with an optional sentence on top (what an action just did, or why it was refused).
    func show(_ page: ConsolePage, visitor: Visitor, notice: String? = nil, problem: String? = nil, status: Int = 200) async -> ConsoleResponse {
        do {
            let body: String
            switch page {
            case .settings: body = try await settingsBody(visitor)
            case .users: body = try await Blocking.run { try self.usersBody(visitor) }
            case .keys: body = try await Blocking.run { try self.keysBody(visitor) }
            case .review: body = try await Blocking.run { try self.reviewBody(visitor) }
            case .failed: body = try await Blocking.run { try self.failedBody(visitor) }
            case .status: body = try await Blocking.run { try self.statusBody(visitor) }
            }
            return self.page(status: status, title: page.title, body: body, notice: notice, problem: problem, visitor: visitor, current: page,
                             refresh: page == .status ? Self.statusRefreshSeconds : nil)
        } catch {
            return unavailable(visitor)
        }
    }

    func post(_ path: String, form: ConsoleForm, visitor: Visitor, token: String) async -> ConsoleResponse {
        switch path {
        case "/signout":
            sessions.withLock { $0.close(token) }
            return .redirect("/signin", setSession: "")
        case "/settings/key", "/settings/key/clear":
            guard ConsoleAccess.canSee(.settings, role: visitor.user.role) else { return forbidden(visitor) }
            return await setKey(target: visitor.user.name, key: path == "/settings/key" ? form.text("key") : nil, page: .settings, visitor: visitor)
        case "/users/key", "/users/key/clear":
            guard ConsoleAccess.canSee(.users, role: visitor.user.role) else { return forbidden(visitor) }
            guard let target = form.text("user") else { return await show(.users, visitor: visitor, problem: "Name the person whose key to change.", status: 400) }
            return await setKey(target: target, key: path == "/users/key" ? form.text("key") : nil, page: .users, visitor: visitor)
        case "/users/add", "/users/disable", "/users/enable", "/users/pin":
            return await manageUser(path, form: form, visitor: visitor)
        case "/review/approve", "/review/reject":
            return await decide(approve: path == "/review/approve", form: form, visitor: visitor)
        case "/failed/replay":
            return await replay(form: form, visitor: visitor)
        default:
            return notFound(visitor)
        }
    }

    // MARK: Sign-in

    func signIn(_ request: ConsoleRequest) async -> ConsoleResponse {
        let existing = request.sessionToken.flatMap { token in sessions.withLock { $0.touch(token, now: now()) } }
        if request.method == "GET" {
            if existing?.user != nil { return .redirect("/") }
            if let existing { return signInPage(status: 200, problem: nil, user: "", session: existing) }
            return signInPage(status: 200, problem: nil, user: "", fresh: true)
        }
        guard let existing, let form = request.form, CSRF.matches(form["csrf"], existing.csrf) else {
            formRefused(request, user: nil)
            return signInPage(status: 403, problem: "This form was refused: it did not carry its form token. Sign in again from this page.",
                              user: "", fresh: true)
        }
        let name = form.text("user") ?? ""
        let pin = form["pin"] ?? ""
        guard !name.isEmpty, !pin.isEmpty else {
            return signInPage(status: 400, problem: "Give your user name and your PIN.", user: name, session: existing)
        }
        let attempt: LoginAttempt
        do {
            attempt = try await pinCheck.check(LoginRequest(name: name, pin: pin), source: request.remote,
                                               metadata: ["console": "sign-in", "remote": "\(request.remote)"], logger: logger,
                                               wait: { delay in try? await Task.sleep(for: delay) })
        } catch {
            return signInPage(status: 503, problem: "The server cannot check PINs right now. Try again in a moment.", user: name, session: existing)
        }
        switch attempt.outcome {
        case .ok(let user):
            // A new session for the signed-in person: the token used before sign-in is worth nothing after it.
            let opened = sessions.withLock { sessions in
                if let token = request.sessionToken { sessions.close(token) }
                return sessions.open(user: user.name, now: now())
            }
            return .redirect(ConsoleAccess.canSee(.settings, role: user.role) ? "/settings" : "/status", setSession: opened.token)
        case .badCredentials:
            return signInPage(status: 401, problem: attempt.lockedNow
                                ? "Wrong user name or PIN. This name is now locked for 15 minutes after five wrong PINs; an admin can reset the PIN."
                                : "Wrong user name or PIN.", user: name, session: existing)
        case .inactiveUser:
            return signInPage(status: 403, problem: "This account is disabled. Ask an admin.", user: name, session: existing)
        case .locked:
            return signInPage(status: 403, problem: "This name is locked after five wrong PINs. Try again in 15 minutes, or ask an admin to reset the PIN.",
                              user: name, session: existing)
        }
    }

    /// The sign-in page; `fresh` opens a new anonymous session, whose form token the page carries.
    func signInPage(status: Int, problem: String?, user: String, session: ConsoleSession? = nil, fresh: Bool = false) -> ConsoleResponse {
        var token: String?
        var session = session
        if fresh || session == nil {
            let opened = sessions.withLock { $0.open(user: nil, now: now()) }
            token = opened.token
            session = opened.session
        }
        let body = ConsoleTemplates.render("signin", ["csrf": session?.csrf ?? "", "user": user])
        var response = page(status: status, title: "Sign in", body: body, problem: problem, visitor: nil)
        response.setSession = token
        return response
    }

    /// A post without its session's form token: a journal line (never the form's fields).
    func formRefused(_ request: ConsoleRequest, user: String?) {
        var metadata: [String: Logger.MetadataValue] = ["remote": "\(request.remote)", "path": "\(Names.shown(request.path))"]
        if let user { metadata["outlaw_user"] = "\(Names.shown(user))" }
        logger.notice("console form refused: no valid form token", metadata: MessageID.consoleFormRefused.metadata(metadata))
    }

    // MARK: Page frame

    func page(status: Int, title: String, body: String = "", notice: String? = nil, problem: String? = nil, visitor: Visitor?,
              current: ConsolePage? = nil, refresh: Int? = nil) -> ConsoleResponse {
        var context: [String: Any] = ["title": title, "body": body]
        if let notice { context["notice"] = notice }
        if let problem { context["problem"] = problem }
        if let refresh { context["refresh"] = String(refresh) }
        if let visitor {
            context["signedIn"] = true
            context["userName"] = visitor.user.name
            context["roleName"] = visitor.user.role.rawValue.capitalized
            context["csrf"] = visitor.session.csrf
            context["nav"] = ConsoleAccess.pages(for: visitor.user.role).map { page -> [String: Any] in
                ["path": page.rawValue, "label": page.title, "current": page == current]
            }
        }
        return ConsoleResponse(status: status, body: ConsoleTemplates.render("layout", context))
    }

    func forbidden(_ visitor: Visitor) -> ConsoleResponse {
        page(status: 403, title: "Not for your role",
             body: ConsoleTemplates.render("message", ["text": "People with the \(visitor.user.role.rawValue.capitalized) role cannot use this page. Ask an admin if you need it.",
                                                       "link": ["href": "/status", "label": "Go to Status"]]),
             visitor: visitor)
    }

    func notFound(_ visitor: Visitor?) -> ConsoleResponse {
        page(status: 404, title: "No such page", body: ConsoleTemplates.render("message", ["text": "This console has no such page."]), visitor: visitor)
    }

    func unavailable(_ visitor: Visitor?) -> ConsoleResponse {
        page(status: 503, title: "Not available", problem: "The server cannot read its store right now. Try again in a moment.", visitor: visitor)
    }

    /// Dates as people read them on the page: local time to the minute.
    static func shown(_ date: Date?) -> String {
        guard let date else { return "never" }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: date)
    }
}
