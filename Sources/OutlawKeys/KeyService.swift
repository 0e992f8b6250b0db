import Foundation
import Metrc
import OutlawProtocol
import OutlawStore

/// Sets and clears personal Metrc keys, checking each new key with Metrc first; used by `set_key` and outlawctl.
public struct KeyService: Sendable {
    public let store: Store
    public let client: MetrcClient?
    public let requirePersonalKeys: Bool
    /// `[store] allow_unsealed_keys`: personal keys may be kept in the clear when the store has no store key.
    public let allowUnsealedKeys: Bool
    let onChange: @Sendable () -> Void

    public init(store: Store, client: MetrcClient?, requirePersonalKeys: Bool, allowUnsealedKeys: Bool = false,
                onChange: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.client = client
        self.requirePersonalKeys = requirePersonalKeys
        self.allowUnsealedKeys = allowUnsealedKeys
        self.onChange = onChange
    }

    /// Why a key is refused on a server without a store key (unless `allowUnsealedKeys`).
    public static let noStoreKeyMessage = """
        this server has no store key (store.key_file / the outlawd-store-key credential), so it cannot keep personal \
        Metrc keys sealed; add one (docs/operations.md, "Store key") or set [store] allow_unsealed_keys = true
        """

    /// What happened to a key that was offered.
    public enum SetOutcome: Sendable, Equatable {
        case stored(verified: Bool)
        case rejected
    }

    /// Checks the key with Metrc; refused keys are not stored, unreachable Metrc stores it unverified.
    /// Without a store key (and without `allowUnsealedKeys`) no key is taken: a `StoreError` before Metrc is asked.
    public func set(user: String, key: String, actor: String) async throws -> SetOutcome {
        guard store.seal != nil || allowUnsealedKeys else { throw StoreError(KeyService.noStoreKeyMessage) }
        let check: MetrcClient.KeyCheck = await client?.checkKey(key) ?? .unreachable("no Metrc vendor key configured")
        switch check {
        case .rejected:
            try store.audit(actor: actor, action: .keyRefused, subject: user, detail: "…\(key.suffix(4)) refused by Metrc; not stored")
            return .rejected
        case .valid:
            try store.setUserKey(user: user, key: key, status: .ok, actor: actor)
            onChange()
            return .stored(verified: true)
        case .unreachable:
            try store.setUserKey(user: user, key: key, status: .unverified, actor: actor)
            onChange()
            return .stored(verified: false)
        }
    }

    public func clear(user: String, actor: String) throws {
        try store.clearUserKey(user: user, actor: actor)
        onChange()
    }

    /// The `set_key` message of the device protocol, after its TLS check.
    public func handle(_ message: ClientMessage.SetKey) async -> Reply {
        guard let actor = message.actor, let pin = message.pin, let user = message.user, let change = message.key else {
            return .error(.badRequest, "set_key needs actor, pin, user (strings) and key (a string, or null to clear)")
        }
        func refuse(_ code: LoginRefusal) -> Reply {
            Reply(op: "set_key", [("user", .string(user)), ("ok", false), ("code", .string(code.rawValue))])
        }
        let login: LoginOutcome
        do {
            login = try await store.login(name: actor, pin: pin)
        } catch {
            return .error(.unavailable, "the server cannot check PINs right now; retry later")
        }
        guard case .ok(let actorUser) = login else {
            if case .locked = login { return refuse(.locked) }
            return refuse(.badCredentials)
        }
        let allowed = actorUser.role == .admin || (actorUser.role == .console && actor == user)
        guard allowed else { return refuse(.forbidden) }
        do {
            guard case .set(let key) = change else {
                try clear(user: user, actor: actor)
                return Reply(op: "set_key", [("user", .string(user)), ("ok", true),
                                             ("metrc_key", .string((requirePersonalKeys ? MetrcKeyStatus.required : .default).rawValue))])
            }
            switch try await set(user: user, key: key, actor: actor) {
            case .rejected: return refuse(.keyRejected)
            case .stored(let verified):
                return Reply(op: "set_key", [("user", .string(user)), ("ok", true), ("metrc_key", .string(MetrcKeyStatus.personal.rawValue)), ("verified", .bool(verified))])
            }
        } catch let error as StoreError {
            return Reply(op: "set_key", [("user", .string(user)), ("ok", false), ("code", .string(LoginRefusal.badRequest.rawValue)), ("message", .string(error.description))])
        } catch {
            return .error(.unavailable, "the server cannot store the key right now; retry later")
        }
    }
}
