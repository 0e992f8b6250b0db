import Foundation
import GRDB

/// Where a personal Metrc key stands.
public enum KeyStatus: String, Sendable, Codable, DatabaseValueConvertible {
    /// Metrc accepted it (at the last check or upload).
    case ok
    /// Stored while Metrc was unreachable; the first upload tells.
    case unverified
    /// Metrc refused it: the user's uploads wait until a new key is set.
    case rejected
}

/// A personal key as listings show it: never more than its last 4 characters.
public struct UserKeyInfo: Sendable, Equatable, Codable {
    public let user: String
    public let last4: String
    public let status: KeyStatus
    public let setAt: Date
    public let setBy: String
}

/// A user's key as the uploader needs it to sign.
public struct SigningKey: Sendable, Equatable {
    public let key: String
    public let status: KeyStatus

    public init(key: String, status: KeyStatus) {
        self.key = key
        self.status = status
    }
}

extension Store {
    /// Stores a user's personal key and releases that user's held events so they are signed anew.
    public func setUserKey(user: String, key: String, status: KeyStatus, actor: String, now: Date = Date()) throws {
        let trimmed = key.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (8...512).contains(trimmed.count), !trimmed.contains(where: { $0.isWhitespace }) else {
            throw StoreError("a Metrc API key is 8 to 512 characters without spaces")
        }
        // Never stored in the clear under the prefix sealed values have: it would be read as a sealed value.
        guard !KeySeal.isSealed(trimmed) else { throw StoreError("a Metrc API key does not start with \"\(KeySeal.sealedPrefix)\"") }
        try pool.write { db in
            let userID = try Store.userID(db, name: user)
            // Sealed for this user's id: the sealed value opens on this user's row only.
            let stored = try seal?.seal(trimmed, userID: userID) ?? trimmed
            typealias K = UserKeyColumns
            let t = now.timeIntervalSince1970
            let checkedAt: Double? = status == .unverified ? nil : t
            let acceptedAt: Double? = status == .ok ? t : nil
            let result: KeyCheckResult? = status == .ok ? .accepted : status == .rejected ? .refused : nil
            try db.execute(literal: """
                INSERT OR REPLACE INTO \(UserKeyTable.self) (\(K.userID), \(K.key), \(K.last4), \(K.status), \(K.setAt), \(K.setBy),
                  \(K.checkedAt), \(K.acceptedAt), \(K.lastCheckAt), \(K.lastCheckResult))
                VALUES (\(userID), \(stored), \(String(trimmed.suffix(4))), \(status.rawValue), \(t), \(actor),
                  \(checkedAt), \(acceptedAt), \(checkedAt), \(result))
                """)
            let released = try Store.releaseHeld(db, userID: userID)
            try Store.audit(db, actor: actor, action: .keySet, subject: user,
                            detail: "…\(trimmed.suffix(4)) \(status.rawValue); \(released) held events released")
        }
    }

    /// Removes a user's personal key; their uploads go back to the Default key (or wait, if personal keys are required).
    public func clearUserKey(user: String, actor: String) throws {
        try pool.write { db in
            let userID = try Store.userID(db, name: user)
            try db.execute(literal: "DELETE FROM \(UserKeyTable.self) WHERE \(UserKeyColumns.userID) = \(userID)")
            guard db.changesCount == 1 else { throw StoreError("\(user) has no personal Metrc key") }
            let released = try Store.releaseHeld(db, userID: userID)
            try Store.audit(db, actor: actor, action: .keyClear, subject: user, detail: "\(released) held events released")
        }
    }

    public func userKeys() throws -> [UserKeyInfo] {
        try pool.read { db in
            try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT u.\(UserColumns.name), k.\(UserKeyColumns.last4), k.\(UserKeyColumns.status), k.\(UserKeyColumns.setAt),
                  k.\(UserKeyColumns.setBy)
                FROM \(UserKeyTable.self) k JOIN \(UserTable.self) u ON u.\(UserColumns.id) = k.\(UserKeyColumns.userID)
                ORDER BY u.\(UserColumns.name)
                """)).map {
                UserKeyInfo(user: $0[UserColumns.name], last4: $0[UserKeyColumns.last4],
                            status: KeyStatus(rawValue: $0[UserKeyColumns.status]) ?? .unverified,
                            setAt: Date(timeIntervalSince1970: $0[UserKeyColumns.setAt]), setBy: $0[UserKeyColumns.setBy])
            }
        }
    }

    /// The personal keys of these users, for signing.
    public func signingKeys(userIDs: Set<Int64>) throws -> [Int64: SigningKey] {
        guard !userIDs.isEmpty else { return [:] }
        return try pool.read { db in
            var out: [Int64: SigningKey] = [:]
            let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT \(UserKeyColumns.userID), \(UserKeyColumns.key), \(UserKeyColumns.status) FROM \(UserKeyTable.self)
                WHERE \(UserKeyColumns.userID) IN \(Array(userIDs))
                """))
            for row in rows {
                let stored: String = row[UserKeyColumns.key]
                let userID: Int64 = row[UserKeyColumns.userID]
                let key: String
                if let seal {
                    key = try seal.open(stored, userID: userID)
                } else if KeySeal.isSealed(stored) {
                    throw StoreError("personal Metrc keys are sealed but no store key is configured (store.key_file)")
                } else {
                    key = stored
                }
                out[userID] = SigningKey(key: key, status: KeyStatus(rawValue: row[UserKeyColumns.status]) ?? .unverified)
            }
            return out
        }
    }

    /// The status of one user's personal key, nil when they have none.
    public func keyStatus(userID: Int64) async throws -> KeyStatus? {
        try await readOffThePool { db in
            try String.fetchOne(db, SQLRequest<String>(literal: """
                SELECT \(UserKeyColumns.status) FROM \(UserKeyTable.self) WHERE \(UserKeyColumns.userID) = \(userID)
                """)).flatMap(KeyStatus.init)
        }
    }

    /// Metrc refused this user's key: mark it, and hold all that user's waiting events. Returns how many were held.
    @discardableResult
    public func markUserKeyRejected(userID: Int64, now: Date = Date()) throws -> Int {
        try pool.write { db in try Store.rejectUserKey(db, userID: userID, now: now) }
    }

    static func rejectUserKey(_ db: Database, userID: Int64, now: Date) throws -> Int {
        // A refused upload counts as a check, as a refused scheduled check does.
        typealias K = UserKeyColumns
        let t = now.timeIntervalSince1970
        try db.execute(literal: """
            UPDATE \(UserKeyTable.self) SET \(K.status) = \(KeyStatus.rejected), \(K.checkedAt) = \(t), \(K.lastCheckAt) = \(t),
              \(K.lastCheckResult) = \(KeyCheckResult.refused)
            WHERE \(K.userID) = \(userID)
            """)
        let name = try Store.userName(db, id: userID) ?? "?"
        try db.execute(literal: """
            UPDATE \(EventTable.self) SET \(EventColumns.state) = \(EventState.held), \(EventColumns.heldCode) = \(HoldCode.keyRejected),
              \(EventColumns.message) = \("\(name)'s Metrc key was rejected by Metrc"), \(EventColumns.updatedAt) = \(t)
            WHERE \(EventColumns.userID) = \(userID) AND \(EventColumns.state) = \(EventState.queued)
            """)
        let held = db.changesCount
        try Store.audit(db, actor: "outlawd", action: .keyRejected, subject: name, detail: "\(held) events held")
        return held
    }

    /// Records that Metrc accepted a key in an upload (so an `unverified` key becomes `ok`, and `accepted_at`,
    /// the `login` answer's `key_checked_at`, moves on). A key marked `rejected` meanwhile stays so.
    public func markUserKeyGood(userID: Int64, now: Date = Date()) throws {
        try pool.write { db in try Store.markUserKeyGood(db, userID: userID, now: now) }
    }

    static func markUserKeyGood(_ db: Database, userID: Int64, now: Date) throws {
        typealias K = UserKeyColumns
        let t = now.timeIntervalSince1970
        try db.cachedStatement(literal: """
            UPDATE \(UserKeyTable.self) SET \(K.status) = \(KeyStatus.ok), \(K.checkedAt) = \(t), \(K.acceptedAt) = \(t)
            WHERE \(K.userID) = \(userID) AND \(K.status) != \(KeyStatus.rejected)
            """).execute()
    }

    static let defaultKeySetting = "default_key_status"

    /// The Default key's last known state: nil (never checked), `ok` or `rejected`.
    public func defaultKeyStatus() throws -> KeyStatus? {
        try setting(Store.defaultKeySetting).flatMap(KeyStatus.init)
    }

    /// Records the Default key's state; a good key releases the events held for it.
    public func setDefaultKeyStatus(_ status: KeyStatus) throws {
        try pool.write { db in
            let previous = try Store.setting(db, Store.defaultKeySetting)
            try Store.setSetting(db, Store.defaultKeySetting, status.rawValue)
            if status != .rejected {
                try db.execute(literal: """
                    UPDATE \(EventTable.self) SET \(EventColumns.state) = \(EventState.queued), \(EventColumns.heldCode) = NULL,
                      \(EventColumns.message) = NULL
                    WHERE \(EventColumns.state) = \(EventState.held) AND \(EventColumns.heldCode) IN \(HoldCode.defaultKey)
                    """)
            }
            if previous != status.rawValue {
                try Store.audit(db, actor: "outlawd", action: .defaultKey(status), subject: nil)
            }
        }
    }

    /// Seals every key stored in the clear (from before a store key was configured) and seals `sealed:v1:` keys
    /// again as `sealed:v2:` (bound to their user). Returns how many changed; a key that cannot be opened (another
    /// store key's) is left as it is, for `signingKeys` to report.
    @discardableResult
    public func sealPlainKeys() throws -> Int {
        guard let seal else { return 0 }
        // The uploader calls this every round: only a read unless something needs sealing.
        let outdated = try pool.read { db in
            try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT \(UserKeyColumns.userID), \(UserKeyColumns.key) FROM \(UserKeyTable.self)
                WHERE substr(\(UserKeyColumns.key), 1, \(KeySeal.v2Prefix.count)) != \(KeySeal.v2Prefix)
                """))
                .map { (userID: $0[UserKeyColumns.userID] as Int64, stored: $0[UserKeyColumns.key] as String) }
        }
        let replacements = try outdated.compactMap { row -> (userID: Int64, stored: String, sealed: String)? in
            guard let plain = try? seal.open(row.stored, userID: row.userID) else { return nil }
            return (row.userID, row.stored, try seal.seal(plain, userID: row.userID))
        }
        guard !replacements.isEmpty else { return 0 }
        return try pool.write { db in
            var count = 0
            for r in replacements {
                // Only if the row still holds what was read: a key set meanwhile is already sealed.
                try db.execute(literal: """
                    UPDATE \(UserKeyTable.self) SET \(UserKeyColumns.key) = \(r.sealed)
                    WHERE \(UserKeyColumns.userID) = \(r.userID) AND \(UserKeyColumns.key) = \(r.stored)
                    """)
                count += db.changesCount
            }
            return count
        }
    }

    static func userID(_ db: Database, name: String) throws -> Int64 {
        guard let id = try Store.userID(db, named: name) else {
            throw StoreError("no user named \(name)")
        }
        return id
    }

    /// Puts a user's held events back in the queue; the uploader decides their signing afresh.
    static func releaseHeld(_ db: Database, userID: Int64) throws -> Int {
        try db.execute(literal: """
            UPDATE \(EventTable.self) SET \(EventColumns.state) = \(EventState.queued), \(EventColumns.heldCode) = NULL,
              \(EventColumns.message) = NULL, \(EventColumns.nextAttemptAt) = NULL
            WHERE \(EventColumns.userID) = \(userID) AND \(EventColumns.state) = \(EventState.held)
            """)
        return db.changesCount
    }
}
