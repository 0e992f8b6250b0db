/// What an audit row records. The raw value is what the audit table and its hash chain hold: never change one.
public struct AuditAction: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let daemonStart = AuditAction(rawValue: "daemon.start")
    public static let daemonReload = AuditAction(rawValue: "daemon.reload")
    public static let deviceAdd = AuditAction(rawValue: "device.add")
    public static let deviceDisable = AuditAction(rawValue: "device.disable")
    public static let userAdd = AuditAction(rawValue: "user.add")
    public static let userDisable = AuditAction(rawValue: "user.disable")
    public static let userEnable = AuditAction(rawValue: "user.enable")
    public static let userSetPIN = AuditAction(rawValue: "user.set-pin")
    public static let loginTicket = AuditAction(rawValue: "login.ticket")
    public static let loginLocked = AuditAction(rawValue: "login.locked")
    public static let keySet = AuditAction(rawValue: "key.set")
    public static let keyClear = AuditAction(rawValue: "key.clear")
    public static let keyRefused = AuditAction(rawValue: "key.refused")
    public static let keyRejected = AuditAction(rawValue: "key.rejected")
    public static let uploadsPause = AuditAction(rawValue: "uploads.pause")
    public static let uploadsResume = AuditAction(rawValue: "uploads.resume")
    public static let replay = AuditAction(rawValue: "replay")
    public static let reviewApprove = AuditAction(rawValue: "review.approve")
    public static let reviewReject = AuditAction(rawValue: "review.reject")
    public static let storeBackup = AuditAction(rawValue: "store.backup")
    public static let storeRestore = AuditAction(rawValue: "store.restore")
    /// A retention archive written: subject its file name, detail its SHA-256, month, part and counts (`ArchiveDetail`).
    public static let storeArchive = AuditAction(rawValue: "store.archive")
    /// The Default key's status changed (`default-key.ok`, `default-key.rejected`, ...).
    public static func defaultKey(_ status: KeyStatus) -> AuditAction { AuditAction(rawValue: "default-key.\(status.rawValue)") }
}
