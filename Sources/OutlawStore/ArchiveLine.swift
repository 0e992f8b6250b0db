import Foundation
import GRDB
import OutlawProtocol

/// One archived event as a line of JSON: everything the live store knew about it, so the archive stands on its own.
///
///     {"v":1,"event_id":812,
///      "batch":{"device":"HH-0042","id":"b-123","user":"jane","license":"LIC-0001","received_at":"…","events":12,
///               "content_sha256":"…","session":"…","ticket":{"id":7,"issued_at":"…","expires_at":"…"}},
///      "event":{"seq":3,"type":"plant.move","tag":"1A4…","at":"…","metrc_date":"2025-03-02","fields":{…}},
///      "collector":"jane","state":"uploaded","metrc_id":"5512","message":null,"warning":null,"attempts":1,
///      "signer":{"key":"personal","user":"jane","reason":"…"},
///      "times":{"received":"…","first_attempt":"…","last_attempt":"…","finished":"…"},
///      "last_attempt":{"id":90,"action":"…","started":"…","finished":"…","outcome":"accepted","http_status":200},
///      "decisions":[{"audit_id":55,"at":"…","action":"review.approve","actor":"sam","detail":"seq 3 approved"}]}
///
/// `decisions` are the audit rows naming the batch that changed its events' states (review, replay); they stay in
/// the audit table too. Keys are sorted, so the same rows always make the same bytes.
enum ArchiveLine {
    /// The states an event may leave the live store in. `failed` is not one: see `Store.runRetention`.
    static let archivable: [EventState] = [.uploaded, .recorded, .rejected]
    /// Audit actions that change events' states and name their batch as `DEVICE:BATCH`.
    static let decisionActions: [AuditAction] = [.replay, .reviewApprove, .reviewReject]

    /// The join's own names for the columns it takes from other tables than events (and would otherwise repeat).
    enum Alias {
        static let batchPK = Column("batch_pk")
        static let batchName = Column("batch_name")
        static let batchLicense = Column("batch_license")
        static let deviceName = Column("device_name")
        static let collector = Column("collector")
        static let ticketID = Column("ticket_id")
        static let ticketIssuedAt = Column("ticket_issued_at")
        static let ticketExpiresAt = Column("ticket_expires_at")
        static let attemptID = Column("attempt_id")
        static let attemptAction = Column("attempt_action")
        static let attemptStarted = Column("attempt_started")
        static let attemptFinished = Column("attempt_finished")
        static let attemptOutcome = Column("attempt_outcome")
        static let attemptHTTPStatus = Column("attempt_http_status")
        static let attemptKeyUser = Column("attempt_key_user")
    }

    /// The lines of every event of these batches (their primary keys), batch by batch in key order, seq by seq.
    static func lines(_ db: Database, batchPKs: [Int64]) throws -> [String] {
        guard !batchPKs.isEmpty else { return [] }
        typealias E = EventColumns
        typealias B = BatchColumns
        typealias A = UploadAttemptColumns
        typealias T = LoginTicketColumns
        let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
            SELECT e.\(E.id), e.\(E.seq), e.\(E.type), e.\(E.tag), e.\(E.at), e.\(E.metrcDate), e.\(E.fields), e.\(E.license),
                   e.\(E.state), e.\(E.message), e.\(E.warning), e.\(E.metrcID), e.\(E.keyKind), e.\(E.keyReason), e.\(E.attempts),
                   e.\(E.firstAttemptAt), e.\(E.lastAttemptAt), e.\(E.updatedAt),
                   b.\(B.id) AS \(Alias.batchPK), b.\(B.batchID) AS \(Alias.batchName), b.\(B.license) AS \(Alias.batchLicense),
                   b.\(B.contentHash), b.\(B.eventCount), b.\(B.receivedAt), b.\(B.session),
                   d.\(DeviceColumns.name) AS \(Alias.deviceName), u.\(UserColumns.name) AS \(Alias.collector),
                   t.\(T.id) AS \(Alias.ticketID), t.\(T.issuedAt) AS \(Alias.ticketIssuedAt), t.\(T.expiresAt) AS \(Alias.ticketExpiresAt),
                   a.\(A.id) AS \(Alias.attemptID), a.\(A.action) AS \(Alias.attemptAction), a.\(A.startedAt) AS \(Alias.attemptStarted),
                   a.\(A.finishedAt) AS \(Alias.attemptFinished), a.\(A.outcome) AS \(Alias.attemptOutcome),
                   a.\(A.httpStatus) AS \(Alias.attemptHTTPStatus), a.\(A.keyUser) AS \(Alias.attemptKeyUser)
            FROM \(EventTable.self) e JOIN \(BatchTable.self) b ON b.\(B.id) = e.\(E.batchID)
            JOIN \(DeviceTable.self) d ON d.\(DeviceColumns.id) = b.\(B.deviceID) JOIN \(UserTable.self) u ON u.\(UserColumns.id) = b.\(B.userID)
            LEFT JOIN \(LoginTicketTable.self) t ON t.\(T.id) = b.\(B.ticketID) LEFT JOIN \(UploadAttemptTable.self) a ON a.\(A.id) = e.\(E.attemptID)
            WHERE e.\(E.batchID) IN \(batchPKs)
            ORDER BY e.\(E.batchID), e.\(E.seq)
            """))
        var decisions: [Int64: JSONValue] = [:]
        var lines: [String] = []
        lines.reserveCapacity(rows.count)
        for row in rows {
            let batchPK: Int64 = row[Alias.batchPK]
            let device: String = row[Alias.deviceName]
            let batchName: String = row[Alias.batchName]
            if decisions[batchPK] == nil {
                decisions[batchPK] = try decisionRows(db, subject: "\(device):\(batchName)")
            }
            lines.append(line(row, decisions: decisions[batchPK] ?? .array([])).serialized(sortedKeys: true) + "\n")
        }
        return lines
    }

    /// The audit rows of review and replay decisions about one batch (the v12 partial index on `subject` finds them).
    static func decisionRows(_ db: Database, subject: String) throws -> JSONValue {
        let actions = decisionActions.map(\.rawValue)
        typealias A = AuditColumns
        let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
            SELECT \(A.id), \(A.at), \(A.actor), \(A.action), \(A.detail) FROM \(AuditTable.self)
            WHERE \(A.action) IN \(actions) AND \(A.subject) = \(subject) ORDER BY \(A.id)
            """))
        return .array(rows.map { row in
            .object(["audit_id": number(row[A.id]), "at": time(row[A.at]), "actor": text(row[A.actor]), "action": text(row[A.action]),
                     "detail": text(row[A.detail])])
        })
    }

    static func line(_ row: Row, decisions: JSONValue) -> JSONValue {
        typealias E = EventColumns
        typealias B = BatchColumns
        let state: String = row[E.state]
        let fields = (row[E.fields] as String?).flatMap { JSONValue.parse(Array($0.utf8)) } ?? .null
        var ticket: JSONValue = .null
        if let id: Int64 = row[Alias.ticketID] {
            ticket = .object(["id": .number(Double(id)), "issued_at": time(row[Alias.ticketIssuedAt]),
                              "expires_at": time(row[Alias.ticketExpiresAt])])
        }
        let hash: Data = row[B.contentHash]
        let batch: JSONValue = .object([
            "device": text(row[Alias.deviceName]), "id": text(row[Alias.batchName]), "user": text(row[Alias.collector]),
            "license": text(row[Alias.batchLicense]), "received_at": time(row[B.receivedAt]), "events": number(row[B.eventCount]),
            "content_sha256": .string(hash.map { String(format: "%02x", $0) }.joined()), "session": text(row[B.session]), "ticket": ticket,
        ])
        let event: JSONValue = .object([
            "seq": number(row[E.seq]), "type": text(row[E.type]), "tag": text(row[E.tag]), "at": text(row[E.at]),
            "metrc_date": text(row[E.metrcDate]), "license": text(row[E.license]), "fields": fields,
        ])
        var signer: JSONValue = .null
        if let kind: String = row[E.keyKind] {
            signer = .object(["key": .string(kind), "user": text(row[Alias.attemptKeyUser]), "reason": text(row[E.keyReason])])
        }
        var attempt: JSONValue = .null
        if let id: Int64 = row[Alias.attemptID] {
            attempt = .object(["id": .number(Double(id)), "action": text(row[Alias.attemptAction]), "started": time(row[Alias.attemptStarted]),
                               "finished": time(row[Alias.attemptFinished]), "outcome": text(row[Alias.attemptOutcome]),
                               "http_status": number(row[Alias.attemptHTTPStatus])])
        }
        return .object([
            "v": 1, "event_id": number(row[E.id]), "batch": batch, "event": event, "collector": text(row[Alias.collector]),
            "state": .string(state), "metrc_id": text(row[E.metrcID]), "message": text(row[E.message]), "warning": text(row[E.warning]),
            "attempts": number(row[E.attempts]), "signer": signer, "last_attempt": attempt, "decisions": decisions,
            "times": .object(["received": time(row[B.receivedAt]), "first_attempt": time(row[E.firstAttemptAt]),
                              "last_attempt": time(row[E.lastAttemptAt]), "finished": time(row[E.updatedAt])]),
        ])
    }

    static func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    static func number(_ value: Int64?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
    static func time(_ seconds: Double?) -> JSONValue { seconds.map { .string(Timestamp.format(Date(timeIntervalSince1970: $0))) } ?? .null }

    /// Which batch a line belongs to, as deletion and `outlawctl archive show` need it.
    struct Key: Hashable, Sendable {
        let device: String
        let batch: String
    }

    /// A line's batch, its content hash and event count, and the event's seq; nil for a line that is not an archive line.
    static func parse(_ bytes: ArraySlice<UInt8>) -> (key: Key, contentSHA256: String, events: Int, seq: Int)? {
        guard let value = JSONValue.parse(bytes), let batch = value["batch"], let event = value["event"],
              let device = batch["device"]?.stringValue, let id = batch["id"]?.stringValue,
              let hash = batch["content_sha256"]?.stringValue, let events = batch["events"]?.numberValue,
              let seq = event["seq"]?.numberValue
        else { return nil }
        return (Key(device: device, batch: id), hash, Int(events), Int(seq))
    }
}
