import Foundation
import GRDB
import OutlawProtocol

extension Store {
    /// Registers a device and returns its token, which is stored only as a hash and never shown again.
    public func addDevice(name: String, actor: String) throws -> String {
        guard ClientMessage.isValidDeviceName(name) else {
            throw StoreError("device name must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
        }
        let token = Secrets.newDeviceToken()
        try pool.write { db in
            if try Store.deviceRow(db, named: name) != nil {
                throw StoreError("device \(name) already exists")
            }
            try db.execute(literal: """
                INSERT INTO \(DeviceTable.self) (\(DeviceColumns.name), \(DeviceColumns.tokenHash), \(DeviceColumns.createdAt))
                VALUES (\(name), \(Secrets.tokenHash(token)), \(Date().timeIntervalSince1970))
                """)
            try Store.audit(db, actor: actor, action: .deviceAdd, subject: name)
        }
        return token
    }

    public func devices() throws -> [Device] {
        try pool.read { db in
            try Row.fetchAll(db, SQLRequest<Row>(literal: "SELECT * FROM \(DeviceTable.self) ORDER BY \(DeviceColumns.name)")).map(Store.device)
        }
    }

    public func disableDevice(name: String, actor: String) throws {
        try pool.write { db in
            try db.execute(literal: "UPDATE \(DeviceTable.self) SET \(DeviceColumns.active) = 0 WHERE \(DeviceColumns.name) = \(name)")
            guard db.changesCount == 1 else { throw StoreError("no device named \(name)") }
            if let row = try Store.deviceRow(db, named: name) {
                try Store.endTickets(db, deviceID: row[DeviceColumns.id], why: .deviceDisabled)
            }
            try Store.audit(db, actor: actor, action: .deviceDisable, subject: name)
        }
    }

    /// The device, when the name is known, active and the token matches; nil in every other case alike.
    public func authenticateDevice(name: String, token: String) async throws -> Device? {
        let hash = Secrets.tokenHash(token)
        return try await writeOffThePool { db in
            guard let row = try Store.deviceRow(db, named: name) else {
                return nil
            }
            let stored: Data = row[DeviceColumns.tokenHash]
            guard Secrets.constantTimeEqual(stored, hash), row[DeviceColumns.active] as Bool else { return nil }
            try db.execute(literal: """
                UPDATE \(DeviceTable.self) SET \(DeviceColumns.lastSeenAt) = \(Date().timeIntervalSince1970)
                WHERE \(DeviceColumns.id) = \(row[DeviceColumns.id] as Int64)
                """)
            return Store.device(row)
        }
    }

    static func deviceRow(_ db: Database, named name: String) throws -> Row? {
        try Row.fetchOne(db, SQLRequest<Row>(literal: "SELECT * FROM \(DeviceTable.self) WHERE \(DeviceColumns.name) = \(name)"))
    }

    static func device(_ row: Row) -> Device {
        Device(id: row[DeviceColumns.id], name: row[DeviceColumns.name], active: row[DeviceColumns.active],
               createdAt: Date(timeIntervalSince1970: row[DeviceColumns.createdAt]),
               lastSeenAt: (row[DeviceColumns.lastSeenAt] as Double?).map(Date.init(timeIntervalSince1970:)))
    }
}
