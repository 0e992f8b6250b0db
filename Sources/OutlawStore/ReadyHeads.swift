import GRDB

/// The order per tag kept as data: each tag's first unfinished event (its head), so "what is ready" is an index range.
///
/// Before v11 every plan asked, for each queued event, whether an earlier unfinished event of one of its tags
/// existed: a walk over the queue whose cost grew with the backlog (issue 21: a 100,000-event backlog drained
/// at 2% of its bound). Now:
/// - `tag_heads` holds, for every tag with an unfinished event, the smallest such event;
/// - `events.heads_pending` counts the tags of an unfinished event whose head is another event;
/// - the partial index `events_ready` holds exactly the queued events with `heads_pending = 0`.
///
/// SQLite triggers keep both in the same transaction as every change of an event's state, whichever code
/// path makes it (an answer, a hold, review, replay, restore, retention): no caller can forget them. Ingest, the
/// one path that adds tag rows, keeps them itself (`Ingest`): since v14 no trigger fires there.
public enum ReadyHeads {
    /// The SQL list of unfinished states, as `EventState.unfinished` says.
    static var unfinishedList: String {
        "(" + EventState.unfinished.map { "'\($0.rawValue)'" }.joined(separator: ",") + ")"
    }

    static func create(_ db: Database) throws {
        let unfinished = unfinishedList
        // The next unfinished event of tag `tagExpression` after event `afterExpression`, or -1 (removed just after).
        func nextHead(tag tagExpression: String, after afterExpression: String) -> String {
            """
            COALESCE((SELECT t.event_id FROM event_tags t JOIN events x ON x.id = t.event_id
                      WHERE t.tag = \(tagExpression) AND t.event_id > \(afterExpression) AND x.state IN \(unfinished)
                      ORDER BY t.event_id LIMIT 1), -1)
            """
        }
        try db.execute(sql: """
            ALTER TABLE events ADD COLUMN heads_pending INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE tag_heads (
              tag TEXT PRIMARY KEY,
              event_id INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX tag_heads_by_event ON tag_heads (event_id);

            """)
        try derive(db)
        try db.execute(sql: """
            CREATE INDEX events_ready ON events (id) WHERE state = 'queued' AND heads_pending = 0;

            -- A head that moves from one event to another: the old one waits for this tag again, the new one no longer.
            CREATE TRIGGER tag_heads_moved AFTER UPDATE OF event_id ON tag_heads
            BEGIN
              UPDATE events SET heads_pending = heads_pending - 1 WHERE id = NEW.event_id;
              UPDATE events SET heads_pending = heads_pending + 1 WHERE id = OLD.event_id AND state IN \(unfinished);
            END;

            -- A new event of a tag: it waits if the tag already has an unfinished event, else it is the tag's head.
            -- (Scans are stored `recorded` and never get event_tags rows.)
            CREATE TRIGGER event_tags_added AFTER INSERT ON event_tags
            WHEN (SELECT state FROM events WHERE id = NEW.event_id) IN \(unfinished)
            BEGIN
              UPDATE events SET heads_pending = heads_pending + 1
                WHERE id = NEW.event_id AND EXISTS (SELECT 1 FROM tag_heads WHERE tag = NEW.tag AND event_id <> NEW.event_id);
              INSERT OR IGNORE INTO tag_heads (tag, event_id) VALUES (NEW.tag, NEW.event_id);
            END;

            -- An event finished (uploaded, failed, rejected): each tag it headed passes to its next unfinished event.
            CREATE TRIGGER events_finished AFTER UPDATE OF state ON events
            WHEN OLD.state IN \(unfinished) AND NEW.state NOT IN \(unfinished)
            BEGIN
              UPDATE tag_heads SET event_id = \(nextHead(tag: "tag_heads.tag", after: "NEW.id")) WHERE event_id = NEW.id;
              DELETE FROM tag_heads WHERE event_id = -1;
            END;

            -- An event unfinished again (a replay): it heads every tag where nothing earlier waits, and waits on the rest.
            CREATE TRIGGER events_unfinished AFTER UPDATE OF state ON events
            WHEN OLD.state NOT IN \(unfinished) AND NEW.state IN \(unfinished)
            BEGIN
              INSERT INTO tag_heads (tag, event_id) SELECT tag, NEW.id FROM event_tags WHERE event_id = NEW.id AND true
                ON CONFLICT (tag) DO UPDATE SET event_id = excluded.event_id WHERE excluded.event_id < tag_heads.event_id;
              UPDATE events SET heads_pending = (
                  SELECT COUNT(*) FROM event_tags t JOIN tag_heads h ON h.tag = t.tag
                  WHERE t.event_id = NEW.id AND h.event_id <> NEW.id)
                WHERE id = NEW.id;
            END;

            -- A tag row removed while its event heads the tag (only unfinished events head one): the head passes on.
            CREATE TRIGGER event_tags_removed AFTER DELETE ON event_tags
            WHEN EXISTS (SELECT 1 FROM tag_heads WHERE tag = OLD.tag AND event_id = OLD.event_id)
            BEGIN
              UPDATE tag_heads SET event_id = \(nextHead(tag: "OLD.tag", after: "OLD.event_id")) WHERE tag = OLD.tag;
              DELETE FROM tag_heads WHERE tag = OLD.tag AND event_id = -1;
            END;
            """)
    }

    /// Every tag's head and every event's count of waits, derived from the tag rows: v11 on an older store, and
    /// tests that seed a queue in bulk.
    public static func derive(_ db: Database) throws {
        let unfinished = unfinishedList
        try db.execute(sql: """
            DELETE FROM tag_heads;
            INSERT INTO tag_heads (tag, event_id)
              SELECT t.tag, MIN(t.event_id) FROM event_tags t JOIN events e ON e.id = t.event_id
              WHERE e.state IN \(unfinished) GROUP BY t.tag;
            UPDATE events SET heads_pending = (
                SELECT COUNT(*) FROM event_tags t JOIN tag_heads h ON h.tag = t.tag
                WHERE t.event_id = events.id AND h.event_id <> events.id)
              WHERE state IN \(unfinished);
            """)
    }

    /// v14: ingest keeps the heads of the tags it adds, in place of the trigger `event_tags_added`.
    ///
    /// A trigger that writes other rows makes SQLite keep a statement journal for the statement that fires it: each
    /// tag row's insert copied the four or five pages it touched (the tag row, its index, the event's row and its
    /// ready entry) into a journal first, 14 KB of writes an event. The flat-out ingest fell from 29,000 to 20,000
    /// events/s with it.
    static func ingestKeepsHeads(_ db: Database) throws {
        try db.execute(sql: "DROP TRIGGER event_tags_added")
    }

    /// Ingest's share of the heads, its statements looked up once a batch (the statement cache hashes the SQL text
    /// of every lookup, which per event cost more than the lookups themselves).
    public struct Ingest {
        private let claimHead: BoundStatement
        private let insertTag: BoundStatement

        public init(_ db: Database) throws {
            claimHead = BoundStatement(try db.cachedStatement(sql: "INSERT OR IGNORE INTO tag_heads (tag, event_id) VALUES (?, ?)"), in: db)
            insertTag = BoundStatement(try db.cachedStatement(sql: "INSERT INTO event_tags (tag, event_id) VALUES (?, ?)"), in: db)
        }

        /// The id SQLite would give the next event: the largest plus one (events have no AUTOINCREMENT). Ingest gives
        /// it itself, inside its write transaction, so the event's heads are claimed before its insert.
        public static func nextEventID(_ db: Database) throws -> Int64 {
            try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM events") ?? 1
        }

        /// Makes the event `eventID` (not inserted yet: ingest gives its id) the head of each of its `tags` that has
        /// none, and returns how many already had one: its `heads_pending`, given in its insert so its row is written
        /// once. One statement a tag: the head's insert is ignored where a head exists, and its change count says so.
        public func claimHeads(eventID: Int64, tags: [String]) throws -> Int {
            var waits = 0
            claimHead.bind(eventID, at: 2)
            for tag in tags {
                claimHead.bind(tag, at: 1)
                try claimHead.run()
                if claimHead.changes == 0 { waits += 1 }
            }
            return waits
        }

        /// The tag rows of an inserted event. `tags` without repeats.
        public func addTagRows(eventID: Int64, tags: [String]) throws {
            insertTag.bind(eventID, at: 2)
            for tag in tags {
                insertTag.bind(tag, at: 1)
                try insertTag.run()
            }
        }
    }

    /// `tags` in their first order without repeats (an event may name a tag twice; it waits on it once).
    public static func distinct(_ tags: [String]) -> [String] {
        if tags.count < 2 { return tags }
        var seen = Set<String>()
        return tags.filter { seen.insert($0).inserted }
    }

    /// v13: an event that can never wait again (uploaded, or rejected in review) drops its tag rows as it finishes.
    ///
    /// `event_tags` is keyed by tag, so every stored event inserts into it at a random place: on a store of ten
    /// million finished events that meant random pages in every commit and in every checkpoint (the paced p99 went
    /// from 8 to 138 ms). The order per tag needs only the events that can still wait; `failed` events keep their
    /// rows, since a replay queues them again in their old place. Rows of events finished before v13 stay until
    /// retention archives their events: deleting millions at the first start would hold up an upgrade.
    static func forgetFinished(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TRIGGER events_done_forget_tags AFTER UPDATE OF state ON events
            WHEN NEW.state IN ('uploaded', 'rejected')
            BEGIN
              DELETE FROM event_tags WHERE event_id = NEW.id;
            END;
            """)
    }
}
