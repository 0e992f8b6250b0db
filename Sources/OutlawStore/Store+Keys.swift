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
            try db.execute(sql: """
                INSERT OR REPLACE INTO user_keys (user_id, key, last4, status, set_at, set_by, checked_at,
                                                  accepted_at, last_check_at, last_check_result)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [userID, stored, String(trimmed.suffix(4)), status.rawValue, now.timeIntervalSince1970, actor,
                                 status == .unverified ? nil : now.timeIntervalSince1970,
                                 status == .ok ? now.timeIntervalSince1970 : nil,
                                 status == .unverified ? nil : now.timeIntervalSince1970,
                                 status == .ok ? KeyCheckResult.accepted : status == .rejected ? KeyCheckResult.refused : nil])
            let released = try Store.releaseHeld(db, userID: userID)
            try Store.audit(db, actor: actor, action: .keySet, subject: user,
                            detail: "…\(trimmed.suffix(4)) \(status.rawValue); \(released) held events released")
        }
    }

    /// Removes a user's personal key; their uploads go back to the Default key (or wait, if personal keys are required).
    public func clearUserKey(user: String, actor: String) throws {
        try pool.write { db in
            let userID = try Store.userID(db, name: user)
            try db.execute(sql: "DELETE FROM user_keys WHERE user_id = ?", arguments: [userID])
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
            try String.fetchOne(db, sql: "SELECT status FROM user_keys WHERE user_id = ?", arguments: [userID]).flatMap(KeyStatus.init)
        }
    }

    /// Metrc refused this user's key: mark it, and hold all that user's waiting events. Returns how many were held.
    @discardableResult
    public func markUserKeyRejected(userID: Int64, now: Date = Date()) throws -> Int {
        try pool.write { db in try Store.rejectUserKey(db, userID: userID, now: now) }
    }

    static func rejectUserKey(_ db: Database, userID: Int64, now: Date) throws -> Int {
        // A refused upload counts as a check, as a refused scheduled check does.
        try db.execute(sql: "UPDATE user_keys SET status = ?, checked_at = ?, last_check_at = ?, last_check_result = ? WHERE user_id = ?",
                       arguments: [KeyStatus.rejected, now.timeIntervalSince1970, now.timeIntervalSince1970, KeyCheckResult.refused, userID])
        let name = try String.fetchOne(db, sql: "SELECT name FROM users WHERE id = ?", arguments: [userID]) ?? "?"
        try db.execute(sql: """
            UPDATE events SET state = ?, held_code = ?, message = ?, updated_at = ?
            WHERE user_id = ? AND state = ?
            """, arguments: [EventState.held, HoldCode.keyRejected, "\(name)'s Metrc key was rejected by Metrc",
                             now.timeIntervalSince1970, userID, EventState.queued])
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
        try db.cachedStatement(sql: "UPDATE user_keys SET status = ?, checked_at = ?, accepted_at = ? WHERE user_id = ? AND status != ?")
            .execute(arguments: [KeyStatus.ok, now.timeIntervalSince1970, now.timeIntervalSince1970, userID, KeyStatus.rejected])
    }

    static let defaultKeySetting = "default_key_status"

    /// The Default key's last known state: nil (never checked), `ok` or `rejected`.
    public func defaultKeyStatus() throws -> KeyStatus? {
        try setting(Store.defaultKeySetting).flatMap(KeyStatus.init)
    }

    /// Records the Default key's state; a good key releases the events held for it.
    public func setDefaultKeyStatus(_ status: KeyStatus) throws {
        try pool.write { db in
            let previous = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE name = ?", arguments: [Store.defaultKeySetting])
            try Store.setSetting(db, Store.defaultKeySetting, status.rawValue)
            if status != .rejected {
                try db.execute(sql: "UPDATE events SET state = ?, held_code = NULL, message = NULL WHERE state = ? AND held_code IN (?, ?)",
                               arguments: [EventState.queued, EventState.held] + StatementArguments(HoldCode.defaultKey))
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
                try db.execute(sql: "UPDATE user_keys SET key = ? WHERE user_id = ? AND key = ?", arguments: [r.sealed, r.userID, r.stored])
                count += db.changesCount
            }
            return count
        }
    }

    static func userID(_ db: Database, name: String) throws -> Int64 {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE name = ?", arguments: [name]) else {
            throw StoreError("no user named \(name)")
        }
        return id
    }

    /// Puts a user's held events back in the queue; the uploader decides their signing afresh.
    static func releaseHeld(_ db: Database, userID: Int64) throws -> Int {
        try db.execute(sql: "UPDATE events SET state = ?, held_code = NULL, message = NULL, next_attempt_at = NULL WHERE user_id = ? AND state = ?",
                       arguments: [EventState.queued, userID, EventState.held])
        return db.changesCount
    }
}
