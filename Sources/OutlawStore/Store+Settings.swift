import Foundation
import GRDB

/// Small named values shared by the daemon and outlawctl: the pause switch and the daemon's last report.
extension Store {
    public func setting(_ name: String) throws -> String? {
        try pool.read { db in try Store.setting(db, name) }
    }

    static func setting(_ db: Database, _ name: String) throws -> String? {
        try String.fetchOne(db, SQLRequest<String>(literal: "SELECT \(SettingColumns.value) FROM \(SettingTable.self) WHERE \(SettingColumns.name) = \(name)"))
    }

    public func setSetting(_ name: String, _ value: String?) throws {
        try pool.write { db in try Store.setSetting(db, name, value) }
    }

    static func setSetting(_ db: Database, _ name: String, _ value: String?) throws {
        if let value {
            try db.execute(literal: "INSERT OR REPLACE INTO \(SettingTable.self) (\(SettingColumns.name), \(SettingColumns.value)) VALUES (\(name), \(value))")
        } else {
            try db.execute(literal: "DELETE FROM \(SettingTable.self) WHERE \(SettingColumns.name) = \(name)")
        }
    }

    static let uploadsPausedSetting = "uploads_paused"

    /// Whether uploads are paused by an operator (`outlawctl pause`); survives restarts.
    public func uploadsPaused() throws -> Bool {
        try setting(Store.uploadsPausedSetting) == "1"
    }

    /// Pauses or resumes uploads (kept in the store, so it survives a restart of the daemon).
    public func setUploadsPaused(_ paused: Bool, actor: String) throws {
        try pool.write { db in
            try Store.setSetting(db, Store.uploadsPausedSetting, paused ? "1" : nil)
            try Store.audit(db, actor: actor, action: paused ? .uploadsPause : .uploadsResume, subject: nil)
        }
    }
}

/// What the running daemon last reported about itself (written every few seconds).
public struct DaemonStatus: Sendable, Equatable, Codable {
    public let pid: Int32
    public let updatedAt: Date
    public let connectedDevices: Int
    /// The daemon's version (nil from a daemon older than this field).
    public let version: String?

    public init(pid: Int32, updatedAt: Date, connectedDevices: Int, version: String? = nil) {
        self.pid = pid
        self.updatedAt = updatedAt
        self.connectedDevices = connectedDevices
        self.version = version
    }
}

extension Store {
    public func recordDaemonStatus(_ status: DaemonStatus) throws {
        let data = try JSONEncoder().encode(status)
        try setSetting("daemon_status", String(decoding: data, as: UTF8.self))
    }

    /// A daemon stopping cleanly says so at once, rather than letting its last report go stale.
    public func clearDaemonStatus() throws {
        try setSetting("daemon_status", nil)
    }

    public func daemonStatus() throws -> DaemonStatus? {
        guard let text = try setting("daemon_status") else { return nil }
        return try? JSONDecoder().decode(DaemonStatus.self, from: Data(text.utf8))
    }
}
