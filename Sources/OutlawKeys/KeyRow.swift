import Foundation
import OutlawStore

/// One key as `outlawctl key list` and the console's Keys page show it: a user's own, or the Default key (no
/// `user`), which signs for everyone without one. Never the key: its last 4 characters.
public struct KeyRow: Encodable, Sendable, Equatable {
    public let user: String?
    public let kind: String
    public let last4: String
    public let status: String
    public let setAt: Date
    public let setBy: String
    public let lastCheckAt: Date?
    public let lastCheckResult: String?
    public let acceptedAt: Date?
    public let expectedExpiry: String
    public let expiring: Bool

    /// Every personal key, then the Default key as the daemon last recorded it.
    public static func all(_ store: Store, policy: KeyHealthPolicy, now: Date) throws -> [KeyRow] {
        var rows = try store.keyHealth().map { key in
            let facts = KeyFacts(key)
            return KeyRow(
                user: key.user, kind: "personal", last4: key.last4, status: key.status.rawValue, setAt: key.setAt, setBy: key.setBy,
                lastCheckAt: key.lastCheckAt, lastCheckResult: key.lastCheckResult?.rawValue, acceptedAt: key.acceptedAt,
                expectedExpiry: policy.day(policy.expectedExpiry(facts)), expiring: policy.isExpiring(facts, now: now))
        }
        if let key = try store.defaultKeyHealth() {
            let status = try store.defaultKeyStatus()
            let facts = KeyFacts(key, status: status)
            rows.append(KeyRow(
                user: nil, kind: "default", last4: key.last4, status: status?.rawValue ?? "unverified", setAt: key.since, setBy: "credential",
                lastCheckAt: key.lastCheckAt, lastCheckResult: key.lastCheckResult?.rawValue, acceptedAt: key.acceptedAt,
                expectedExpiry: policy.day(policy.expectedExpiry(facts)), expiring: policy.isExpiring(facts, now: now)))
        }
        return rows
    }

    /// The Keys page's order: rejected keys first, then expiring ones, then the rest in the listing's order.
    public static func urgentFirst(_ rows: [KeyRow]) -> [KeyRow] {
        func rank(_ row: KeyRow) -> Int { row.status == KeyStatus.rejected.rawValue ? 0 : row.expiring ? 1 : 2 }
        return rows.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }
}
