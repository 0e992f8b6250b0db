import Foundation
import GRDB
import OutlawProtocol

/// An event ready to be uploaded, decoded once from the store: its type and fields as the uploader needs them.
public struct PendingEvent: Sendable, Equatable {
    public let id: Int64
    public let type: EventType
    public let tag: String
    /// Every tag it keeps its place in the order of (several plants for a waste record).
    public var tags: [String] { type.orderTags(fields) }
    public let license: String
    public let userID: Int64
    public let userName: String
    /// The event object as received.
    public let fields: [String: JSONValue]
    public let metrcDate: String
    public let attempts: Int
    /// Set when an earlier attempt's outcome is unknown (a non-idempotent write must be checked before resending).
    public let unknownSince: Date?
    /// What Metrc showed just before the last attempt (a manicure's plant counters), for its read-back.
    public let readBackBase: [String: JSONValue]?

    public init(id: Int64, type: EventType, tag: String, license: String, userID: Int64, userName: String,
                fields: [String: JSONValue], metrcDate: String, attempts: Int, unknownSince: Date?,
                readBackBase: [String: JSONValue]? = nil)
    {
        self.readBackBase = readBackBase
        self.id = id
        self.type = type
        self.tag = tag
        self.license = license
        self.userID = userID
        self.userName = userName
        self.fields = fields
        self.metrcDate = metrcDate
        self.attempts = attempts
        self.unknownSince = unknownSince
    }
}

/// A stored event whose type or fields cannot be read back: it is failed, never guessed at.
public struct UnreadableEvent: Sendable, Equatable {
    public let id: Int64
    public let reason: String
}

/// What the queue offers the uploader now.
public struct ReadyEvents: Sendable, Equatable {
    public var events: [PendingEvent] = []
    public var unreadable: [UnreadableEvent] = []
}

/// How one event came out of an upload attempt.
public enum EventResult: Sendable, Equatable {
    case uploaded(metrcID: String?)
    case failed(message: String)
    /// Back in the queue, not before `at`; `unknownSince` marks a write whose outcome is unknown.
    case retry(at: Date, message: String?, unknownSince: Date?)
    case held(code: HoldCode, reason: String)
}

/// The signing facts of one upload attempt.
public struct AttemptSigning: Sendable, Equatable {
    public let keyKind: KeyKind
    public let keyUser: String?
    public let reason: String

    public init(keyKind: KeyKind, keyUser: String?, reason: String) {
        self.keyKind = keyKind
        self.keyUser = keyUser
        self.reason = reason
    }
}

/// Counts for status lines and alerts.
public struct QueueStats: Sendable, Equatable, Codable {
    public var queued = 0
    public var uploading = 0
    public var held = 0
    public var failed = 0
    public var uploaded = 0
    public var recorded = 0
    /// Waiting for a person's review; rejected there (never sent).
    public var review = 0
    public var rejected = 0
    /// When the oldest event not yet uploaded (queued, uploading, held or in review) was received.
    public var oldestWaitingReceivedAt: Date?
    /// The oldest waiting event as `DEVICE:BATCH_ID#SEQ`, for alerts.
    public var oldestWaitingEvent: String?
    public var heldUsers: [String] = []
    public var lastSuccessAt: Date?
    public var lastErrorAt: Date?
    public var lastErrorMessage: String?

    public var waiting: Int { queued + uploading + held + review }
}

extension Store {
    /// Queued events whose time has come and that no earlier unfinished event of the same tag is waiting before,
    /// in ingestion order: so a plant's move reaches Metrc before its later harvest, whoever collected each.
    /// The heads are kept by triggers (`ReadyHeads`), so this reads an index range, whatever the backlog.
    public func readyEvents(now: Date, limit: Int) throws -> ReadyEvents {
        try pool.read { db in try Store.readyEvents(db, now: now, limit: limit) }
    }

    static func readyEvents(_ db: Database, now: Date, limit: Int) throws -> ReadyEvents {
        var ready = ReadyEvents()
        let rows = try Row.fetchCursor(db, SQLRequest<Row>(literal: """
            SELECT e.id, e.type, e.tag, e.license, e.user_id, u.name AS user_name, e.fields, e.metrc_date, e.attempts,
              e.unknown_since, e.read_back_base
            FROM events e INDEXED BY events_ready JOIN users u ON u.id = e.user_id
            WHERE e.state = 'queued' AND e.heads_pending = 0
              AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= \(now.timeIntervalSince1970))
            ORDER BY e.id LIMIT \(limit)
            """, cached: true))
        while let row = try rows.next() {
            let id: Int64 = row["id"]
            let typeText: String = row["type"]
            guard let type = EventType(rawValue: typeText) else {
                ready.unreadable.append(UnreadableEvent(id: id, reason: "stored event type \"\(typeText)\" is unknown to this outlawd"))
                continue
            }
            guard let fields = JSONValue.parse(Array((row["fields"] as String).utf8))?.objectValue else {
                ready.unreadable.append(UnreadableEvent(id: id, reason: "stored event fields are not a JSON object"))
                continue
            }
            ready.events.append(PendingEvent(
                id: id, type: type, tag: row["tag"], license: row["license"], userID: row["user_id"], userName: row["user_name"],
                fields: fields, metrcDate: row["metrc_date"], attempts: row["attempts"],
                unknownSince: (row["unknown_since"] as Double?).map(Date.init(timeIntervalSince1970:)),
                readBackBase: (row["read_back_base"] as String?).flatMap { JSONValue.parse(Array($0.utf8))?.objectValue }))
        }
        return ready
    }

    /// The earliest time a queued event becomes ready, if any is waiting for its backoff.
    public func nextRetryTime() throws -> Date? {
        try pool.read { db in
            try Double.fetchOne(db, sql: "SELECT MIN(next_attempt_at) FROM events WHERE state = ? AND next_attempt_at IS NOT NULL",
                                arguments: [EventState.queued])
                .map(Date.init(timeIntervalSince1970:))
        }
    }

    /// Holds events that cannot be signed now (e.g. their collector's key was rejected).
    public func hold(eventIDs: [Int64], code: HoldCode, reason: String, now: Date = Date()) throws {
        guard !eventIDs.isEmpty else { return }
        try pool.write { db in
            let statement = try db.cachedStatement(sql: "UPDATE events SET state = ?, held_code = ?, message = ?, updated_at = ? WHERE id = ? AND state = ?")
            for id in eventIDs {
                try statement.execute(arguments: [EventState.held, code, reason, now.timeIntervalSince1970, id, EventState.queued])
            }
        }
    }

    /// Marks events as being uploaded and records the attempt, committed before the request leaves.
    public func beginAttempt(eventIDs: [Int64], license: String, action: MetrcAction, signing: AttemptSigning, now: Date = Date()) throws -> Int64 {
        try pool.write { db in
            let t = now.timeIntervalSince1970
            try db.execute(sql: """
                INSERT INTO upload_attempts (started_at, license, action, key_kind, key_user, key_reason, events) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [t, license, action.rawValue, signing.keyKind, signing.keyUser, signing.reason, eventIDs.count])
            let attemptID = db.lastInsertedRowID
            let statement = try db.cachedStatement(sql: """
                UPDATE events SET state = ?, attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?),
                  last_attempt_at = ?, key_kind = ?, key_reason = ?, attempt_id = ?, updated_at = ? WHERE id = ?
                """)
            for id in eventIDs {
                try statement.execute(arguments: [EventState.uploading, t, t, signing.keyKind, signing.reason, attemptID, t, id])
            }
            return attemptID
        }
    }

    /// Records an attempt's outcome and each event's result, in one transaction.
    /// `keyAcceptedFor`: the user whose personal key Metrc just took, marked good in the same transaction (one
    /// fsync a request, not two).
    public func finishAttempt(_ attemptID: Int64, outcome: AttemptOutcome, httpStatus: Int?, message: String?, metrcIDs: [Int64],
                              results: [(Int64, EventResult)], keyAcceptedFor userID: Int64? = nil, now: Date = Date()) throws
    {
        try pool.write { db in
            let t = now.timeIntervalSince1970
            let ids = metrcIDs.isEmpty ? nil : metrcIDs.map(String.init).joined(separator: ",")
            try db.execute(sql: "UPDATE upload_attempts SET finished_at = ?, outcome = ?, http_status = ?, message = ?, metrc_ids = ? WHERE id = ?",
                           arguments: [t, outcome, httpStatus, message, ids, attemptID])
            // One rule for `attempts`: an attempt counts once it left for Metrc. One recorded ahead and taken back
            // never left.
            if outcome == .notSent {
                try db.execute(sql: "UPDATE events SET attempts = MAX(attempts - 1, 0) WHERE attempt_id = ?", arguments: [attemptID])
            }
            try Store.apply(results, db: db, now: t)
            if let userID { try Store.markUserKeyGood(db, userID: userID, now: now) }
        }
    }

    /// Sets events' results outside an attempt (reconciliation after an unknown outcome).
    public func resolve(_ results: [(Int64, EventResult)], now: Date = Date()) throws {
        guard !results.isEmpty else { return }
        try pool.write { db in try Store.apply(results, db: db, now: now.timeIntervalSince1970) }
    }

    static func apply(_ results: [(Int64, EventResult)], db: Database, now t: Double) throws {
        for (id, result) in results {
            switch result {
            case .uploaded(let metrcID):
                try db.cachedStatement(sql: "UPDATE events SET state = ?, message = NULL, metrc_id = ?, unknown_since = NULL, next_attempt_at = NULL, updated_at = ? WHERE id = ?")
                    .execute(arguments: [EventState.uploaded, metrcID, t, id])
                try reflectUpload(eventID: id, db: db, now: t)
            case .failed(let message):
                try db.cachedStatement(sql: "UPDATE events SET state = ?, message = ?, unknown_since = NULL, next_attempt_at = NULL, updated_at = ? WHERE id = ?")
                    .execute(arguments: [EventState.failed, message, t, id])
            case .retry(let at, let message, let unknownSince):
                try db.cachedStatement(sql: """
                    UPDATE events SET state = ?, message = ?, next_attempt_at = ?,
                      unknown_since = COALESCE(unknown_since, ?), updated_at = ? WHERE id = ?
                    """).execute(arguments: [EventState.queued, message, at.timeIntervalSince1970, unknownSince?.timeIntervalSince1970, t, id])
            case .held(let code, let reason):
                try db.cachedStatement(sql: "UPDATE events SET state = ?, held_code = ?, message = ?, updated_at = ? WHERE id = ?")
                    .execute(arguments: [EventState.held, code, reason, t, id])
            }
        }
    }

    /// Keeps what Metrc showed just before an attempt (e.g. a plant's manicure counters), per event, so a
    /// read-back after an unknown outcome can tell whether this attempt changed it.
    public func setReadBackBase(_ bases: [(Int64, [String: JSONValue])]) throws {
        guard !bases.isEmpty else { return }
        try pool.write { db in
            for (id, base) in bases {
                try db.execute(sql: "UPDATE events SET read_back_base = ? WHERE id = ?",
                               arguments: [JSONValue.object(base).serialized(sortedKeys: true), id])
            }
        }
    }

    /// Clears the unknown-outcome mark of events found not applied (after a successful read-back).
    public func clearUnknown(eventIDs: [Int64]) throws {
        guard !eventIDs.isEmpty else { return }
        try pool.write { db in
            for id in eventIDs { try db.execute(sql: "UPDATE events SET unknown_since = NULL WHERE id = ?", arguments: [id]) }
        }
    }

    /// After a restart: events that were being uploaded have an unknown outcome; queue them again, marked so
    /// non-idempotent writes are checked against Metrc first. Held events are re-decided too. Returns (in flight, held).
    public func recoverAfterRestart(now: Date = Date()) throws -> (inFlight: Int, held: Int) {
        try pool.write { db in
            try db.execute(sql: """
                UPDATE events SET state = ?, unknown_since = COALESCE(unknown_since, last_attempt_at, ?), next_attempt_at = NULL
                WHERE state = ?
                """, arguments: [EventState.queued, now.timeIntervalSince1970, EventState.uploading])
            let inFlight = db.changesCount
            try db.execute(sql: "UPDATE upload_attempts SET finished_at = ?, outcome = ? WHERE finished_at IS NULL",
                           arguments: [now.timeIntervalSince1970, AttemptOutcome.daemonStopped])
            try db.execute(sql: "UPDATE events SET state = ?, held_code = NULL, message = NULL WHERE state = ?",
                           arguments: [EventState.queued, EventState.held])
            return (inFlight, db.changesCount)
        }
    }

    /// Counts, oldest wait and held users, for STATUS=, alerts and `outlawctl status`.
    /// With `countingFinished` false, uploaded, recorded and rejected events are not counted (they stay 0): the
    /// daemon's status line, every few seconds, then reads only what waits or failed, not every event ever stored.
    public func queueStats(countingFinished: Bool = true) throws -> QueueStats {
        try pool.read { db in
            var stats = QueueStats()
            let counted = countingFinished ? EventState.allCases : EventState.unfinished + [.failed]
            for row in try Row.fetchAll(db, SQLRequest<Row>(literal: "SELECT state, COUNT(*) AS n FROM events WHERE state IN \(counted) GROUP BY state",
                                                            cached: true)) {
                let n: Int = row["n"]
                switch row["state"] as EventState? {
                case .queued: stats.queued = n
                case .uploading: stats.uploading = n
                case .held: stats.held = n
                case .failed: stats.failed = n
                case .uploaded: stats.uploaded = n
                case .recorded: stats.recorded = n
                case .review: stats.review = n
                case .rejected: stats.rejected = n
                case nil: break
                }
            }
            // The oldest of each state is one step down the (state, id) index; sorting every waiting event is not.
            let oldestID = try EventState.unfinished.compactMap { state in
                try Int64.fetchOne(db, sql: "SELECT MIN(id) FROM events WHERE state = ?", arguments: [state])
            }.min()
            if let oldestID, let oldest = try Row.fetchOne(db, sql: """
                SELECT b.received_at, d.name AS device, b.batch_id, e.seq FROM events e
                JOIN batches b ON b.id = e.batch_id JOIN devices d ON d.id = b.device_id WHERE e.id = ?
                """, arguments: [oldestID]) {
                stats.oldestWaitingReceivedAt = Date(timeIntervalSince1970: oldest["received_at"])
                stats.oldestWaitingEvent = "\(oldest["device"] as String):\(oldest["batch_id"] as String)#\(oldest["seq"] as Int)"
            }
            stats.heldUsers = try String.fetchAll(db, sql: """
                SELECT DISTINCT u.name FROM events e JOIN users u ON u.id = e.user_id WHERE e.state = ? ORDER BY u.name
                """, arguments: [EventState.held])
            stats.lastSuccessAt = try Double.fetchOne(db, sql: "SELECT MAX(finished_at) FROM upload_attempts WHERE outcome = ?",
                                                      arguments: [AttemptOutcome.accepted])
                .map(Date.init(timeIntervalSince1970:))
            if let row = try Row.fetchOne(db, sql: """
                SELECT finished_at, message FROM upload_attempts WHERE outcome != ? AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1
                """, arguments: [AttemptOutcome.accepted]) {
                stats.lastErrorAt = (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:))
                stats.lastErrorMessage = row["message"]
            }
            return stats
        }
    }
}

extension Store {
    /// Which of these Metrc ids are already recorded on an uploaded event (so reconciliation never claims one twice).
    public func claimedMetrcIDs(_ ids: [Int64]) throws -> Set<Int64> {
        guard !ids.isEmpty else { return [] }
        return try pool.read { db in
            var claimed = Set<Int64>()
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                let texts = chunk.map(String.init)
                let rows = try String.fetchAll(db, SQLRequest<String>(literal: "SELECT metrc_id FROM events WHERE metrc_id IN \(texts)"))
                for r in rows { if let v = Int64(r) { claimed.insert(v) } }
            }
            return claimed
        }
    }
}
