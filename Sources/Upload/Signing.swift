import OutlawProtocol
import OutlawStore

/// Whose key signs one collector's uploads, and why: the rule of Outlaw's help article, as a pure function.
public enum SigningDecision: Sendable, Equatable {
    /// The collector's own key: Metrc records the collector.
    case personal(key: String)
    /// The facility's Default key, because the collector has no key of their own.
    case defaultKey(key: String, reason: String)
    /// Nobody may sign now; the events wait (`held`) until a person fixes the key.
    case hold(code: HoldCode, reason: String)

    /// Which kind of key signs, as recorded on attempts and shown to operators; nil when held.
    public var keyKind: KeyKind? {
        switch self {
        case .personal: return .personal
        case .defaultKey: return .default
        case .hold: return nil
        }
    }

    /// The key that signs, if anyone may sign.
    public var key: String? {
        switch self {
        case .personal(let key), .defaultKey(let key, _): return key
        case .hold: return nil
        }
    }
}

/// The state of the facility's Default key as the uploader knows it.
public enum DefaultKeyState: Sendable, Equatable {
    case usable(String)
    case rejected
    case missing
}

public enum SigningPolicy {
    /// Decides who signs for a collector. A rejected personal key is never silently replaced by the Default key.
    public static func decide(collector: String, personalKey: SigningKey?, defaultKey: DefaultKeyState,
                              requirePersonalKeys: Bool) -> SigningDecision
    {
        if let personalKey {
            switch personalKey.status {
            case .ok, .unverified: return .personal(key: personalKey.key)
            case .rejected: return .hold(code: .keyRejected, reason: "\(collector)'s Metrc key was rejected by Metrc")
            }
        }
        if requirePersonalKeys {
            return .hold(code: .keyRequired, reason: "the facility requires personal keys and \(collector) has none")
        }
        switch defaultKey {
        case .usable(let key): return .defaultKey(key: key, reason: "\(collector) has no personal key")
        case .rejected: return .hold(code: .defaultKeyRejected, reason: "the facility's Default key was rejected by Metrc")
        case .missing: return .hold(code: .defaultKeyMissing, reason: "no Default key is configured and \(collector) has no personal key")
        }
    }

    /// What `login` tells the handheld about a user's key.
    public static func loginStatus(personalKey: KeyStatus?, requirePersonalKeys: Bool) -> MetrcKeyStatus {
        switch personalKey {
        case .ok, .unverified: return .personal
        case .rejected: return .rejected
        case nil: return requirePersonalKeys ? .required : .default
        }
    }
}
