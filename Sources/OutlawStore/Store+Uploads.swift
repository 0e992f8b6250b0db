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
public enum EventResult: Sendable, Hashable {
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
        typealias E = EventColumns
        // The state and count stay SQL text, as in the partial index `events_ready` (a bound value would not match it).
        let rows = try Row.fetchCursor(db, SQLRequest<Row>(literal: """
            SELECT e.\(E.id), e.\(E.type), e.\(E.tag), e.\(E.license), e.\(E.userID), u.\(UserColumns.name) AS \(ListingColumns.userName),
              e.\(E.fields), e.\(E.metrcDate), e.\(E.attempts), e.\(E.unknownSince), e.\(E.readBackBase)
            FROM \(EventTable.self) e INDEXED BY events_ready JOIN \(UserTable.self) u ON u.\(UserColumns.id) = e.\(E.userID)
            WHERE e.\(E.state) = '\(sql: EventState.queued.rawValue)' AND e.\(E.headsPending) = 0
              AND (e.\(E.nextAttemptAt) IS NULL OR e.\(E.nextAttemptAt) <= \(now.timeIntervalSince1970))
            ORDER BY e.\(E.id) LIMIT \(limit)
            """, cached: true))
        while let row = try rows.next() {
            let id: Int64 = row[E.id]
            let typeText: String = row[E.type]
            guard let type = EventType(rawValue: typeText) else {
                ready.unreadable.append(UnreadableEvent(id: id, reason: "stored event type \"\(typeText)\" is unknown to this outlawd"))
                continue
            }
            guard let fields = JSONValue.parse(Array((row[E.fields] as String).utf8))?.objectValue else {
                ready.unreadable.append(UnreadableEvent(id: id, reason: "stored event fields are not a JSON object"))
                continue
            }
            ready.events.append(PendingEvent(
                id: id, type: type, tag: row[E.tag], license: row[E.license], userID: row[E.userID], userName: row[ListingColumns.userName],
                fields: fields, metrcDate: row[E.metrcDate], attempts: row[E.attempts],
                unknownSince: (row[E.unknownSince] as Double?).map(Date.init(timeIntervalSince1970:)),
                readBackBase: (row[E.readBackBase] as String?).flatMap { JSONValue.parse(Array($0.utf8))?.objectValue }))
        }
        return ready
    }

    /// The earliest time a queued event becomes ready, if any is waiting for its backoff.
    public func nextRetryTime() throws -> Date? {
        try pool.read { db in
            try Double.fetchOne(db, SQLRequest<Double>(literal: """
                SELECT MIN(\(EventColumns.nextAttemptAt)) FROM \(EventTable.self)
                WHERE \(EventColumns.state) = \(EventState.queued) AND \(EventColumns.nextAttemptAt) IS NOT NULL
                """)).map(Date.init(timeIntervalSince1970:))
        }
    }

    /// Holds events that cannot be signed now (e.g. their collector's key was rejected).
    public func hold(eventIDs: [Int64], code: HoldCode, reason: String, now: Date = Date()) throws {
        guard !eventIDs.isEmpty else { return }
        try backgroundWrite { db in
            try db.cachedStatement(sql: """
                UPDATE events SET state = ?, held_code = ?, message = ?, updated_at = ?
                WHERE id IN (SELECT value FROM json_each(?)) AND state = ?
                """).execute(arguments: [EventState.held, code, reason, now.timeIntervalSince1970, Store.idList(eventIDs), EventState.queued])
        }
    }

    /// Marks events as being uploaded and records the attempt, committed before the request leaves.
    public func beginAttempt(eventIDs: [Int64], license: String, action: MetrcAction, signing: AttemptSigning, now: Date = Date()) throws -> Int64 {
        try backgroundWrite { db in
            let t = now.timeIntervalSince1970
            typealias A = UploadAttemptColumns
            try db.execute(literal: """
                INSERT INTO \(UploadAttemptTable.self) (\(A.startedAt), \(A.license), \(A.action), \(A.keyKind), \(A.keyUser), \(A.keyReason), \(A.events))
                VALUES (\(t), \(license), \(action.rawValue), \(signing.keyKind), \(signing.keyUser), \(signing.reason), \(eventIDs.count))
                """)
            let attemptID = db.lastInsertedRowID
            try db.cachedStatement(sql: """
                UPDATE events SET state = ?, attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?),
                  last_attempt_at = ?, key_kind = ?, key_reason = ?, attempt_id = ?, updated_at = ?
                WHERE id IN (SELECT value FROM json_each(?))
                """).execute(arguments: [EventState.uploading, t, t, signing.keyKind, signing.reason, attemptID, t, Store.idList(eventIDs)])
            return attemptID
        }
    }

    /// Records an attempt's outcome and each event's result, in one transaction.
    /// `keyAcceptedFor`: the user whose personal key Metrc just took, marked good in the same transaction (one
    /// fsync a request, not two).
    public func finishAttempt(_ attemptID: Int64, outcome: AttemptOutcome, httpStatus: Int?, message: String?, metrcIDs: [Int64],
                              results: [(Int64, EventResult)], keyAcceptedFor userID: Int64? = nil, now: Date = Date()) throws
    {
        try backgroundWrite { db in
            let t = now.timeIntervalSince1970
            let ids = metrcIDs.isEmpty ? nil : metrcIDs.map(String.init).joined(separator: ",")
            typealias A = UploadAttemptColumns
            try db.execute(literal: """
                UPDATE \(UploadAttemptTable.self) SET \(A.finishedAt) = \(t), \(A.outcome) = \(outcome), \(A.httpStatus) = \(httpStatus),
                  \(A.message) = \(message), \(A.metrcIDs) = \(ids)
                WHERE \(A.id) = \(attemptID)
                """)
            // One rule for `attempts`: an attempt counts once it left for Metrc. One recorded ahead and taken back
            // never left.
            if outcome == .notSent {
                try db.execute(literal: """
                    UPDATE \(EventTable.self) SET \(EventColumns.attempts) = MAX(\(EventColumns.attempts) - 1, 0)
                    WHERE \(EventColumns.attemptID) = \(attemptID)
                    """)
            }
            try Store.apply(results, db: db, now: t)
            if let userID { try Store.markUserKeyGood(db, userID: userID, now: now) }
        }
    }

    /// Sets events' results outside an attempt (reconciliation after an unknown outcome).
    public func resolve(_ results: [(Int64, EventResult)], now: Date = Date()) throws {
        guard !results.isEmpty else { return }
        try backgroundWrite { db in try Store.apply(results, db: db, now: now.timeIntervalSince1970) }
    }

    /// One statement for all the events that share a result, not one an event: a change of state fires the ready heads'
    /// triggers, and SQLite copies every page a statement with triggers changes into a statement journal first. Page
    /// by page that is once a statement, so an answer's hundred events on a few pages cost a few copies, not hundreds
    /// (a drain wrote 30 KB of journal an uploaded event when each event had its own statement).
    static func apply(_ results: [(Int64, EventResult)], db: Database, now t: Double) throws {
        var order: [EventResult] = []
        var groups: [EventResult: [Int64]] = [:]
        for (id, result) in results {
            if groups[result] == nil { order.append(result) }
            groups[result, default: []].append(id)
        }
        // Plain SQL text, prepared once and cached: preparing a statement that fires triggers compiles the triggers too.
        for result in order {
            let ids = groups[result] ?? []
            let list = idList(ids)
            switch result {
            case .uploaded(let metrcID):
                try db.cachedStatement(sql: """
                    UPDATE events SET state = ?, message = NULL, metrc_id = ?, unknown_since = NULL, next_attempt_at = NULL, updated_at = ?
                    WHERE id IN (SELECT value FROM json_each(?))
                    """).execute(arguments: [EventState.uploaded, metrcID, t, list])
                for id in ids { try reflectUpload(eventID: id, db: db, now: t) }
            case .failed(let message):
                try db.cachedStatement(sql: """
                    UPDATE events SET state = ?, message = ?, unknown_since = NULL, next_attempt_at = NULL, updated_at = ?
                    WHERE id IN (SELECT value FROM json_each(?))
                    """).execute(arguments: [EventState.failed, message, t, list])
            case .retry(let at, let message, let unknownSince):
                try db.cachedStatement(sql: """
                    UPDATE events SET state = ?, message = ?, next_attempt_at = ?, unknown_since = COALESCE(unknown_since, ?), updated_at = ?
                    WHERE id IN (SELECT value FROM json_each(?))
                    """).execute(arguments: [EventState.queued, message, at.timeIntervalSince1970, unknownSince?.timeIntervalSince1970, t, list])
            case .held(let code, let reason):
                try db.cachedStatement(sql: """
                    UPDATE events SET state = ?, held_code = ?, message = ?, updated_at = ? WHERE id IN (SELECT value FROM json_each(?))
                    """).execute(arguments: [EventState.held, code, reason, t, list])
            }
        }
    }

    /// Event ids as a JSON array, which one cached statement reads with `json_each` whatever their number (an `IN`
    /// list of placeholders would be a new statement, and its triggers compiled again, for every length).
    static func idList(_ ids: [Int64]) -> String {
        "[" + ids.map(String.init).joined(separator: ",") + "]"
    }

    /// Keeps what Metrc showed just before an attempt (e.g. a plant's manicure counters), per event, so a
    /// read-back after an unknown outcome can tell whether this attempt changed it.
    public func setReadBackBase(_ bases: [(Int64, [String: JSONValue])]) throws {
        guard !bases.isEmpty else { return }
        try backgroundWrite { db in
            let statement = try db.cachedStatement(literal: """
                UPDATE \(EventTable.self) SET \(EventColumns.readBackBase) = ? WHERE \(EventColumns.id) = ?
                """)
            for (id, base) in bases {
                try statement.execute(arguments: [JSONValue.object(base).serialized(sortedKeys: true), id])
            }
        }
    }

    /// Clears the unknown-outcome mark of events found not applied (after a successful read-back).
    public func clearUnknown(eventIDs: [Int64]) throws {
        guard !eventIDs.isEmpty else { return }
        try backgroundWrite { db in
            let statement = try db.cachedStatement(literal: """
                UPDATE \(EventTable.self) SET \(EventColumns.unknownSince) = NULL WHERE \(EventColumns.id) = ?
                """)
            for id in eventIDs { try statement.execute(arguments: [id]) }
        }
    }

    /// After a restart: events that were being uploaded have an unknown outcome; queue them again, marked so
    /// non-idempotent writes are checked against Metrc first. Held events are re-decided too. Returns (in flight, held).
    public func recoverAfterRestart(now: Date = Date()) throws -> (inFlight: Int, held: Int) {
        try backgroundWrite { db in
            typealias E = EventColumns
            let t = now.timeIntervalSince1970
            try db.execute(literal: """
                UPDATE \(EventTable.self) SET \(E.state) = \(EventState.queued),
                  \(E.unknownSince) = COALESCE(\(E.unknownSince), \(E.lastAttemptAt), \(t)), \(E.nextAttemptAt) = NULL
                WHERE \(E.state) = \(EventState.uploading)
                """)
            let inFlight = db.changesCount
            try db.execute(literal: """
                UPDATE \(UploadAttemptTable.self) SET \(UploadAttemptColumns.finishedAt) = \(t), \(UploadAttemptColumns.outcome) = \(AttemptOutcome.daemonStopped)
                WHERE \(UploadAttemptColumns.finishedAt) IS NULL
                """)
            try db.execute(literal: """
                UPDATE \(EventTable.self) SET \(E.state) = \(EventState.queued), \(E.heldCode) = NULL, \(E.message) = NULL
                WHERE \(E.state) = \(EventState.held)
                """)
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
            typealias E = EventColumns
            let count = Column("n")
            for row in try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT \(E.state), COUNT(*) AS \(count) FROM \(EventTable.self) WHERE \(E.state) IN \(counted) GROUP BY \(E.state)
                """, cached: true)) {
                let n: Int = row[count]
                switch row[E.state] as EventState? {
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
                try Int64.fetchOne(db, SQLRequest<Int64>(literal: "SELECT MIN(\(E.id)) FROM \(EventTable.self) WHERE \(E.state) = \(state)"))
            }.min()
            if let oldestID, let oldest = try Row.fetchOne(db, SQLRequest<Row>(literal: """
                SELECT b.\(BatchColumns.receivedAt), d.\(DeviceColumns.name) AS \(ListingColumns.device), b.\(BatchColumns.batchID), e.\(E.seq)
                FROM \(EventTable.self) e JOIN \(BatchTable.self) b ON b.\(BatchColumns.id) = e.\(E.batchID)
                  JOIN \(DeviceTable.self) d ON d.\(DeviceColumns.id) = b.\(BatchColumns.deviceID)
                WHERE e.\(E.id) = \(oldestID)
                """)) {
                stats.oldestWaitingReceivedAt = Date(timeIntervalSince1970: oldest[BatchColumns.receivedAt])
                stats.oldestWaitingEvent = "\(oldest[ListingColumns.device] as String):\(oldest[BatchColumns.batchID] as String)#\(oldest[E.seq] as Int)"
            }
            stats.heldUsers = try String.fetchAll(db, SQLRequest<String>(literal: """
                SELECT DISTINCT u.\(UserColumns.name) FROM \(EventTable.self) e JOIN \(UserTable.self) u ON u.\(UserColumns.id) = e.\(E.userID)
                WHERE e.\(E.state) = \(EventState.held) ORDER BY u.\(UserColumns.name)
                """))
            typealias A = UploadAttemptColumns
            stats.lastSuccessAt = try Double.fetchOne(db, SQLRequest<Double>(literal: """
                SELECT MAX(\(A.finishedAt)) FROM \(UploadAttemptTable.self) WHERE \(A.outcome) = \(AttemptOutcome.accepted)
                """)).map(Date.init(timeIntervalSince1970:))
            if let row = try Row.fetchOne(db, SQLRequest<Row>(literal: """
                SELECT \(A.finishedAt), \(A.message) FROM \(UploadAttemptTable.self)
                WHERE \(A.outcome) != \(AttemptOutcome.accepted) AND \(A.finishedAt) IS NOT NULL ORDER BY \(A.finishedAt) DESC LIMIT 1
                """)) {
                stats.lastErrorAt = (row[A.finishedAt] as Double?).map(Date.init(timeIntervalSince1970:))
                stats.lastErrorMessage = row[A.message]
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
                let rows = try String.fetchAll(db, SQLRequest<String>(literal: """
                    SELECT \(EventColumns.metrcID) FROM \(EventTable.self) WHERE \(EventColumns.metrcID) IN \(texts)
                    """))
                for r in rows { if let v = Int64(r) { claimed.insert(v) } }
            }
            return claimed
        }
    }
}
