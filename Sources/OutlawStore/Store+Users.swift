import Foundation
import GRDB
import OutlawProtocol

extension Store {
    /// How many wrong PINs within `lockWindow` lock a user name, and for how long.
    public static let maxPINFailures = 5
    public static let lockWindow: TimeInterval = 15 * 60

    public func addUser(name: String, role: Role, pin: String, actor: String) throws {
        try Store.checkUserName(name)
        try Store.checkPIN(pin)
        let salt = Secrets.newSalt()
        let (hash, peppered) = newPINHash(pin, salt: salt)
        try pool.write { db in
            if try Bool.fetchOne(db, SQLRequest<Bool>(literal: "SELECT 1 FROM \(UserTable.self) WHERE \(UserColumns.name) = \(name)")) == true {
                throw StoreError("user \(name) already exists")
            }
            try db.execute(literal: """
                INSERT INTO \(UserTable.self) (\(UserColumns.name), \(UserColumns.role), \(UserColumns.pinHash), \(UserColumns.pinSalt),
                  \(UserColumns.pinRounds), \(UserColumns.pinPeppered), \(UserColumns.createdAt))
                VALUES (\(name), \(role.rawValue), \(hash), \(salt), \(pinRounds), \(peppered), \(Date().timeIntervalSince1970))
                """)
            try Store.audit(db, actor: actor, action: .userAdd, subject: name, detail: "role=\(role.rawValue)")
        }
    }

    /// How many PIN hashes carry the store key's pepper (they cannot be checked without that key).
    public func pepperedPINCount() throws -> Int {
        try pool.read { db in
            try Int.fetchOne(db, SQLRequest<Int>(literal: "SELECT COUNT(*) FROM \(UserTable.self) WHERE \(UserColumns.pinPeppered) = 1")) ?? 0
        }
    }

    public func users() throws -> [User] {
        try pool.read { db in try Row.fetchAll(db, SQLRequest<Row>(literal: "SELECT * FROM \(UserTable.self) ORDER BY \(UserColumns.name)")).map(Store.user) }
    }

    public func user(named name: String) throws -> User? {
        try pool.read { db in try Store.userRow(db, named: name).map(Store.user) }
    }

    public func disableUser(name: String, actor: String) throws {
        try pool.write { db in
            try db.execute(literal: "UPDATE \(UserTable.self) SET \(UserColumns.active) = 0 WHERE \(UserColumns.name) = \(name)")
            guard db.changesCount == 1 else { throw StoreError("no user named \(name)") }
            if let id = try Store.userID(db, named: name) {
                try Store.endTickets(db, userID: id, why: .userDisabled)
            }
            try Store.audit(db, actor: actor, action: .userDisable, subject: name)
        }
    }

    public func setPIN(name: String, pin: String, actor: String) throws {
        try Store.checkPIN(pin)
        let salt = Secrets.newSalt()
        let (hash, peppered) = newPINHash(pin, salt: salt)
        try pool.write { db in
            try db.execute(literal: """
                UPDATE \(UserTable.self) SET \(UserColumns.pinHash) = \(hash), \(UserColumns.pinSalt) = \(salt),
                  \(UserColumns.pinRounds) = \(pinRounds), \(UserColumns.pinPeppered) = \(peppered)
                WHERE \(UserColumns.name) = \(name)
                """)
            guard db.changesCount == 1 else { throw StoreError("no user named \(name)") }
            if let id = try Store.userID(db, named: name) {
                try Store.endTickets(db, userID: id, why: .pinChanged)
            }
            // A new PIN lifts a lock: the admin has just vouched for this person.
            try Store.forgetFailures(db, name: name)
            try db.execute(literal: "DELETE FROM \(LoginLockTable.self) WHERE \(LoginLockColumns.userName) = \(name)")
            try Store.audit(db, actor: actor, action: .userSetPIN, subject: name)
        }
    }

    /// Checks a PIN, counting failures per user name (known or not) and locking after too many.
    public func login(name: String, pin: String, now: Date = Date()) async throws -> LoginOutcome {
        try await login(LoginRequest(name: name, pin: pin), now: now).outcome
    }

    /// Checks a PIN so that concurrent guesses cannot outrun the lock: the lock check and this attempt's
    /// failure count are one write transaction before the key derivation runs (at most `maxPINFailures`
    /// derivations per lock window, however many arrive at once), and the lock is checked again before `ok`.
    /// With `ticket`, a good PIN also issues a login ticket for that device, in the same transaction.
    /// `beforeCheck` runs between the two, only for an attempt that will be checked (a device's throttle waits there).
    public func login(_ request: LoginRequest, now: Date = Date(),
                      beforeCheck: @Sendable () async -> Void = {}) async throws -> LoginAttempt {
        let name = request.name
        let t = now.timeIntervalSince1970
        // An invalid name can belong to no user: refused like an unknown one, without storing or counting it.
        guard Names.isValidUserName(name), name.count <= 64 else { return LoginAttempt(outcome: .badCredentials) }
        // Checks of this name still running count against the limit, so guesses at once cannot outrun the lock; but
        // only settled failures lock it. An attempt that finds the limit taken by running checks waits for them.
        let pendingFor: TimeInterval = 60
        var gate: LoginGate
        // The wait gives up when no check of this name has settled for 10 s (one stuck, or in another process),
        // not after 10 s in all: on a loaded server a queue of honest logins that keeps moving is served.
        var waitUntil = Date().addingTimeInterval(10)
        repeat {
            let settledBefore = pinChecksSettled.load(ordering: .acquiring)
            gate = try await writeOffThePool { db in
                try db.execute(literal: "DELETE FROM \(LoginFailureTable.self) WHERE \(LoginFailureColumns.at) <= \(t - Store.lockWindow)")
                try db.execute(literal: "DELETE FROM \(LoginLockTable.self) WHERE \(LoginLockColumns.until) <= \(t)")
                if let until = try Double.fetchOne(db, SQLRequest<Double>(literal: """
                    SELECT \(LoginLockColumns.until) FROM \(LoginLockTable.self) WHERE \(LoginLockColumns.userName) = \(name)
                    """)) {
                    return .locked(until: until, now: false)
                }
                // A check pending for longer than a minute belonged to a process that died: it counts as a failure.
                let row = try Row.fetchOne(db, SQLRequest<Row>(literal: """
                    SELECT COUNT(*) AS \(FailureCount.all),
                      COALESCE(SUM(\(LoginFailureColumns.pending) = 1 AND \(LoginFailureColumns.at) > \(t - pendingFor)), 0) AS \(FailureCount.running)
                    FROM \(LoginFailureTable.self) WHERE \(LoginFailureColumns.userName) = \(name)
                    """))
                let all: Int = row?[FailureCount.all] ?? 0
                let running: Int = row?[FailureCount.running] ?? 0
                if all - running >= Store.maxPINFailures {
                    return .locked(until: try Store.lock(db, name: name, failures: all - running, t: t), now: true)
                }
                if all >= Store.maxPINFailures { return .wait }
                // Counted as a failure until the PIN proves good.
                try db.execute(literal: """
                    INSERT INTO \(LoginFailureTable.self) (\(LoginFailureColumns.userName), \(LoginFailureColumns.at), \(LoginFailureColumns.pending))
                    VALUES (\(name), \(t), 1)
                    """)
                let attemptID = db.lastInsertedRowID
                let record = try Store.userRow(db, named: name).map {
                    PINRecord(user: Store.user($0), hash: $0[UserColumns.pinHash], salt: $0[UserColumns.pinSalt],
                              rounds: $0[UserColumns.pinRounds], peppered: $0[UserColumns.pinPeppered])
                }
                return .check(record, attempt: attemptID)
            }
            guard case .wait = gate else { break }
            // Another check of this name settles within a key derivation (≈0.1 s); one in another process is not
            // seen here, so the wait also ends by itself, and the deadline bounds it.
            while pinChecksSettled.load(ordering: .acquiring) == settledBefore, Date() < waitUntil {
                try await Task.sleep(for: .milliseconds(10))
            }
            if pinChecksSettled.load(ordering: .acquiring) != settledBefore { waitUntil = Date().addingTimeInterval(10) }
        } while Date() < waitUntil
        guard case .check(let record, let attemptID) = gate else {
            if case .locked(let until, let lockedNow) = gate {
                return LoginAttempt(outcome: .locked(until: Date(timeIntervalSince1970: until)), lockedNow: lockedNow)
            }
            throw StoreError("too many checks of this user name's PIN are running at once; retry in a moment")
        }
        defer { pinChecksSettled.add(1, ordering: .releasing) }
        await beforeCheck()
        let matches: Bool
        var upgraded: Data?
        if let record {
            let computed = await Secrets.pinHashOffThePool(request.pin, salt: record.salt, rounds: record.rounds)
            let pepper = seal?.pinPepper
            if record.peppered {
                // Without the store key a peppered hash cannot be checked: refused like a wrong PIN (the daemon warns).
                matches = pepper.map { Secrets.constantTimeEqual(Secrets.pepper(computed, with: $0), record.hash) } ?? false
            } else {
                matches = Secrets.constantTimeEqual(computed, record.hash)
                // An old hash that just verified gets the pepper now, without running PBKDF2 again.
                if matches, let pepper { upgraded = Secrets.pepper(computed, with: pepper) }
            }
        } else {
            // Spend the same time as for a real user, so timing does not tell which names exist.
            _ = await Secrets.pinHashOffThePool(request.pin, salt: Data(repeating: 0, count: 16), rounds: pinRounds)
            matches = false
        }
        let upgrade = upgraded
        return try await writeOffThePool { db in
            if let record, matches {
                // Guesses that raced this one may have locked the name meanwhile: the lock wins.
                if let until = try Store.lockedUntil(db, name: name, after: t) {
                    return LoginAttempt(outcome: .locked(until: Date(timeIntervalSince1970: until)))
                }
                try Store.forgetFailures(db, name: name)
                if let upgrade {
                    try db.execute(literal: """
                        UPDATE \(UserTable.self) SET \(UserColumns.pinHash) = \(upgrade), \(UserColumns.pinPeppered) = 1
                        WHERE \(UserColumns.id) = \(record.user.id) AND \(UserColumns.pinHash) = \(record.hash)
                        """)
                }
                guard record.user.active else { return LoginAttempt(outcome: .inactiveUser) }
                let ticket = try request.ticketDevice.map {
                    try Store.issueTicket(db, userID: record.user.id, deviceID: $0, now: now, lifetime: request.ticketLifetime)
                }
                return LoginAttempt(outcome: .ok(record.user), ticket: ticket)
            }
            try db.execute(literal: "UPDATE \(LoginFailureTable.self) SET \(LoginFailureColumns.pending) = 0 WHERE \(LoginFailureColumns.id) = \(attemptID)")
            let recent = try Int.fetchOne(db, SQLRequest<Int>(literal: """
                SELECT COUNT(*) FROM \(LoginFailureTable.self)
                WHERE \(LoginFailureColumns.userName) = \(name) AND \(LoginFailureColumns.at) > \(t - Store.lockWindow)
                  AND \(LoginFailureColumns.pending) = 0
                """)) ?? 0
            let alreadyLocked = try Store.lockedUntil(db, name: name, after: t) != nil
            var lockedNow = false
            if recent >= Store.maxPINFailures, !alreadyLocked {
                _ = try Store.lock(db, name: name, failures: recent, t: t)
                lockedNow = true
            }
            return LoginAttempt(outcome: .badCredentials, lockedNow: lockedNow)
        }
    }

    /// A new PIN's hash: peppered with the store key when there is one (a copy of the store alone cannot be searched
    /// for PINs then), else PBKDF2 alone.
    func newPINHash(_ pin: String, salt: Data) -> (hash: Data, peppered: Bool) {
        if let pepper = seal?.pinPepper {
            return (Secrets.pepperedPINHash(pin, salt: salt, rounds: pinRounds, pepper: pepper), true)
        }
        return (Secrets.pinHash(pin, salt: salt, rounds: pinRounds), false)
    }

    /// Locks a user name for `lockWindow`; returns until when.
    static func lock(_ db: Database, name: String, failures: Int, t: Double) throws -> Double {
        let until = t + Store.lockWindow
        try db.execute(literal: """
            INSERT OR REPLACE INTO \(LoginLockTable.self) (\(LoginLockColumns.userName), \(LoginLockColumns.until)) VALUES (\(name), \(until))
            """)
        try Store.forgetFailures(db, name: name)
        try Store.audit(db, actor: name, action: .loginLocked, subject: name, detail: "\(failures) wrong PINs within 15 minutes")
        return until
    }

    /// Until when `name` is locked, when a lock lasts past `t`.
    static func lockedUntil(_ db: Database, name: String, after t: Double) throws -> Double? {
        try Double.fetchOne(db, SQLRequest<Double>(literal: """
            SELECT \(LoginLockColumns.until) FROM \(LoginLockTable.self)
            WHERE \(LoginLockColumns.userName) = \(name) AND \(LoginLockColumns.until) > \(t)
            """))
    }

    static func forgetFailures(_ db: Database, name: String) throws {
        try db.execute(literal: "DELETE FROM \(LoginFailureTable.self) WHERE \(LoginFailureColumns.userName) = \(name)")
    }

    static func userRow(_ db: Database, named name: String) throws -> Row? {
        try Row.fetchOne(db, SQLRequest<Row>(literal: "SELECT * FROM \(UserTable.self) WHERE \(UserColumns.name) = \(name)"))
    }

    static func userName(_ db: Database, id: Int64) throws -> String? {
        try String.fetchOne(db, SQLRequest<String>(literal: "SELECT \(UserColumns.name) FROM \(UserTable.self) WHERE \(UserColumns.id) = \(id)"))
    }

    static func userID(_ db: Database, named name: String) throws -> Int64? {
        try Int64.fetchOne(db, SQLRequest<Int64>(literal: "SELECT \(UserColumns.id) FROM \(UserTable.self) WHERE \(UserColumns.name) = \(name)"))
    }

    /// What the first transaction of a login decided.
    enum LoginGate: Sendable {
        case locked(until: Double, now: Bool)
        /// Running checks of the name fill the limit: wait for one to settle.
        case wait
        /// `attempt`: this check's row in `login_failures`, pending until it settles.
        case check(PINRecord?, attempt: Int64)
    }

    /// The first login transaction's count of a name's failures: all of them, and the checks still running among them.
    private enum FailureCount {
        static let all = Column("n")
        static let running = Column("running")
    }

    /// What a PIN check needs of a user row.
    struct PINRecord: Sendable {
        let user: User
        let hash: Data
        let salt: Data
        let rounds: Int
        let peppered: Bool
    }

    static func user(_ row: Row) -> User {
        User(id: row[UserColumns.id], name: row[UserColumns.name], role: Role(rawValue: row[UserColumns.role]) ?? .user,
             active: row[UserColumns.active], createdAt: Date(timeIntervalSince1970: row[UserColumns.createdAt]))
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
