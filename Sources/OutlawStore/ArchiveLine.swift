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

    /// The lines of every event of these batches (their primary keys), batch by batch in key order, seq by seq.
    static func lines(_ db: Database, batchPKs: [Int64]) throws -> [String] {
        guard !batchPKs.isEmpty else { return [] }
        let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
            SELECT e.id, e.seq, e.type, e.tag, e.at, e.metrc_date, e.fields, e.license, e.state, e.message, e.warning,
                   e.metrc_id, e.key_kind, e.key_reason, e.attempts, e.first_attempt_at, e.last_attempt_at, e.updated_at,
                   b.id AS batch_pk, b.batch_id AS batch_name, b.license AS batch_license, b.content_hash, b.event_count,
                   b.received_at, b.session, d.name AS device_name, u.name AS collector,
                   t.id AS ticket_id, t.issued_at AS ticket_issued_at, t.expires_at AS ticket_expires_at,
                   a.id AS attempt_id, a.action AS attempt_action, a.started_at AS attempt_started, a.finished_at AS attempt_finished,
                   a.outcome AS attempt_outcome, a.http_status AS attempt_http_status, a.key_user AS attempt_key_user
            FROM events e JOIN batches b ON b.id = e.batch_id JOIN devices d ON d.id = b.device_id JOIN users u ON u.id = b.user_id
            LEFT JOIN login_tickets t ON t.id = b.ticket_id LEFT JOIN upload_attempts a ON a.id = e.attempt_id
            WHERE e.batch_id IN \(batchPKs)
            ORDER BY e.batch_id, e.seq
            """))
        var decisions: [Int64: JSONValue] = [:]
        var lines: [String] = []
        lines.reserveCapacity(rows.count)
        for row in rows {
            let batchPK: Int64 = row["batch_pk"]
            let device: String = row["device_name"]
            let batchName: String = row["batch_name"]
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
        let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
            SELECT id, at, actor, action, detail FROM audit WHERE action IN \(actions) AND subject = \(subject) ORDER BY id
            """))
        return .array(rows.map { row in
            .object(["audit_id": number(row["id"]), "at": time(row["at"]), "actor": text(row["actor"]), "action": text(row["action"]),
                     "detail": text(row["detail"])])
        })
    }

    static func line(_ row: Row, decisions: JSONValue) -> JSONValue {
        let state: String = row["state"]
        let fields = (row["fields"] as String?).flatMap { JSONValue.parse(Array($0.utf8)) } ?? .null
        var ticket: JSONValue = .null
        if let id: Int64 = row["ticket_id"] {
            ticket = .object(["id": .number(Double(id)), "issued_at": time(row["ticket_issued_at"]), "expires_at": time(row["ticket_expires_at"])])
        }
        let hash: Data = row["content_hash"]
        let batch: JSONValue = .object([
            "device": text(row["device_name"]), "id": text(row["batch_name"]), "user": text(row["collector"]),
            "license": text(row["batch_license"]), "received_at": time(row["received_at"]), "events": number(row["event_count"]),
            "content_sha256": .string(hash.map { String(format: "%02x", $0) }.joined()), "session": text(row["session"]), "ticket": ticket,
        ])
        let event: JSONValue = .object([
            "seq": number(row["seq"]), "type": text(row["type"]), "tag": text(row["tag"]), "at": text(row["at"]),
            "metrc_date": text(row["metrc_date"]), "license": text(row["license"]), "fields": fields,
        ])
        var signer: JSONValue = .null
        if let kind: String = row["key_kind"] {
            signer = .object(["key": .string(kind), "user": text(row["attempt_key_user"]), "reason": text(row["key_reason"])])
        }
        var attempt: JSONValue = .null
        if let id: Int64 = row["attempt_id"] {
            attempt = .object(["id": .number(Double(id)), "action": text(row["attempt_action"]), "started": time(row["attempt_started"]),
                               "finished": time(row["attempt_finished"]), "outcome": text(row["attempt_outcome"]),
                               "http_status": number(row["attempt_http_status"])])
        }
        return .object([
            "v": 1, "event_id": number(row["id"]), "batch": batch, "event": event, "collector": text(row["collector"]),
            "state": .string(state), "metrc_id": text(row["metrc_id"]), "message": text(row["message"]), "warning": text(row["warning"]),
            "attempts": number(row["attempts"]), "signer": signer, "last_attempt": attempt, "decisions": decisions,
            "times": .object(["received": time(row["received_at"]), "first_attempt": time(row["first_attempt_at"]),
                              "last_attempt": time(row["last_attempt_at"]), "finished": time(row["updated_at"])]),
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
