import ArgumentParser
import Foundation
import OutlawStore

/// `outlawctl backup PATH`: an online copy of the live store, checked, with its size and audit head.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Copy the live store to PATH while outlawd runs, then check the copy.",
        discussion: """
            The copy is one SQLite file, taken from one snapshot (ingest and uploads go on), written under a temporary \
            name and renamed once flushed; then checked: SQLite's integrity check, the audit chain, the schema. It never \
            holds a Metrc key in clear (sealed keys stay sealed; the store key is not in the store: keep it apart). \
            The live store's audit gets a store.backup row naming the copy's audit head.
            """)
    @OptionGroup var options: ConfigOptions
    @Argument(help: "Where to write the copy (must not exist).") var path: String
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let store = try options.openStore()
        let destination = absolute(path)
        // The copy on a thread at the lowest priority, so outlawd's commits take a core at once (unless `[backup]
        // idle_priority` is false: a box whose cores are never idle); the audit row from this one, since it holds the
        // store's writer, which a thread that may not run must never hold (LowPriority).
        let report = try options.load().backup.idlePriority
            ? LowPriority.runBlocking { try store.backup(to: destination) } : store.backup(to: destination)
        try store.audit(actor: operatorName(), action: .storeBackup, subject: report.path, detail: BackupCommand.detail(report))
        BackupCommand.print(report, json: json, verb: "backup written")
    }

    static func detail(_ report: BackupReport) -> String {
        "\(report.bytes) bytes; audit head \(report.auditHead.map { "\($0.id) \($0.hex)" } ?? "none"); schema \(report.schema)"
    }

    static func print(_ report: BackupReport, json: Bool, verb: String) {
        if json {
            let object: [String: Any] = [
                "path": report.path, "bytes": report.bytes, "schema": report.schema, "current_schema": report.current,
                "audit_rows": report.auditRows, "audit_head": report.auditHead.map { ["id": $0.id, "hash": $0.hex] as [String: Any] } ?? NSNull(),
                "seconds": report.seconds,
            ]
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                Swift.print(String(decoding: data, as: UTF8.self))
            }
            return
        }
        Swift.print("\(verb): \(report.path)")
        Swift.print("  size:       \(String(format: "%.1f", Double(report.bytes) / 1_048_576)) MiB (\(report.bytes) bytes)"
            + (report.seconds > 0 ? String(format: ", taken in %.2f s", report.seconds) : ""))
        Swift.print("  audit head: " + (report.auditHead.map { "row \($0.id), \($0.hex)" } ?? "no rows") + " (\(report.auditRows) rows, chain intact)")
        Swift.print("  schema:     \(report.schema)" + (report.current ? "" : " (older: outlawd upgrades it at its next start)"))
    }
}

/// `outlawctl verify-backup PATH`: checks a copy without changing it.
struct VerifyBackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-backup", abstract: "Check a backup copy (integrity, audit chain, schema) without changing it.")
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The copy to check.") var path: String
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        BackupCommand.print(try Store.verifyCopy(at: absolute(path)), json: json, verb: "backup intact")
    }
}

/// `outlawctl restore PATH`: puts a checked copy in place of the store while outlawd is stopped.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Replace the store with a backup copy (outlawd must be stopped).",
        discussion: """
            Refused while outlawd runs (stop outlawd.socket and outlawd.service first, or a handheld's connection starts \
            it again). The copy is checked first; the replaced store is kept aside as STORE.replaced-TIME. The copy cannot \
            know what was uploaded after it was taken: every event it has not finished is marked as possibly sent, and \
            is read back at Metrc before any resend, so nothing is applied twice. Handhelds resend what was acked after \
            the copy was taken, and it is stored again.
            """)
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The backup copy to restore.") var path: String
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let configuration = try options.load()
        let store = configuration.store.path
        let lock = try StoreLock(storePath: store, refusal: "outlawd is running on \(store) (or another restore is): "
            + "systemctl stop outlawd.socket outlawd.service, then restore; nothing was changed")
        let (report, aside) = try withExtendedLifetime(lock) { try Store.restore(absolute(path), over: store, actor: operatorName()) }
        BackupCommand.print(report, json: json, verb: "restored from")
        if !json {
            Swift.print("  the replaced store is kept at \(aside ?? "(there was none)")")
            Swift.print("  start outlawd: systemctl start outlawd.socket outlawd.service")
        }
    }
}

/// A path as given, made absolute against the working folder (the report names the file unambiguously).
func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}
