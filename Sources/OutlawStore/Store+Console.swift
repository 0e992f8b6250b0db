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
            try db.execute(sql: "UPDATE users SET active = 1 WHERE name = ?", arguments: [name])
            guard db.changesCount == 1 else { throw StoreError("no user named \(name)") }
            try Store.audit(db, actor: actor, action: .userEnable, subject: name)
        }
    }

    /// The newest `limit` batches collected by `user`, newest first (the `batches_by_user` index keeps this cheap).
    public func recentUploads(user: String, limit: Int = 5) async throws -> [RecentUpload] {
        try await readOffThePool { db in
            let batches = try Row.fetchAll(db, sql: """
                SELECT b.id, b.batch_id, d.name AS device, b.received_at FROM batches b JOIN devices d ON d.id = b.device_id
                WHERE b.user_id = (SELECT id FROM users WHERE name = ?) ORDER BY b.id DESC LIMIT ?
                """, arguments: [user, limit])
            return try batches.map { batch in
                let id: Int64 = batch["id"]
                let rows = try Row.fetchAll(db, sql: """
                    SELECT state, key_kind, COUNT(*) AS n FROM events WHERE batch_id = ? GROUP BY state, key_kind
                    """, arguments: [id])
                var states: [EventState: Int] = [:]
                var kinds: [KeyKind: Int] = [:]
                for row in rows {
                    let n: Int = row["n"]
                    if let state = EventState(rawValue: row["state"]) { states[state, default: 0] += n }
                    if let kind = (row["key_kind"] as String?).flatMap(KeyKind.init), let state = EventState(rawValue: row["state"]),
                       state == .uploaded { kinds[kind, default: 0] += n }
                }
                let message = try String.fetchOne(db, sql: """
                    SELECT message FROM events WHERE batch_id = ? AND message IS NOT NULL ORDER BY updated_at DESC LIMIT 1
                    """, arguments: [id])
                return RecentUpload(device: batch["device"], batch: batch["batch_id"], receivedAt: Date(timeIntervalSince1970: batch["received_at"]),
                                    states: EventState.allCases.compactMap { s in states[s].map { (s, $0) } },
                                    signedWith: KeyKind.allCases.compactMap { k in kinds[k].map { (k, $0) } }, lastMessage: message)
            }
        }
    }
}
