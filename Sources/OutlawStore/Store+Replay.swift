import Foundation
import GRDB

/// Which failed (or held) events an operator means.
public struct FailureFilter: Sendable {
    public var device: String?
    public var user: String?
    public var since: Date?
    /// One batch (device + batch id), or all matching batches when nil.
    public var batch: (device: String, id: String)?
    /// Only these `seq`s of the batch.
    public var seqs: [Int]?
    public var includeHeld: Bool

    public init(device: String? = nil, user: String? = nil, since: Date? = nil, batch: (device: String, id: String)? = nil,
                seqs: [Int]? = nil, includeHeld: Bool = true)
    {
        self.device = device
        self.user = user
        self.since = since
        self.batch = batch
        self.seqs = seqs
        self.includeHeld = includeHeld
    }
}

/// A failed or held event, as `outlawctl failed` lists it.
public struct FailedEvent: Sendable, Equatable, Codable {
    public let seq: Int
    public let type: String
    public let tag: String
    public let state: EventState
    /// Why a held event waits.
    public let heldCode: HoldCode?
    public let message: String?
    public let keyKind: KeyKind?
    public let attempts: Int
    public let firstAttemptAt: Date?
    public let lastAttemptAt: Date?
    /// What the scan check found missing from Metrc's lists when the event was stored.
    public var warning: String? = nil
}

/// A batch with its failed or held events.
public struct FailedBatch: Sendable, Equatable, Codable {
    public let device: String
    public let id: String
    public let user: String
    public let license: String
    public let receivedAt: Date
    public let events: [FailedEvent]
}

extension Store {
    /// Failed (and held) events grouped by batch, oldest batch first.
    public func failures(_ filter: FailureFilter) throws -> [FailedBatch] {
        try pool.read { db in try Store.failureRows(db, filter) }
    }

    static func failureRows(_ db: Database, _ filter: FailureFilter) throws -> [FailedBatch] {
        let states = filter.includeHeld ? [EventState.failed, EventState.held] : [EventState.failed]
        var conditions: [SQL] = ["e.\(EventColumns.state) IN \(states)"]
        if let device = filter.device { conditions.append("d.\(DeviceColumns.name) = \(device)") }
        if let user = filter.user { conditions.append("u.\(UserColumns.name) = \(user)") }
        if let since = filter.since { conditions.append("b.\(BatchColumns.receivedAt) >= \(since.timeIntervalSince1970)") }
        if let batch = filter.batch {
            conditions.append("d.\(DeviceColumns.name) = \(batch.device) AND b.\(BatchColumns.batchID) = \(batch.id)")
        }
        if let seqs = filter.seqs, !seqs.isEmpty { conditions.append("e.\(EventColumns.seq) IN \(seqs)") }
        let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
            SELECT b.\(BatchColumns.id) AS \(ListingColumns.batchPK), d.\(DeviceColumns.name) AS \(ListingColumns.device),
                   b.\(BatchColumns.batchID), u.\(UserColumns.name) AS \(ListingColumns.user), b.\(BatchColumns.license),
                   b.\(BatchColumns.receivedAt), e.\(EventColumns.seq), e.\(EventColumns.type), e.\(EventColumns.tag), e.\(EventColumns.state),
                   e.\(EventColumns.heldCode), e.\(EventColumns.message), e.\(EventColumns.keyKind), e.\(EventColumns.attempts),
                   e.\(EventColumns.firstAttemptAt), e.\(EventColumns.lastAttemptAt), e.\(EventColumns.warning)
            FROM \(EventTable.self) e JOIN \(BatchTable.self) b ON b.\(BatchColumns.id) = e.\(EventColumns.batchID)
              JOIN \(DeviceTable.self) d ON d.\(DeviceColumns.id) = b.\(BatchColumns.deviceID)
              JOIN \(UserTable.self) u ON u.\(UserColumns.id) = e.\(EventColumns.userID)
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY b.\(BatchColumns.id), e.\(EventColumns.seq)
            """))
        var out: [FailedBatch] = []
        var current: (pk: Int64, batch: FailedBatch)?
        for row in rows {
            let event = FailedEvent(seq: row[EventColumns.seq], type: row[EventColumns.type], tag: row[EventColumns.tag],
                                    state: row[EventColumns.state], heldCode: row[EventColumns.heldCode], message: row[EventColumns.message],
                                    keyKind: row[EventColumns.keyKind], attempts: row[EventColumns.attempts],
                                    firstAttemptAt: (row[EventColumns.firstAttemptAt] as Double?).map(Date.init(timeIntervalSince1970:)),
                                    lastAttemptAt: (row[EventColumns.lastAttemptAt] as Double?).map(Date.init(timeIntervalSince1970:)),
                                    warning: row[EventColumns.warning])
            let pk: Int64 = row[ListingColumns.batchPK]
            if let c = current, c.pk == pk {
                current = (pk, FailedBatch(device: c.batch.device, id: c.batch.id, user: c.batch.user, license: c.batch.license,
                                           receivedAt: c.batch.receivedAt, events: c.batch.events + [event]))
            } else {
                if let c = current { out.append(c.batch) }
                current = (pk, FailedBatch(device: row[ListingColumns.device], id: row[BatchColumns.batchID], user: row[ListingColumns.user],
                                           license: row[BatchColumns.license],
                                           receivedAt: Date(timeIntervalSince1970: row[BatchColumns.receivedAt]), events: [event]))
            }
        }
        if let c = current { out.append(c.batch) }
        return out
    }

    /// Puts failed (and with `includeHeld`, held) events back in the upload queue; uploaded events are never touched.
    /// With `dryRun` nothing changes. Every real replay is written to the audit table.
    public func replay(_ filter: FailureFilter, dryRun: Bool, actor: String, now: Date = Date()) throws -> [FailedBatch] {
        try pool.write { db in
            let selected = try Store.failureRows(db, filter)
            guard !dryRun, !selected.isEmpty else { return selected }
            // Prepared once with placeholders (the literal names only tables and columns), run for each event.
            typealias E = EventColumns
            let statement = try db.cachedStatement(literal: """
                UPDATE \(EventTable.self) SET \(E.state) = ?, \(E.message) = NULL, \(E.heldCode) = NULL, \(E.nextAttemptAt) = NULL,
                  \(E.updatedAt) = ?,
                  -- A tech who replays an undecided write has checked Metrc: it is sent, not read back again.
                  \(E.unknownSince) = CASE WHEN \(E.heldCode) = '\(sql: HoldCode.readBackUndecided.rawValue)' THEN NULL ELSE \(E.unknownSince) END
                WHERE \(E.batchID) = (\(literal: Store.batchPKQuery))
                  AND \(E.seq) = ? AND \(E.state) IN (?, ?)
                """)
            var count = 0
            for batch in selected {
                for event in batch.events {
                    try statement.execute(arguments: [EventState.queued, now.timeIntervalSince1970, batch.device, batch.id, event.seq,
                                                      EventState.failed, EventState.held])
                    count += db.changesCount
                }
                try Store.audit(db, actor: actor, action: .replay, subject: "\(batch.device):\(batch.id)",
                                detail: "seq \(batch.events.map { String($0.seq) }.joined(separator: ",")) requeued")
            }
            return selected
        }
    }
}
