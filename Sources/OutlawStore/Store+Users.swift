import Foundation
import GRDB

extension Store {
    /// How many wrong PINs within `lockWindow` lock a user name, and for how long.
    public static let maxPINFailures = 5
    public static let lockWindow: TimeInterval = 15 * 60

    public func addUser(name: String, role: Role, pin: String, actor: String) throws {
        try Store.checkUserName(name)
        try Store.checkPIN(pin)
        let salt = Secrets.newSalt()
        let hash = Secrets.pinHash(pin, salt: salt, rounds: pinRounds)
        try pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [name]) == true {
                throw StoreError("user \(name) already exists")
            }
            try db.execute(sql: """
                INSERT INTO users (name, role, pin_hash, pin_salt, pin_rounds, created_at) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [name, role.rawValue, hash, salt, pinRounds, Date().timeIntervalSince1970])
            try Store.audit(db, actor: actor, action: "user.add", subject: name, detail: "role=\(role.rawValue)")
        }
    }

    public func users() throws -> [User] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY name").map(Store.user) }
    }

    public func user(named name: String) throws -> User? {
        try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM users WHERE name = ?", arguments: [name]).map(Store.user) }
    }

    public func disableUser(name: String, actor: String) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE users SET active = 0 WHERE name = ?", arguments: [name])
            guard db.changesCount == 1 else { throw StoreError("no user named \(name)") }
            try Store.audit(db, actor: actor, action: "user.disable", subject: name)
        }
    }

    public func setPIN(name: String, pin: String, actor: String) throws {
        try Store.checkPIN(pin)
        let salt = Secrets.newSalt()
        let hash = Secrets.pinHash(pin, salt: salt, rounds: pinRounds)
        try pool.write { db in
            try db.execute(sql: "UPDATE users SET pin_hash = ?, pin_salt = ?, pin_rounds = ? WHERE name = ?",
                           arguments: [hash, salt, pinRounds, name])
            guard db.changesCount == 1 else { throw StoreError("no user named \(name)") }
            // A new PIN lifts a lock: the admin has just vouched for this person.
            try db.execute(sql: "DELETE FROM login_failures WHERE user_name = ?", arguments: [name])
            try db.execute(sql: "DELETE FROM login_locks WHERE user_name = ?", arguments: [name])
            try Store.audit(db, actor: actor, action: "user.set-pin", subject: name)
        }
    }

    /// Checks a PIN, counting failures per user name (known or not) and locking after too many.
    public func login(name: String, pin: String, now: Date = Date()) async throws -> LoginOutcome {
        let t = now.timeIntervalSince1970
        let locked: Double? = try await readOffThePool { db in
            try Double.fetchOne(db, sql: "SELECT until FROM login_locks WHERE user_name = ? AND until > ?", arguments: [name, t])
        }
        if let locked { return .locked(until: Date(timeIntervalSince1970: locked)) }
        let record: PINRecord? = try await readOffThePool { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE name = ?", arguments: [name]).map {
                PINRecord(user: Store.user($0), hash: $0["pin_hash"], salt: $0["pin_salt"], rounds: $0["pin_rounds"])
            }
        }
        let matches: Bool
        if let record {
            let computed = await Secrets.pinHashOffThePool(pin, salt: record.salt, rounds: record.rounds)
            matches = Secrets.constantTimeEqual(computed, record.hash)
        } else {
            // Spend the same time as for a real user, so timing does not tell which names exist.
            _ = await Secrets.pinHashOffThePool(pin, salt: Data(repeating: 0, count: 16), rounds: pinRounds)
            matches = false
        }
        if let record, matches {
            try await writeOffThePool { db in
                try db.execute(sql: "DELETE FROM login_failures WHERE user_name = ?", arguments: [name])
            }
            return record.user.active ? .ok(record.user) : .inactiveUser
        }
        return try await writeOffThePool { db in
            try db.execute(sql: "INSERT INTO login_failures (user_name, at) VALUES (?, ?)", arguments: [name, t])
            try db.execute(sql: "DELETE FROM login_failures WHERE at <= ?", arguments: [t - Store.lockWindow])
            let recent = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM login_failures WHERE user_name = ? AND at > ?",
                                          arguments: [name, t - Store.lockWindow]) ?? 0
            if recent >= Store.maxPINFailures {
                let until = t + Store.lockWindow
                try db.execute(sql: "INSERT OR REPLACE INTO login_locks (user_name, until) VALUES (?, ?)", arguments: [name, until])
                try db.execute(sql: "DELETE FROM login_failures WHERE user_name = ?", arguments: [name])
                try Store.audit(db, actor: name, action: "login.locked",
                                subject: name, detail: "\(recent) wrong PINs within 15 minutes")
            }
            return .badCredentials
        }
    }

    /// What a PIN check needs of a user row.
    struct PINRecord: Sendable {
        let user: User
        let hash: Data
        let salt: Data
        let rounds: Int
    }

    static func user(_ row: Row) -> User {
        User(id: row["id"], name: row["name"], role: Role(rawValue: row["role"]) ?? .user, active: row["active"],
             createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    static func checkUserName(_ name: String) throws {
        guard (1...64).contains(name.count), !name.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw StoreError("user name must be 1 to 64 characters without spaces")
        }
    }

    static func checkPIN(_ pin: String) throws {
        guard (4...32).contains(pin.count) else { throw StoreError("PIN must be 4 to 32 characters") }
    }
}
