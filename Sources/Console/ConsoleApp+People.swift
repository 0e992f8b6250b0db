import DeviceServer
import Foundation
import OutlawKeys
import OutlawProtocol
import OutlawStore

/// Settings, Users and Keys: people and their Metrc keys.
extension ConsoleApp {
    func settingsBody(_ visitor: Visitor) async throws -> String {
        let user = visitor.user
        let signing = await metrcKeyStatus(user)
        let health = try await store.keyHealth(userID: user.id)
        var context: [String: Any] = ["csrf": visitor.session.csrf, "action": "/settings/key",
                                      "signing": Self.signingSentence(signing, last4: health?.last4)]
        if let health {
            let policy = keyPolicy()
            context["key"] = ["last4": health.last4, "status": Self.statusWords(health.status), "setBy": health.setBy,
                              "setAt": Self.shown(health.setAt), "expiry": policy.day(policy.expectedExpiry(KeyFacts(health)))]
        }
        let uploads = try await store.recentUploads(user: user.name)
        context["hasUploads"] = !uploads.isEmpty
        context["uploads"] = uploads.map { upload -> [String: Any] in
            var row: [String: Any] = [
                "device": upload.device, "batch": upload.batch, "received": Self.shown(upload.receivedAt),
                "states": upload.states.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", "),
                "signed": upload.signedWith.isEmpty ? "not uploaded yet"
                    : upload.signedWith.map { $0.0 == .personal ? "\($0.1) with \(user.name)'s own key" : "\($0.1) with the Default key" }
                    .joined(separator: ", "),
            ]
            if let message = upload.lastMessage { row["message"] = message }
            return row
        }
        return ConsoleTemplates.render("settings", context)
    }

    /// Whose key signs this person's uploads, as a sentence.
    static func signingSentence(_ key: LoginKey, last4: String?) -> String {
        switch key.metrcKey {
        case .personal:
            return "Your own key (…\(last4 ?? "????")) signs your uploads: Metrc records them under your name."
        case .default:
            return "The facility's Default key signs your uploads: Metrc records them under the name of whoever made that key. Set your own key below."
        case .rejected:
            return "Metrc refused your key: your uploads wait until you set a new one below."
        case .required:
            return "This facility requires a personal key: your uploads wait until you set one below."
        }
    }

    static func statusWords(_ status: KeyStatus) -> String {
        switch status {
        case .ok: "accepted by Metrc"
        case .unverified: "not yet checked with Metrc"
        case .rejected: "refused by Metrc"
        }
    }

    /// Sets (`key` given) or clears `target`'s personal key through `KeyService`, the one path `set_key` and
    /// `outlawctl key` take: checked with Metrc first, audited with the person who did it.
    func setKey(target: String, key: String?, page: ConsolePage, visitor: Visitor) async -> ConsoleResponse {
        guard ConsoleAccess.canSetKey(actor: visitor.user, target: target) else {
            return await show(page, visitor: visitor, problem: "You can set only your own key. An admin sets other people's keys.", status: 403)
        }
        do {
            guard try await Blocking.run({ [store] in try store.user(named: target) }) != nil else {
                return await show(page, visitor: visitor, problem: "There is no user named \(Names.shown(target)).", status: 404)
            }
            let service = keys()
            guard let key else {
                let actor = visitor.user.name
                try await Blocking.run { try service.clear(user: target, actor: actor) }
                let whose = target == visitor.user.name ? "Your key was removed" : "The key of \(target) was removed"
                return await show(page, visitor: visitor, notice: "\(whose): the Default key signs again.")
            }
            guard key.count >= 8, key.count <= 200, key.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                return await show(page, visitor: visitor, problem: "That does not look like a Metrc API key (8 to 200 characters, no spaces). Nothing was saved.",
                                  status: 400)
            }
            let whose = target == visitor.user.name ? "your key" : "the key for \(target)"
            switch try await service.set(user: target, key: key, actor: visitor.user.name) {
            case .stored(verified: true):
                return await show(page, visitor: visitor, notice: "Metrc accepted \(whose) (…\(key.suffix(4))). It is saved and signs uploads from now on.")
            case .stored(verified: false):
                return await show(page, visitor: visitor,
                                  notice: "Metrc could not be reached, so \(whose) (…\(key.suffix(4))) is stored unverified. The first upload will tell whether Metrc takes it.")
            case .rejected:
                return await show(page, visitor: visitor, problem: "Metrc refused \(whose) (…\(key.suffix(4))). Nothing was saved. Copy the key again from Metrc.",
                                  status: 400)
            }
        } catch let error as StoreError {
            return await show(page, visitor: visitor, problem: Self.sentence(error.description), status: 400)
        } catch {
            return await show(page, visitor: visitor, problem: "The server cannot store the key right now. Try again in a moment.", status: 503)
        }
    }

    func usersBody(_ visitor: Visitor) throws -> String {
        let admin = ConsoleAccess.canManageUsers(visitor.user)
        // A Console person sees only themselves.
        let people = try store.users().filter { admin || $0.name == visitor.user.name }
        let keyed = Dictionary(try store.keyHealth().map { ($0.user, $0) }, uniquingKeysWith: { a, _ in a })
        return ConsoleTemplates.render("users", [
            "admin": admin, "csrf": visitor.session.csrf,
            "people": people.map { person -> [String: Any] in
                let key = keyed[person.name]
                return ["name": person.name, "role": person.role.rawValue.capitalized, "state": person.active ? "active" : "disabled",
                        "key": key.map { "…\($0.last4), \(Self.statusWords($0.status))" } ?? "none: the Default key signs",
                        "hasKey": key != nil, "toggle": person.active ? "disable" : "enable",
                        "toggleLabel": person.active ? "Disable" : "Re-enable"]
            },
        ])
    }

    /// Add, disable, re-enable, reset a PIN: Admin only; each through the store call outlawctl uses, audited.
    func manageUser(_ path: String, form: ConsoleForm, visitor: Visitor) async -> ConsoleResponse {
        guard ConsoleAccess.canManageUsers(visitor.user) else {
            return await show(.users, visitor: visitor, problem: "Only an admin can change people.", status: 403)
        }
        guard let name = form.text("user") else { return await show(.users, visitor: visitor, problem: "Give the person's user name.", status: 400) }
        let actor = visitor.user.name
        do {
            switch path {
            case "/users/add":
                guard let role = form.text("role").flatMap(Role.init(rawValue:)) else {
                    return await show(.users, visitor: visitor, problem: "Choose a role: User, Console or Admin.", status: 400)
                }
                let pin = form["pin"] ?? ""
                try await Blocking.run { [store] in try store.addUser(name: name, role: role, pin: pin, actor: actor) }
                return await show(.users, visitor: visitor, notice: "\(name) was added as \(role.rawValue.capitalized).")
            case "/users/disable":
                guard name != actor else { return await show(.users, visitor: visitor, problem: "You cannot disable yourself.", status: 400) }
                try await Blocking.run { [store] in try store.disableUser(name: name, actor: actor) }
                sessions.withLock { $0.close(user: name) }
                return await show(.users, visitor: visitor, notice: "\(name) is disabled: signed out everywhere, and their handheld logins end.")
            case "/users/enable":
                try await Blocking.run { [store] in try store.enableUser(name: name, actor: actor) }
                return await show(.users, visitor: visitor, notice: "\(name) is active again.")
            default:
                let pin = form["pin"] ?? ""
                try await Blocking.run { [store] in try store.setPIN(name: name, pin: pin, actor: actor) }
                if name != actor { sessions.withLock { $0.close(user: name) } }
                return await show(.users, visitor: visitor, notice: "The PIN of \(name) was reset; a lock on the name is lifted.")
            }
        } catch let error as StoreError {
            return await show(.users, visitor: visitor, problem: Self.sentence(error.description), status: 400)
        } catch {
            return await show(.users, visitor: visitor, problem: "The server cannot change users right now. Try again in a moment.", status: 503)
        }
    }

    func keysBody(_ visitor: Visitor) throws -> String {
        let rows = KeyRow.urgentFirst(try KeyRow.all(store, policy: keyPolicy(), now: now()))
        return ConsoleTemplates.render("keys", [
            "hasRows": !rows.isEmpty,
            "rows": rows.map { row -> [String: Any] in
                ["whose": row.user ?? "Default key (everyone without their own)", "kind": row.kind, "last4": row.last4, "status": row.status,
                 "setBy": row.setBy, "setAt": Self.shown(row.setAt),
                 "lastCheck": row.lastCheckAt.map { "\(Self.shown($0)): \(row.lastCheckResult ?? "-")" } ?? "not checked yet",
                 "expiry": row.expectedExpiry, "expiring": row.expiring, "urgent": row.expiring || row.status == KeyStatus.rejected.rawValue]
            },
        ])
    }

    /// A store message ("user name must be ...") as a sentence: capital first, full stop last.
    static func sentence(_ text: String) -> String {
        guard let first = text.first else { return text }
        let capitalized = first.uppercased() + text.dropFirst()
        return capitalized.hasSuffix(".") ? capitalized : capitalized + "."
    }
}
