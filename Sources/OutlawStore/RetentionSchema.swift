import GRDB

/// The v12 tables of retention (`Store.runRetention`).
///
/// - `archives`: one row per archive file, from the moment its name is taken (`writing`) through its audit row
///   (`written`: the commit point, the file is vouched for and its batches may leave) to the end of the deletions
///   (`done`). A restart finds any other state and completes or discards that step.
/// - `archived_batches`: each archived batch's device, id, content hash and event count: what `status` answers
///   `archived` from, and what tells a handheld's resend (`duplicate`) from a new batch reusing the id (`id_conflict`).
///   About 80 bytes a batch, in the live store for good.
/// - `audit_batch_decisions`: the audit rows that changed a batch's events (review, replay), found by subject when
///   the batch's lines are written; a partial index, so other audit rows do not pay for it.
enum RetentionSchema {
    static func create(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE archives (
              id INTEGER PRIMARY KEY,
              month TEXT NOT NULL,
              part INTEGER NOT NULL,
              file TEXT NOT NULL UNIQUE,
              state TEXT NOT NULL CHECK (state IN ('writing', 'written', 'done')),
              started_at REAL NOT NULL,
              written_at REAL,
              finished_at REAL,
              sha256 BLOB,
              events INTEGER NOT NULL DEFAULT 0,
              batches INTEGER NOT NULL DEFAULT 0,
              bytes INTEGER NOT NULL DEFAULT 0,
              audit_id INTEGER,
              UNIQUE (month, part)
            );
            CREATE TABLE archived_batches (
              device_id INTEGER NOT NULL REFERENCES devices (id),
              batch_id TEXT NOT NULL,
              archive_id INTEGER NOT NULL REFERENCES archives (id),
              content_hash BLOB NOT NULL,
              event_count INTEGER NOT NULL,
              PRIMARY KEY (device_id, batch_id)
            ) WITHOUT ROWID;
            CREATE INDEX audit_batch_decisions ON audit (subject) WHERE action IN ('replay', 'review.approve', 'review.reject');
            """)
    }
}

/// v15: which events name an upload attempt, so retention can tell an attempt no live event names any more
/// (`Store.forgetAttempts`), and taking back an unsent attempt finds its events without reading every event. Partial:
/// a new event has none, so ingest never pays for it.
enum AttemptIndex {
    static func create(_ db: Database) throws {
        try db.execute(sql: "CREATE INDEX events_by_attempt ON events (attempt_id) WHERE attempt_id IS NOT NULL")
    }
}

/// `archives`: one row per retention archive file and how far its run got.
enum ArchiveTable: TableRecord { static let databaseTableName = "archives" }
enum ArchiveColumns {
    static let id = Column("id")
    static let month = Column("month")
    static let part = Column("part")
    static let file = Column("file")
    static let state = Column("state")
    static let startedAt = Column("started_at")
    static let writtenAt = Column("written_at")
    static let finishedAt = Column("finished_at")
    static let sha256 = Column("sha256")
    static let events = Column("events")
    static let batches = Column("batches")
    static let bytes = Column("bytes")
    static let auditID = Column("audit_id")
}

/// `archived_batches`: the batches that left the live store for an archive.
enum ArchivedBatchTable: TableRecord { static let databaseTableName = "archived_batches" }
enum ArchivedBatchColumns {
    static let deviceID = Column("device_id")
    static let batchID = Column("batch_id")
    static let archiveID = Column("archive_id")
    static let contentHash = Column("content_hash")
    static let eventCount = Column("event_count")
}

/// How far an archive got: the steps a restart completes (`written`) or discards (`writing`).
enum ArchiveState: String, DatabaseValueConvertible {
    /// The name is taken; the file may be half written, or written and renamed, but nothing vouches for it.
    case writing
    /// Its audit row is committed: the file holds its batches, which now leave the live store in small transactions.
    case written
    /// Every batch it holds has left the live store.
    case done
}
