import Foundation
import GRDB
import OutlawProtocol

/// A login ticket as the device gets it: the token once, and the span of collection times it covers.
public struct LoginTicket: Sendable, Equatable {
    public let token: String
    public let issuedAt: Date
    public let expiresAt: Date
}

/// Why a ticket ends before it expires.
public enum TicketEnd: String, Sendable {
    case userDisabled = "user disabled"
    case deviceDisabled = "device disabled"
    case pinChanged = "PIN changed"
}

/// Which login proved a stored batch's user.
public struct BatchProof: Sendable, Equatable, Codable {
    /// The ticket's number, as the `login.ticket` audit row names it.
    public let ticket: Int64
    public let device: String
    public let issuedAt: Date
    public let expiresAt: Date
}

extension Store {
    /// Events collected this long before their ticket's login are still covered (the handheld's clock may be off).
    public static let ticketClockSkew: TimeInterval = 10 * 60

    /// Issues a ticket for `userID` on `deviceID`, inside the transaction that found the PIN good.
    static func issueTicket(_ db: Database, userID: Int64, deviceID: Int64, now: Date, lifetime: TimeInterval) throws -> LoginTicket {
        let token = Secrets.newDeviceToken()
        let expires = now.addingTimeInterval(lifetime)
        typealias T = LoginTicketColumns
        try db.execute(literal: """
            INSERT INTO \(LoginTicketTable.self) (\(T.hash), \(T.deviceID), \(T.userID), \(T.issuedAt), \(T.expiresAt))
            VALUES (\(Secrets.tokenHash(token)), \(deviceID), \(userID), \(now.timeIntervalSince1970), \(expires.timeIntervalSince1970))
            """)
        let ticketID = db.lastInsertedRowID
        let user = try Store.userName(db, id: userID) ?? "?"
        let device = try String.fetchOne(db, SQLRequest<String>(literal: """
            SELECT \(DeviceColumns.name) FROM \(DeviceTable.self) WHERE \(DeviceColumns.id) = \(deviceID)
            """)) ?? "?"
        // The audit names the login each batch's `ticket_id` points to; never the ticket itself.
        try Store.audit(db, actor: user, action: .loginTicket, subject: device,
                        detail: "ticket \(ticketID) covers events collected \(Timestamp.format(now.addingTimeInterval(-ticketClockSkew))) to \(Timestamp.format(expires))")
        return LoginTicket(token: token, issuedAt: now, expiresAt: expires)
    }

    /// Ends every live ticket of a user or of a device, at once.
    static func endTickets(_ db: Database, userID: Int64? = nil, deviceID: Int64? = nil, why: TicketEnd, now: Date = Date()) throws {
        typealias T = LoginTicketColumns
        let end: SQL = "UPDATE \(LoginTicketTable.self) SET \(T.endedAt) = \(now.timeIntervalSince1970), \(T.endedWhy) = \(why.rawValue)"
        if let userID {
            try db.execute(literal: "\(literal: end) WHERE \(T.userID) = \(userID) AND \(T.endedAt) IS NULL")
        }
        if let deviceID {
            try db.execute(literal: "\(literal: end) WHERE \(T.deviceID) = \(deviceID) AND \(T.endedAt) IS NULL")
        }
    }

    /// The ticket that proves `incoming`'s user for every event, or why not: `login_required` with the seqs no
    /// live ticket of this user on this device covers (all of them when the ticket is missing, forged, another
    /// user's or device's, or ended).
    static func proveUser(_ incoming: IncomingBatch, userID: Int64, db: Database) throws -> Result<Int64?, BatchRejection> {
        let batch = incoming.batch
        guard let hash = incoming.ticketHash else {
            guard incoming.requireTicket else { return .success(nil) }
            return .failure(Store.loginRequired(batch, batch.events.map(\.seq), "the batch carries no login ticket of \(batch.user)"))
        }
        let row = try Row.fetchOne(db, SQLRequest<Row>(literal: """
            SELECT \(LoginTicketColumns.id), \(LoginTicketColumns.deviceID), \(LoginTicketColumns.userID), \(LoginTicketColumns.issuedAt),
              \(LoginTicketColumns.expiresAt), \(LoginTicketColumns.endedAt)
            FROM \(LoginTicketTable.self) WHERE \(LoginTicketColumns.hash) = \(hash)
            """, cached: true))
        guard let row, row[LoginTicketColumns.deviceID] as Int64 == incoming.deviceID, row[LoginTicketColumns.userID] as Int64 == userID,
              row[LoginTicketColumns.endedAt] as Double? == nil
        else {
            // One answer for unknown, another's and ended tickets: nothing to learn by probing.
            return .failure(Store.loginRequired(batch, batch.events.map(\.seq),
                                                "the ticket is not a live login of \(batch.user) on this device; log in again"))
        }
        let from = (row[LoginTicketColumns.issuedAt] as Double) - ticketClockSkew
        let until = row[LoginTicketColumns.expiresAt] as Double
        let uncovered = batch.events.filter { !(from...until).contains($0.at.date.timeIntervalSince1970) }.map(\.seq)
        guard uncovered.isEmpty else {
            return .failure(Store.loginRequired(batch, uncovered, "\(uncovered.count) event\(uncovered.count == 1 ? " was" : "s were") collected outside the ticket's login span; log in again"))
        }
        return .success(row[LoginTicketColumns.id] as Int64)
    }

    static func loginRequired(_ batch: ValidatedBatch, _ seqs: [Int], _ message: String) -> BatchRejection {
        BatchRejection(.loginRequired, message, errors: seqs.map { EventError(seq: $0, field: "ticket", message: "not covered by a login of \(batch.user) on this device") })
    }

    /// Which login proved a batch's user, when one did (nil: taken without a ticket, while none was required).
    public func proof(device: String, batchID: String) throws -> BatchProof? {
        try pool.read { db in
            typealias T = LoginTicketColumns
            return try Row.fetchOne(db, SQLRequest<Row>(literal: """
                SELECT t.\(T.id), td.\(DeviceColumns.name), t.\(T.issuedAt), t.\(T.expiresAt)
                FROM \(BatchTable.self) b JOIN \(DeviceTable.self) d ON d.\(DeviceColumns.id) = b.\(BatchColumns.deviceID)
                JOIN \(LoginTicketTable.self) t ON t.\(T.id) = b.\(BatchColumns.ticketID)
                JOIN \(DeviceTable.self) td ON td.\(DeviceColumns.id) = t.\(T.deviceID)
                WHERE d.\(DeviceColumns.name) = \(device) AND b.\(BatchColumns.batchID) = \(batchID)
                """)).map {
                BatchProof(ticket: $0[0], device: $0[1], issuedAt: Date(timeIntervalSince1970: $0[2]),
                           expiresAt: Date(timeIntervalSince1970: $0[3]))
            }
        }
    }
}
