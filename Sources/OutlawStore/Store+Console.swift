import Foundation
import GRDB

/// One of a person's recent batches as the console's Settings page shows it: where its events stand and which
/// key signed the uploaded ones.
public struct RecentUpload: Sendable, Equatable {
    public let device: String
    public let batch: String
    public let receivedAt: Date
    /// Events per state (`uploaded`, `failed`, ...), in `EventState` order.
    public let states: [(EventState, Int)]
    /// How many events each kind of key signed (personal, default); unsigned events are not counted.
    public let signedWith: [(KeyKind, Int)]
    /// The last message Metrc (or the review) left on one of its events, if any.
    public let lastMessage: String?

    public static func == (a: RecentUpload, b: RecentUpload) -> Bool {
        a.device == b.device && a.batch == b.batch && a.receivedAt == b.receivedAt && a.lastMessage == b.lastMessage
            && a.states.map { "\($0.0)\($0.1)" } == b.states.map { "\($0.0)\($0.1)" }
            && a.signedWith.map { "\($0.0)\($0.1)" } == b.signedWith.map { "\($0.0)\($0.1)" }
    }
}

extension Store {
    /// Re-enables a disabled user (the console's Users page); audited.
    public func enableUser(name: String, actor: String) throws {
        try pool.write { db in
            try db.execute(literal: "UPDATE \(UserTable.self) SET \(UserColumns.active) = 1 WHERE \(UserColumns.name) = \(name)")
            guard db.changesCount == 1 else { throw StoreError("no user named \(name)") }
            try Store.audit(db, actor: actor, action: .userEnable, subject: name)
        }
    }

    /// The newest `limit` batches collected by `user`, newest first (the `batches_by_user` index keeps this cheap).
    public func recentUploads(user: String, limit: Int = 5) async throws -> [RecentUpload] {
        try await readOffThePool { db in
            typealias B = BatchColumns
            typealias E = EventColumns
            let device = Column("device")
            let count = Column("n")
            let batches = try Row.fetchAll(db, SQLRequest<Row>(literal: """
                SELECT b.\(B.id), b.\(B.batchID), d.\(DeviceColumns.name) AS \(device), b.\(B.receivedAt)
                FROM \(BatchTable.self) b JOIN \(DeviceTable.self) d ON d.\(DeviceColumns.id) = b.\(B.deviceID)
                WHERE b.\(B.userID) = (SELECT \(UserColumns.id) FROM \(UserTable.self) WHERE \(UserColumns.name) = \(user))
                ORDER BY b.\(B.id) DESC LIMIT \(limit)
                """))
            return try batches.map { batch in
                let id: Int64 = batch[B.id]
                let rows = try Row.fetchAll(db, SQLRequest<Row>(literal: """
                    SELECT \(E.state), \(E.keyKind), COUNT(*) AS \(count) FROM \(EventTable.self) WHERE \(E.batchID) = \(id)
                    GROUP BY \(E.state), \(E.keyKind)
                    """))
                var states: [EventState: Int] = [:]
                var kinds: [KeyKind: Int] = [:]
                for row in rows {
                    let n: Int = row[count]
                    guard let state = EventState(rawValue: row[E.state]) else { continue }
                    states[state, default: 0] += n
                    if state == .uploaded, let kind = (row[E.keyKind] as String?).flatMap(KeyKind.init) { kinds[kind, default: 0] += n }
                }
                let message = try String.fetchOne(db, SQLRequest<String>(literal: """
                    SELECT \(E.message) FROM \(EventTable.self) WHERE \(E.batchID) = \(id) AND \(E.message) IS NOT NULL
                    ORDER BY \(E.updatedAt) DESC LIMIT 1
                    """))
                return RecentUpload(device: batch[device], batch: batch[B.batchID], receivedAt: Date(timeIntervalSince1970: batch[B.receivedAt]),
                                    states: EventState.allCases.compactMap { s in states[s].map { (s, $0) } },
                                    signedWith: KeyKind.allCases.compactMap { k in kinds[k].map { (k, $0) } }, lastMessage: message)
            }
        }
    }
}
