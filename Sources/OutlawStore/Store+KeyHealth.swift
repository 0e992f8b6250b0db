import Foundation
import GRDB

/// What Metrc said when a key was last checked.
public enum KeyCheckResult: String, Sendable, Codable, DatabaseValueConvertible {
    case accepted
    case refused
    /// No usable answer (Metrc down, timeout, 5xx, 429): checked again soon.
    case unreachable
}

/// One personal key's health as the scheduled check and the listings need it; never the key itself.
public struct KeyHealthRecord: Sendable, Equatable, Codable {
    public let userID: Int64
    public let user: String
    public let last4: String
    public let status: KeyStatus
    public let setAt: Date
    public let setBy: String
    /// The last scheduled (or `key set`) check, whatever its answer.
    public let lastCheckAt: Date?
    public let lastCheckResult: KeyCheckResult?
    /// When Metrc last accepted the key (a check or an upload): the `login` answer's `key_checked_at`.
    public let acceptedAt: Date?
    /// The expiry Metrc reported for the key, when it reports one.
    public let metrcExpiresAt: Date?

    public init(userID: Int64, user: String, last4: String, status: KeyStatus, setAt: Date, setBy: String, lastCheckAt: Date?,
                lastCheckResult: KeyCheckResult?, acceptedAt: Date?, metrcExpiresAt: Date?)
    {
        self.userID = userID
        self.user = user
        self.last4 = last4
        self.status = status
        self.setAt = setAt
        self.setBy = setBy
        self.lastCheckAt = lastCheckAt
        self.lastCheckResult = lastCheckResult
        self.acceptedAt = acceptedAt
        self.metrcExpiresAt = metrcExpiresAt
    }
}

/// The facility's Default key as the daemon last saw it (a setting the daemon writes; outlawctl reads it). The
/// key comes from a credential, not from the store, so "set" means the day this daemon first used it.
public struct DefaultKeyHealth: Sendable, Equatable, Codable {
    /// The first 16 hex digits of the key's SHA-256: tells a replaced key from the old one, reveals nothing.
    public var fingerprint: String
    public var last4: String
    public var since: Date
    public var lastCheckAt: Date?
    public var lastCheckResult: KeyCheckResult?
    public var acceptedAt: Date?

    public init(fingerprint: String, last4: String, since: Date, lastCheckAt: Date? = nil, lastCheckResult: KeyCheckResult? = nil,
                acceptedAt: Date? = nil)
    {
        self.fingerprint = fingerprint
        self.last4 = last4
        self.since = since
        self.lastCheckAt = lastCheckAt
        self.lastCheckResult = lastCheckResult
        self.acceptedAt = acceptedAt
    }
}

extension Store {
    /// What `keyHealthRecord` reads, from `\(UserKeyTable.self) k JOIN \(UserTable.self) u` (`keyHealthJoin`).
    static let keyHealthColumns: SQL = """
        k.\(UserKeyColumns.userID), u.\(UserColumns.name), k.\(UserKeyColumns.last4), k.\(UserKeyColumns.status),
        k.\(UserKeyColumns.setAt), k.\(UserKeyColumns.setBy), k.\(UserKeyColumns.lastCheckAt), k.\(UserKeyColumns.lastCheckResult),
        k.\(UserKeyColumns.acceptedAt), k.\(UserKeyColumns.metrcExpiresAt)
        """
    static let keyHealthJoin: SQL = """
        \(UserKeyTable.self) k JOIN \(UserTable.self) u ON u.\(UserColumns.id) = k.\(UserKeyColumns.userID)
        """

    static func keyHealthRecord(_ row: Row) -> KeyHealthRecord {
        func date(_ column: Column) -> Date? { (row[column] as Double?).map(Date.init(timeIntervalSince1970:)) }
        return KeyHealthRecord(
            userID: row[UserKeyColumns.userID], user: row[UserColumns.name], last4: row[UserKeyColumns.last4],
            status: KeyStatus(rawValue: row[UserKeyColumns.status]) ?? .unverified,
            setAt: Date(timeIntervalSince1970: row[UserKeyColumns.setAt]), setBy: row[UserKeyColumns.setBy],
            lastCheckAt: date(UserKeyColumns.lastCheckAt),
            lastCheckResult: (row[UserKeyColumns.lastCheckResult] as String?).flatMap(KeyCheckResult.init),
            acceptedAt: date(UserKeyColumns.acceptedAt), metrcExpiresAt: date(UserKeyColumns.metrcExpiresAt))
    }

    /// Every personal key's health, by user name.
    public func keyHealth() throws -> [KeyHealthRecord] {
        try pool.read { db in
            try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT \(literal: Store.keyHealthColumns) FROM \(literal: Store.keyHealthJoin) ORDER BY u.\(UserColumns.name)
                """)).map(Store.keyHealthRecord)
        }
    }

    /// One user's key health, nil when they have no personal key (for `login`).
    public func keyHealth(userID: Int64) async throws -> KeyHealthRecord? {
        try await readOffThePool { db in
            try Row.fetchOne(db, SQLRequest<Row>(literal: """
                SELECT \(literal: Store.keyHealthColumns) FROM \(literal: Store.keyHealthJoin) WHERE k.\(UserKeyColumns.userID) = \(userID)
                """)).map(Store.keyHealthRecord)
        }
    }

    /// The same key still stands (not replaced or cleared since `setAt` was read): within a millisecond, as REAL
    /// seconds do not survive every trip through `Date` exactly.
    static func sameKey(userID: Int64, setAt: Date) -> SQL {
        "\(UserKeyColumns.userID) = \(userID) AND ABS(\(UserKeyColumns.setAt) - \(setAt.timeIntervalSince1970)) < 0.001"
    }

    /// Records a scheduled check of the key set at `setAt`. Accepted: the key is `ok` (an `unverified` one too)
    /// and `accepted_at` moves on; unreachable: only the attempt is noted. A refusal goes through
    /// `markUserKeyRejected(userID:setAt:now:)`. Returns false when the key was replaced or cleared meanwhile.
    @discardableResult
    public func recordKeyCheck(userID: Int64, setAt: Date, result: KeyCheckResult, metrcExpiresAt: Date? = nil, now: Date = Date()) throws -> Bool {
        let t = now.timeIntervalSince1970
        typealias K = UserKeyColumns
        let sameKey = Store.sameKey(userID: userID, setAt: setAt)
        return try pool.write { db in
            switch result {
            case .accepted:
                try db.execute(literal: """
                    UPDATE \(UserKeyTable.self) SET \(K.status) = \(KeyStatus.ok), \(K.checkedAt) = \(t), \(K.acceptedAt) = \(t),
                      \(K.lastCheckAt) = \(t), \(K.lastCheckResult) = \(KeyCheckResult.accepted),
                      \(K.metrcExpiresAt) = \(metrcExpiresAt?.timeIntervalSince1970)
                    WHERE \(literal: sameKey) AND \(K.status) != \(KeyStatus.rejected)
                    """)
            case .unreachable, .refused:
                try db.execute(literal: """
                    UPDATE \(UserKeyTable.self) SET \(K.lastCheckAt) = \(t), \(K.lastCheckResult) = \(result) WHERE \(literal: sameKey)
                    """)
            }
            return db.changesCount == 1
        }
    }

    /// A scheduled check found the key set at `setAt` refused: as `markUserKeyRejected(userID:now:)` (the key is
    /// marked, that user's waiting events held), unless the key was replaced, cleared or already marked since.
    /// Returns how many events were held, nil when nothing changed.
    @discardableResult
    public func markUserKeyRejected(userID: Int64, setAt: Date, now: Date = Date()) throws -> Int? {
        try pool.write { db in
            let current = try Int.fetchOne(db, SQLRequest<Int>(literal: """
                SELECT COUNT(*) FROM \(UserKeyTable.self)
                WHERE \(literal: Store.sameKey(userID: userID, setAt: setAt)) AND \(UserKeyColumns.status) != \(KeyStatus.rejected)
                """)) ?? 0
            guard current == 1 else { return nil }
            return try Store.rejectUserKey(db, userID: userID, now: now)
        }
    }

    static let defaultKeyHealthSetting = "default_key_health"

    /// The Default key's health as last recorded; with `key`, nil unless it is that key (a replaced key starts afresh).
    public func defaultKeyHealth(key: String? = nil) throws -> DefaultKeyHealth? {
        guard let text = try setting(Store.defaultKeyHealthSetting),
              let health = try? JSONDecoder().decode(DefaultKeyHealth.self, from: Data(text.utf8))
        else { return nil }
        if let key, health.fingerprint != Store.fingerprint(key) { return nil }
        return health
    }

    /// Records a check of the Default key (at start, on schedule, or an upload it signed being refused).
    public func recordDefaultKeyCheck(key: String, result: KeyCheckResult, now: Date = Date()) throws {
        try pool.write { db in
            let fingerprint = Store.fingerprint(key)
            let stored = try Store.setting(db, Store.defaultKeyHealthSetting)
                .flatMap { try? JSONDecoder().decode(DefaultKeyHealth.self, from: Data($0.utf8)) }
            var health = stored?.fingerprint == fingerprint
                ? stored! : DefaultKeyHealth(fingerprint: fingerprint, last4: String(key.suffix(4)), since: now)
            health.lastCheckAt = now
            health.lastCheckResult = result
            if result == .accepted { health.acceptedAt = now }
            let data = try JSONEncoder().encode(health)
            try Store.setSetting(db, Store.defaultKeyHealthSetting, String(decoding: data, as: UTF8.self))
        }
    }

    static func fingerprint(_ key: String) -> String {
        Secrets.sha256(Data(key.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}
