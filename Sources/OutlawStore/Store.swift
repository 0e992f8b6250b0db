import CSQLiteConfig
import Foundation
import GRDB
import Synchronization

/// The daemon's durable state in one SQLite file: WAL, `synchronous=FULL`, versioned migrations.
public final class Store: Sendable {
    public let path: String
    let pool: DatabasePool
    /// PBKDF2 rounds for PINs set from now on (each user's own count is stored with their hash).
    public let pinRounds: Int
    /// Seals personal Metrc keys at rest, when a store key is configured.
    public let seal: KeySeal?
    private let checkpointer = Mutex<Checkpointer?>(nil)
    /// Devices' commits before background writes at the one writer.
    let ingestFirst = IngestFirst()
    /// PIN checks settled by this process so far: an attempt waiting for others of the same name watches it.
    let pinChecksSettled = Atomic<Int>(0)
    /// When this store was put in place by `outlawctl restore`, and since when Metrc may have applied what the copy
    /// did not know (read at opening: a restore needs the daemon stopped).
    let restored: Restored?

    /// SQLite's process-wide settings, made once before the first connection opens (later, SQLite refuses them and
    /// keeps its defaults). Memory statistics off: they put every allocation of every connection behind one mutex.
    private static let sqliteConfigured: Bool = outlaw_sqlite3_memstatus_off() == SQLITE_OK

    /// Who may bring the schema up to date: the daemon owns the store and migrates it; outlawctl only opens a
    /// store whose schema is exactly the one it was built with, so a newer tool never changes it under an
    /// older daemon.
    public enum Opening: Sendable {
        case migrate
        case currentSchemaOnly
    }

    /// Opens the store at `path` (creating and migrating it with `.migrate`).
    /// `pinRounds` below the default is only for tests, where thousands of slow hashes would dominate.
    public init(path: String, pinRounds: Int = Secrets.pinRounds, seal: KeySeal? = nil, opening: Opening = .migrate) throws {
        _ = Store.sqliteConfigured
        self.pinRounds = pinRounds
        self.seal = seal
        if opening == .currentSchemaOnly, !FileManager.default.fileExists(atPath: path) {
            throw StoreError("no store at \(path) yet: outlawd creates it when it first starts (systemctl start outlawd)")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try Store.makeOwnerOnly(path)
        var config = Configuration()
        // outlawctl and the daemon share the file; wait for each other's short writes instead of failing.
        config.busyMode = .timeout(10)
        config.foreignKeysEnabled = true
        // Readers keep 1 MiB of pages, not 2: a reader's cache is dropped whenever the writer commits, so under
        // load it is refilled from the OS's cache anyway, and five of them were 10 MiB of a paced daemon's peak.
        // The writer's own cache is set below.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -1024") }
        self.path = path
        self.pool = try DatabasePool(path: path, configuration: config)
        // GRDB sets synchronous=NORMAL with WAL; FULL is what keeps a commit through power loss.
        // The writer's page cache at 6 MiB, not 2: every event row updates the events table's indexes, and
        // with the default cache a busy writer re-read their pages from the file for each transaction. 8 MiB was no
        // faster flat out (31,000 events/s either way, 12-06) and put the paced daemon's peak over 64 MiB.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA cache_size = -6144")
        }
        switch opening {
        case .migrate:
            try Store.migrator.migrate(pool)
        case .currentSchemaOnly:
            try pool.read { db in
                if try Store.migrator.hasBeenSuperseded(db) {
                    throw StoreError("the store at \(path) has a newer schema than this outlawctl knows: use the outlawctl that came with the running outlawd")
                }
                if try !Store.migrator.hasCompletedMigrations(db) {
                    throw StoreError("the store at \(path) has an older schema: start the matching outlawd once to upgrade it, then run outlawctl again")
                }
            }
        }
        restored = try pool.read { db in
            func time(_ name: String) throws -> Date? {
                try Double.fetchOne(db, sql: "SELECT value FROM settings WHERE name = ?", arguments: [name]).map(Date.init(timeIntervalSince1970:))
            }
            guard let at = try time(Store.restoredAtSetting) else { return nil }
            return Restored(at: at, possiblySentSince: try time(Store.possiblySentSinceSetting) ?? at)
        }
    }

    /// A restore's two instants (`Store.restore`).
    struct Restored: Sendable {
        let at: Date
        let possiblySentSince: Date
    }

    /// Settings a backup copy and a restored store carry: when the copy was taken; when it was restored, and since
    /// when Metrc may have applied what it did not know.
    static let backupTakenAtSetting = "backup_taken_at"
    static let restoredAtSetting = "restored_at"
    static let possiblySentSinceSetting = "possibly_sent_since"

    deinit {
        checkpointer.withLock { $0?.stop() }
    }

    /// Checkpoints the write-ahead log on a thread of its own from now on, every `interval` (`Checkpointer`): the
    /// daemon's commits then never pay for one. Short-lived tools keep SQLite's own checkpoints.
    ///
    /// Often, because a log copied in full starts again from its beginning: commits then overwrite blocks the
    /// log already has rather than growing the file, and an fdatasync that also has to record a new file size
    /// is the slower kind. Paced ack p99 in the bench, two runs each: 12–13 ms every 100 ms, 14–19 ms every
    /// 250 ms, 25–31 ms every second, 35 ms never.
    public func checkpointInBackground(every interval: Duration = .milliseconds(100)) throws {
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Checkpointer.writerBackstopPages)")
        }
        let started = try Checkpointer(path: path, interval: interval)
        checkpointer.withLock { current in
            current?.stop()
            current = started
        }
    }

    /// Creates the store file readable by its owner only (SQLite gives its WAL and shared-memory files the
    /// same mode), and takes group and other access away from one an older version left open.
    ///
    /// Never through a symbolic link: outlawctl runs as root, and a link planted in the store's folder (the
    /// daemon's user owns it) would otherwise make root change, or open, a file of the attacker's choosing.
    static func makeOwnerOnly(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            let why = errno == ELOOP ? "it is a symbolic link; the store must be a plain file" : String(cString: strerror(errno))
            throw StoreError("cannot open \(path): \(why)")
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & 0o077 != 0 {
            _ = fchmod(fd, info.st_mode & 0o700)
        }
        for suffix in ["-wal", "-shm"] {
            let side = path + suffix
            guard lstat(side, &info) == 0 else { continue }
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw StoreError("\(side) is not a plain file (a symbolic link?); refusing to open the store: remove it and retry")
            }
            if info.st_mode & 0o077 != 0 {
                // Opened with O_NOFOLLOW: the mode changed is this file's own, even if it was swapped since lstat.
                let sideFD = open(side, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                if sideFD >= 0 {
                    _ = fchmod(sideFD, info.st_mode & 0o700)
                    close(sideFD)
                }
            }
        }
    }

    /// The `synchronous` setting of the writing connection (2 = FULL), for tests and `outlawctl status`.
    public func synchronousMode() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    public func journalMode() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: devices, users, batches, events, audit") { db in
            try db.execute(sql: """
                CREATE TABLE devices (
                  id INTEGER PRIMARY KEY,
                  name TEXT NOT NULL UNIQUE,
                  token_hash BLOB NOT NULL,
                  active INTEGER NOT NULL DEFAULT 1,
                  created_at REAL NOT NULL,
                  last_seen_at REAL
                );
                CREATE TABLE users (
                  id INTEGER PRIMARY KEY,
                  name TEXT NOT NULL UNIQUE,
                  role TEXT NOT NULL CHECK (role IN ('admin', 'console', 'user')),
                  active INTEGER NOT NULL DEFAULT 1,
                  pin_hash BLOB NOT NULL,
                  pin_salt BLOB NOT NULL,
                  pin_rounds INTEGER NOT NULL,
                  created_at REAL NOT NULL
                );
                CREATE TABLE login_failures (
                  id INTEGER PRIMARY KEY,
                  user_name TEXT NOT NULL,
                  at REAL NOT NULL
                );
                CREATE INDEX login_failures_by_name ON login_failures (user_name, at);
                CREATE TABLE login_locks (
                  user_name TEXT PRIMARY KEY,
                  until REAL NOT NULL
                );
                CREATE TABLE batches (
                  id INTEGER PRIMARY KEY,
                  device_id INTEGER NOT NULL REFERENCES devices (id),
                  batch_id TEXT NOT NULL,
                  user_id INTEGER NOT NULL REFERENCES users (id),
                  license TEXT NOT NULL,
                  content_hash BLOB NOT NULL,
                  event_count INTEGER NOT NULL,
                  received_at REAL NOT NULL,
                  session TEXT NOT NULL,
                  UNIQUE (device_id, batch_id)
                );
                CREATE INDEX batches_by_user ON batches (user_id);
                CREATE TABLE events (
                  id INTEGER PRIMARY KEY,
                  batch_id INTEGER NOT NULL REFERENCES batches (id),
                  seq INTEGER NOT NULL,
                  type TEXT NOT NULL,
                  tag TEXT NOT NULL,
                  at TEXT NOT NULL,
                  metrc_date TEXT NOT NULL,
                  fields TEXT NOT NULL,
                  user_id INTEGER NOT NULL REFERENCES users (id),
                  license TEXT NOT NULL,
                  state TEXT NOT NULL,
                  updated_at REAL NOT NULL,
                  UNIQUE (batch_id, seq)
                );
                CREATE INDEX events_by_state ON events (state, id);
                CREATE TABLE audit (
                  id INTEGER PRIMARY KEY,
                  at REAL NOT NULL,
                  actor TEXT NOT NULL,
                  action TEXT NOT NULL,
                  subject TEXT,
                  detail TEXT
                );
                CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                  BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
                CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                  BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
                CREATE TABLE settings (
                  name TEXT PRIMARY KEY,
                  value TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2: uploads, keys, attempts") { db in
            try db.execute(sql: """
                ALTER TABLE events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE events ADD COLUMN message TEXT;
                ALTER TABLE events ADD COLUMN metrc_id TEXT;
                ALTER TABLE events ADD COLUMN key_kind TEXT;
                ALTER TABLE events ADD COLUMN key_reason TEXT;
                ALTER TABLE events ADD COLUMN first_attempt_at REAL;
                ALTER TABLE events ADD COLUMN last_attempt_at REAL;
                ALTER TABLE events ADD COLUMN next_attempt_at REAL;
                ALTER TABLE events ADD COLUMN unknown_since REAL;
                ALTER TABLE events ADD COLUMN attempt_id INTEGER;
                ALTER TABLE events ADD COLUMN held_code TEXT;
                CREATE INDEX events_by_tag ON events (tag, id);
                CREATE INDEX events_by_user_state ON events (user_id, state);
                CREATE TABLE user_keys (
                  user_id INTEGER PRIMARY KEY REFERENCES users (id),
                  key TEXT NOT NULL,
                  last4 TEXT NOT NULL,
                  status TEXT NOT NULL CHECK (status IN ('ok', 'unverified', 'rejected')),
                  set_at REAL NOT NULL,
                  set_by TEXT NOT NULL,
                  checked_at REAL
                );
                CREATE TABLE upload_attempts (
                  id INTEGER PRIMARY KEY,
                  started_at REAL NOT NULL,
                  finished_at REAL,
                  license TEXT NOT NULL,
                  action TEXT NOT NULL,
                  key_kind TEXT NOT NULL,
                  key_user TEXT,
                  key_reason TEXT NOT NULL,
                  events INTEGER NOT NULL,
                  outcome TEXT,
                  http_status INTEGER,
                  message TEXT,
                  metrc_ids TEXT
                );
                """)
        }
        migrator.registerMigration("v3: order over every tag an event names; read-back baselines") { db in
            // A waste record names up to 100 plants and keeps its place in the order of each; one row per
            // (tag, event) replaces the single-tag index for the "no earlier unfinished event" check.
            try db.execute(sql: """
                CREATE TABLE event_tags (
                  tag TEXT NOT NULL,
                  event_id INTEGER NOT NULL REFERENCES events (id),
                  PRIMARY KEY (tag, event_id)
                ) WITHOUT ROWID;
                CREATE INDEX event_tags_by_event ON event_tags (event_id);
                INSERT INTO event_tags (tag, event_id) SELECT tag, id FROM events;
                DROP INDEX events_by_tag;
                ALTER TABLE events ADD COLUMN read_back_base TEXT;
                """)
        }
        migrator.registerMigration("v4: audit hash chain") { db in
            // Each row carries a SHA-256 chained to the row before it (`AuditChain`). The append-only triggers
            // forbid the UPDATE that fills in existing rows, so they are lifted for the backfill alone, in this
            // same transaction.
            try db.execute(sql: """
                ALTER TABLE audit ADD COLUMN prev_hash BLOB;
                ALTER TABLE audit ADD COLUMN hash BLOB;
                DROP TRIGGER audit_no_update;
                """)
            try AuditChain.backfill(db)
            try db.execute(sql: """
                CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                  BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
                """)
        }
        migrator.registerMigration("v5: key health") { db in
            // The scheduled key check (`KeyHealthPolicy`): when Metrc last accepted the key, the last check and
            // its result, and the expiry Metrc reports (none does yet). Existing keys start from what is known.
            try db.execute(sql: """
                ALTER TABLE user_keys ADD COLUMN accepted_at REAL;
                ALTER TABLE user_keys ADD COLUMN last_check_at REAL;
                ALTER TABLE user_keys ADD COLUMN last_check_result TEXT
                  CHECK (last_check_result IN ('accepted', 'refused', 'unreachable'));
                ALTER TABLE user_keys ADD COLUMN metrc_expires_at REAL;
                UPDATE user_keys SET accepted_at = checked_at, last_check_at = checked_at, last_check_result = 'accepted'
                  WHERE status = 'ok' AND checked_at IS NOT NULL;
                UPDATE user_keys SET last_check_at = checked_at, last_check_result = 'refused'
                  WHERE status = 'rejected' AND checked_at IS NOT NULL;
                """)
        }
        migrator.registerMigration("v6: reference data, sync state, scan warnings") { db in
            // Metrc's lists as handhelds pull them. `change` is the license's change counter when the item last
            // changed: a pull's cursor is that counter, so it yields exactly what changed after it. An item that
            // left Metrc's active list keeps its row with `removed_at`, so a pull with a cursor can say so.
            try db.execute(sql: """
                CREATE TABLE reference_items (
                  license TEXT NOT NULL,
                  kind TEXT NOT NULL,
                  key TEXT NOT NULL COLLATE NOCASE,
                  item TEXT NOT NULL,
                  change INTEGER NOT NULL,
                  removed_at REAL,
                  PRIMARY KEY (license, kind, key)
                ) WITHOUT ROWID;
                CREATE INDEX reference_items_by_change ON reference_items (license, kind, change, key);
                CREATE TABLE reference_changes (
                  license TEXT PRIMARY KEY,
                  last INTEGER NOT NULL
                );
                CREATE TABLE reference_syncs (
                  license TEXT NOT NULL,
                  kind TEXT NOT NULL,
                  last_success_at REAL,
                  last_full_at REAL,
                  window_end REAL,
                  last_error TEXT,
                  last_error_at REAL,
                  PRIMARY KEY (license, kind)
                );
                CREATE TABLE sync_requests (
                  id INTEGER PRIMARY KEY,
                  requested_by TEXT NOT NULL,
                  full INTEGER NOT NULL DEFAULT 0,
                  requested_at REAL NOT NULL,
                  started_at REAL,
                  finished_at REAL,
                  result TEXT
                );
                ALTER TABLE events ADD COLUMN warning TEXT;
                """)
        }
        migrator.registerMigration("v7: drop the events-by-tag index") { db in
            // The order per tag reads event_tags (v3); nothing reads events by tag any more, and every stored event
            // paid for this index.
            try db.execute(sql: "DROP INDEX IF EXISTS events_by_tag")
        }
        migrator.registerMigration("v8: login tickets; peppered PIN hashes") { db in
            // A ticket proves that a person entered their PIN on a device; only its SHA-256 is kept. A batch keeps
            // the ticket that proved its user, so who vouched for it (device, issue time) stays known after expiry.
            try db.execute(sql: """
                CREATE TABLE login_tickets (
                  id INTEGER PRIMARY KEY,
                  hash BLOB NOT NULL UNIQUE,
                  device_id INTEGER NOT NULL REFERENCES devices (id),
                  user_id INTEGER NOT NULL REFERENCES users (id),
                  issued_at REAL NOT NULL,
                  expires_at REAL NOT NULL,
                  ended_at REAL,
                  ended_why TEXT
                );
                CREATE INDEX login_tickets_by_user ON login_tickets (user_id) WHERE ended_at IS NULL;
                CREATE INDEX login_tickets_by_device ON login_tickets (device_id) WHERE ended_at IS NULL;
                ALTER TABLE batches ADD COLUMN ticket_id INTEGER REFERENCES login_tickets (id);
                ALTER TABLE users ADD COLUMN pin_peppered INTEGER NOT NULL DEFAULT 0;
                DELETE FROM login_locks WHERE length(user_name) > 64;
                DELETE FROM login_failures WHERE length(user_name) > 64;
                """)
        }
        migrator.registerMigration("v9: PIN checks still running are told from failures") { db in
            // Honest logins of one name at once (a person on two handhelds, a crew's handhelds after a restart)
            // counted as failures while their PBKDF2 ran, and the sixth locked the name.
            try db.execute(sql: "ALTER TABLE login_failures ADD COLUMN pending INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v10: attempt outcomes stored as identifiers, not display text") { db in
            for (old, new) in [("rejected (rows unclear)", "rows_unclear"), ("too large", "too_large"), ("rate limited", "rate_limited"),
                               ("not found", "not_found"), ("server fault", "server_fault"), ("no answer", "no_answer"),
                               ("unknown (daemon stopped)", "daemon_stopped"), ("not sent", "not_sent")] {
                try db.execute(sql: "UPDATE upload_attempts SET outcome = ? WHERE outcome = ?", arguments: [new, old])
            }
        }
        migrator.registerMigration("v11: ready heads") { db in try ReadyHeads.create(db) }
        migrator.registerMigration("v12: retention archives, archived batch ids") { db in try RetentionSchema.create(db) }
        migrator.registerMigration("v13: the order per tag keeps only events that can still wait") { db in try ReadyHeads.forgetFinished(db) }
        migrator.registerMigration("v14: ingest keeps the heads of the tags it adds") { db in try ReadyHeads.ingestKeepsHeads(db) }
        migrator.registerMigration("v15: events found by their upload attempt") { db in try AttemptIndex.create(db) }
        return migrator
    }
}

/// An operation on the store that could not be done, with a message for the operator.
public struct StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Whether a background write's commit syncs the write-ahead log itself.
enum BackgroundSync {
    /// Synced at its commit (`synchronous=FULL`), as every write of the daemon unless said otherwise.
    case atCommit
    /// Not synced at its commit (`synchronous=NORMAL` for this one transaction): the log is append-only, so the next
    /// synced commit (a device's, milliseconds later under load) makes it durable too, and a power loss before that
    /// loses only this write and what came after it. Only for writes a restart redoes when they are lost.
    case withNextCommit
}

extension Store {
    /// A write that is not a device's commit (the uploader's records, retention, the reference sync): devices'
    /// commits waiting for the writer go first (`IngestFirst`). `sync` says whether its commit syncs the log itself.
    func backgroundWrite<T>(sync: BackgroundSync = .atCommit, _ updates: (Database) throws -> T) throws -> T {
        ingestFirst.backgroundTurn.lock()
        defer { ingestFirst.backgroundTurn.unlock() }
        ingestFirst.yieldToIngest()
        switch sync {
        case .atCommit:
            return try pool.write(updates)
        case .withNextCommit:
            return try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                // Back to FULL whatever happened: every later commit of this connection (devices' acks) must sync.
                defer { Store.restoreFullSync(db) }
                var result: T?
                try db.inTransaction {
                    result = try updates(db)
                    return .commit
                }
                return result!
            }
        }
    }

    /// Sets the writer back to `synchronous=FULL`; a writer that cannot be set back must not take another commit.
    static func restoreFullSync(_ db: Database) {
        do {
            try db.execute(sql: "PRAGMA synchronous = FULL")
        } catch {
            // Outside a transaction this pragma only sets a flag; failing here means the connection is unusable, and
            // going on would ack batches without syncing them.
            fatalError("cannot set the store's writer back to synchronous=FULL: \(error)")
        }
    }

    /// A read for async callers, on the blocking pool (`Blocking`). GRDB's async `read` holds a reader connection while its
    /// task waits for a cooperative thread to resume on; with those threads all blocked in synchronous reads
    /// waiting for a free reader (device sessions and the uploader read synchronously), the flat-out bench
    /// deadlocked. A synchronous read holds its reader only while it runs.
    func readOffThePool<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await Blocking.run { try self.pool.read(body) }
    }

    /// A write for async callers, on the blocking pool (see `readOffThePool`).
    func writeOffThePool<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await Blocking.run { try self.pool.write(body) }
    }
}
