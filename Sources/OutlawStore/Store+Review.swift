import Foundation
import GRDB
import OutlawProtocol

/// Which uploadable events wait for a person's review (`[review]`): those of the listed types, and those
/// collected by the listed users (either is enough). Scans are never reviewed: they never reach Metrc.
public struct ReviewRule: Sendable, Equatable {
    public var eventTypes: Set<EventType>
    public var users: Set<String>

    public init(eventTypes: Set<EventType> = [], users: Set<String> = []) {
        self.eventTypes = eventTypes
        self.users = users
    }

    /// Nothing is reviewed.
    public static let none = ReviewRule()

    public var isEmpty: Bool { eventTypes.isEmpty && users.isEmpty }

    /// Why an event of this type collected by this user waits for review, or nil when it does not.
    public func reason(type: EventType, user: String) -> String? {
        guard type.isUploaded else { return nil }
        if eventTypes.contains(type) { return "waits for review: \(type.rawValue) events are reviewed" }
        if users.contains(user) { return "waits for review: \(user)'s events are reviewed" }
        return nil
    }

    public func applies(type: EventType, user: String) -> Bool { reason(type: type, user: user) != nil }
}

/// A person's decision on events in review.
public enum ReviewDecision: Sendable, Equatable {
    /// Back to `queued`, in the place (id) the event always had in the order per tag.
    case approve
    /// `rejected`, never sent to Metrc; the reason is kept on the event and in the audit table.
    case reject(reason: String)
}

/// One event waiting for review.
public struct ReviewEvent: Sendable, Equatable, Codable {
    public let seq: Int
    public let type: String
    public let tag: String
    public let at: String
    /// Why it waits (which rule named it).
    public let message: String?
}

/// A batch with events in review, as `outlawctl review list` shows it.
public struct ReviewBatch: Sendable, Equatable, Codable {
    public let device: String
    public let id: String
    /// Who collected the events.
    public let user: String
    public let license: String
    /// Waiting since: when the batch was stored.
    public let receivedAt: Date
    public let events: [ReviewEvent]
}

extension Store {
    /// Batches with events in review, oldest first, with those events in `seq` order.
    public func reviewList() throws -> [ReviewBatch] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT b.\(BatchColumns.id) AS \(ListingColumns.batchPK), d.\(DeviceColumns.name) AS \(ListingColumns.device),
                       b.\(BatchColumns.batchID), u.\(UserColumns.name) AS \(ListingColumns.user), b.\(BatchColumns.license),
                       b.\(BatchColumns.receivedAt), e.\(EventColumns.seq), e.\(EventColumns.type), e.\(EventColumns.tag), e.\(EventColumns.at),
                       e.\(EventColumns.message)
                FROM \(EventTable.self) e JOIN \(BatchTable.self) b ON b.\(BatchColumns.id) = e.\(EventColumns.batchID)
                  JOIN \(DeviceTable.self) d ON d.\(DeviceColumns.id) = b.\(BatchColumns.deviceID)
                  JOIN \(UserTable.self) u ON u.\(UserColumns.id) = e.\(EventColumns.userID)
                WHERE e.\(EventColumns.state) = \(EventState.review)
                ORDER BY b.\(BatchColumns.id), e.\(EventColumns.seq)
                """))
            var out: [(pk: Int64, batch: ReviewBatch)] = []
            for row in rows {
                let event = ReviewEvent(seq: row[EventColumns.seq], type: row[EventColumns.type], tag: row[EventColumns.tag],
                                        at: row[EventColumns.at], message: row[EventColumns.message])
                let pk: Int64 = row[ListingColumns.batchPK]
                if let last = out.last, last.pk == pk {
                    let b = last.batch
                    out[out.count - 1].batch = ReviewBatch(device: b.device, id: b.id, user: b.user, license: b.license,
                                                           receivedAt: b.receivedAt, events: b.events + [event])
                } else {
                    out.append((pk, ReviewBatch(device: row[ListingColumns.device], id: row[BatchColumns.batchID], user: row[ListingColumns.user],
                                                license: row[BatchColumns.license],
                                                receivedAt: Date(timeIntervalSince1970: row[BatchColumns.receivedAt]), events: [event])))
                }
            }
            return out.map(\.batch)
        }
    }

    /// Approves or rejects one batch's events in review (all of them, or only `seqs`), in one transaction with
    /// its audit row. Refuses, changing nothing, when the batch does not exist, a seq is not in the batch or not
    /// in review, or nothing of the batch is in review. Returns the seqs decided.
    @discardableResult
    public func decideReview(device: String, batch: String, seqs: [Int]? = nil, decision: ReviewDecision, actor: String,
                             now: Date = Date()) throws -> [Int]
    {
        if case .reject(let reason) = decision, reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw StoreError("a rejection needs a reason")
        }
        return try pool.write { db in
            guard let pk = try Store.batchPK(db, device: device, batchID: batch)
            else { throw StoreError("no batch \(batch) from device \(device)") }
            let states = try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT \(EventColumns.seq), \(EventColumns.state) FROM \(EventTable.self) WHERE \(EventColumns.batchID) = \(pk)
                """)).map { ($0[EventColumns.seq] as Int, $0[EventColumns.state] as EventState) })
            let chosen: [Int]
            if let seqs {
                let wanted = Array(Set(seqs)).sorted()
                if let missing = wanted.first(where: { states[$0] == nil }) {
                    throw StoreError("\(device):\(batch) has no event seq \(missing)")
                }
                let notInReview = wanted.filter { states[$0] != .review }
                if !notInReview.isEmpty {
                    let what = notInReview.map { "seq \($0) is \(states[$0]?.rawValue ?? "?")" }.joined(separator: ", ")
                    throw StoreError("\(device):\(batch): \(what), not in review; nothing changed")
                }
                chosen = wanted
            } else {
                chosen = states.filter { $0.value == .review }.keys.sorted()
                if chosen.isEmpty { throw StoreError("\(device):\(batch) has no events in review") }
            }
            let t = now.timeIntervalSince1970
            let statement: Statement
            let arguments: StatementArguments
            let action: AuditAction
            let detail: String
            let list = chosen.map(String.init).joined(separator: ",")
            // Prepared once with placeholders (the literals name only columns), run for each seq.
            typealias E = EventColumns
            switch decision {
            case .approve:
                statement = try db.cachedStatement(literal: """
                    UPDATE \(EventTable.self) SET \(E.state) = ?, \(E.message) = NULL, \(E.nextAttemptAt) = NULL, \(E.updatedAt) = ?
                    WHERE \(E.batchID) = ? AND \(E.seq) = ? AND \(E.state) = ?
                    """)
                arguments = [EventState.queued, t, pk]
                action = .reviewApprove
                detail = "seq \(list) approved"
            case .reject(let reason):
                statement = try db.cachedStatement(literal: """
                    UPDATE \(EventTable.self) SET \(E.state) = ?, \(E.message) = ?, \(E.nextAttemptAt) = NULL, \(E.updatedAt) = ?
                    WHERE \(E.batchID) = ? AND \(E.seq) = ? AND \(E.state) = ?
                    """)
                arguments = [EventState.rejected, "rejected in review by \(actor): \(reason)", t, pk]
                action = .reviewReject
                detail = "seq \(list) rejected: \(reason)"
            }
            for seq in chosen {
                try statement.execute(arguments: arguments + [seq, EventState.review])
            }
            try Store.audit(db, actor: actor, action: action, subject: "\(device):\(batch)", detail: detail)
            return chosen
        }
    }
}
