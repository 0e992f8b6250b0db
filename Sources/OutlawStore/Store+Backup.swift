import Foundation
import GRDB

/// What a checked backup copy of the store holds: enough to tell one copy from another and to trust it.
public struct BackupReport: Sendable, Equatable {
    public let path: String
    public let bytes: Int64
    /// The newest audit row of the copy (its chain verified from the first row).
    public let auditHead: AuditHead?
    public let auditRows: Int
    /// The last schema migration the copy has; `current` when it is this build's.
    public let schema: String
    public let current: Bool
    /// How long taking the copy took (0 for a copy only checked).
    public let seconds: Double
}

extension Store {
    /// Copies the live store to `destination` while it runs (SQLite's backup API through GRDB, from one read
    /// snapshot: ingest goes on), as one self-contained file (no -wal beside it) written under a temporary name,
    /// flushed, then renamed; then checks the copy (`verifyCopy`). Refuses a destination that exists, and a store
    /// that holds Metrc keys in clear (a copy never does: sealed keys stay sealed, and the store key is not in it).
    public func backup(to destination: String) throws -> BackupReport {
        let started = ContinuousClock.now
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw StoreError("\(destination) exists already: a backup never replaces a file")
        }
        let plain = try pool.read { db in
            try String.fetchAll(db, SQLRequest<String>(literal: "SELECT \(UserKeyColumns.key) FROM \(UserKeyTable.self)"))
                .filter { !KeySeal.isSealed($0) }.count
        }
        guard plain == 0 else {
            throw StoreError("the store holds \(plain) personal Metrc key(s) in clear (store.allow_unsealed_keys): give outlawd a store key "
                + "(it seals them at its next upload pass), then back up; a backup never holds a key in clear")
        }
        let partial = destination + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        do {
            let folder = URL(fileURLWithPath: destination).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try Store.makeOwnerOnly(partial)
            let takenAt = Date()
            do {
                let copy = try DatabaseQueue(path: partial, configuration: Store.copyConfiguration)
                // In steps of 1 MiB, each flushed before the next: the disk never holds a whole copy's worth of dirty
                // pages that a commit's fsync would wait behind (the paced acks' p99 during back-to-back copies of a 74
                // MiB store, 5.8 ms without them: 55 ms with one flush at the end, 15 ms with the flushes). No rest
                // between steps: the copy's thread only runs on an idle core, and the longer this snapshot is held, the
                // more log the checkpointer copies at once when it ends (1.3-1.9x the paced p99 without rests, 1.7-1.9x
                // with half a step's rest, 1.8-2.2x with a whole step's).
                let flush = open(partial, O_RDONLY | O_CLOEXEC)
                defer { if flush >= 0 { close(flush) } }
                try pool.backup(to: copy, pagesPerStep: Store.backupPagesPerStep) { _ in
                    if flush >= 0 { _ = fdatasync(flush) }
                }
                try copy.close()
            }
            // The copied header says WAL, the live store's mode: a rollback-journal file again, so the copy is the one
            // file (what is copied off the box is complete), and opening it makes no -wal or -shm beside it.
            try Store.setRollbackJournalHeader(partial)
            do {
                // What a restore of this copy counts as possibly sent: whatever Metrc may have applied since this instant.
                let copy = try DatabaseQueue(path: partial, configuration: Store.copyConfiguration)
                try copy.write { db in try Store.setSetting(db, Store.backupTakenAtSetting, Store.instantText(takenAt.timeIntervalSince1970)) }
                try copy.close()
            }
            try Store.flush(partial)
            guard rename(partial, destination) == 0 else {
                throw StoreError("cannot rename \(partial) to \(destination): \(String(cString: strerror(errno)))")
            }
            try Store.flush(folder)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        let report = try Store.verifyCopy(at: destination)
        return BackupReport(path: report.path, bytes: report.bytes, auditHead: report.auditHead, auditRows: report.auditRows,
                            schema: report.schema, current: report.current,
                            seconds: Store.seconds(ContinuousClock.now - started))
    }

    /// Checks a copy without changing it: SQLite's `integrity_check`, the audit chain from its first row, and a
    /// schema this build knows (older is fine: outlawd upgrades it at its next start). Each refusal says why.
    public static func verifyCopy(at path: String) throws -> BackupReport {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw StoreError("\(path): no such file") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw StoreError("\(path) is not a plain file") }
        guard info.st_size >= 512 else { throw StoreError("\(path) is not an outlawd store (\(info.st_size) bytes: truncated?)") }
        for suffix in ["-wal", "-journal"] where FileManager.default.fileExists(atPath: path + suffix) {
            throw StoreError("\(path)\(suffix) lies beside the copy: it is a live store or an unfinished copy, not a backup")
        }
        // A live store's file says WAL in its header: opening it would make a -wal and a -shm beside it.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        let header = fd >= 0 ? sqliteHeader(fd) : nil
        if fd >= 0 { close(fd) }
        if let header, header[18] == 2 {
            throw StoreError("\(path) is in WAL mode: a live store's file, not a backup (outlawctl backup makes one)")
        }
        var configuration = Configuration()
        configuration.readonly = true
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_NOTADB {
            throw StoreError("\(path) is not an outlawd store (not an SQLite database)")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT {
            throw StoreError("\(path) is corrupted (SQLite: \(error.message ?? "database disk image is malformed"); truncated?)")
        } catch {
            throw StoreError("\(path) cannot be opened as an SQLite database: \(Store.describe(error))")
        }
        defer { try? queue.close() }
        return try queue.read { db in
            let problems: [String]
            do {
                problems = try String.fetchAll(db, sql: "PRAGMA integrity_check(20)")
            } catch {
                throw StoreError("\(path) is not an outlawd store (SQLite: \(Store.describe(error)); truncated or corrupted?)")
            }
            guard problems == ["ok"] else {
                throw StoreError("\(path) is corrupted; SQLite's integrity check says: " + problems.prefix(5).joined(separator: "; "))
            }
            guard try db.tableExists("audit"), try db.tableExists("grdb_migrations") else {
                throw StoreError("\(path) is an SQLite database but not an outlawd store (no audit or migrations table)")
            }
            if try Store.migrator.hasBeenSuperseded(db) {
                throw StoreError("\(path) has a newer schema than this outlawctl knows: restore it with the outlawctl of the outlawd that made it")
            }
            let applied = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
            let known = Store.migrator.migrations
            guard let schema = known.last(where: { applied.contains($0) }) else {
                throw StoreError("\(path) has no schema outlawd knows")
            }
            let audit = try Store.verifyAudit(db)
            if let bad = audit.firstBad {
                throw StoreError("\(path): the audit chain breaks at row \(bad.id): \(bad.problem)")
            }
            return BackupReport(path: path, bytes: Int64(info.st_size), auditHead: audit.head, auditRows: audit.rows, schema: schema,
                                current: schema == known.last, seconds: 0)
        }
    }

    /// Replaces the store at `path` with the copy at `backup`, which is checked first; the replaced store (and its
    /// -wal) is kept aside as `<path>.replaced-<time>`, which is returned. The caller holds the store's lock
    /// (`StoreLock.exclusive`): no outlawd runs meanwhile.
    ///
    /// The copy cannot know what was uploaded after it was taken: every event it has not finished is marked as
    /// possibly sent (read back at Metrc before any resend, as after a crash mid-request), so an adjustment, waste
    /// or manicure is never applied twice. Batches acked after the backup are not in it, so their resends are taken.
    public static func restore(_ backup: String, over path: String, actor: String, now: Date = Date()) throws -> (BackupReport, String?) {
        let report = try verifyCopy(at: backup)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let incoming = path + ".restoring"
        try? FileManager.default.removeItem(atPath: incoming)
        // The new store belongs to whoever owned the old one (outlawd's user), whoever runs this (root).
        var owner = stat()
        let hadStore = lstat(path, &owner) == 0
        do {
            try Store.copyFile(backup, to: incoming)
            if hadStore { _ = chown(incoming, owner.st_uid, owner.st_gid) }
            let queue = try DatabaseQueue(path: incoming)
            try queue.write { db in
                // Metrc may have applied anything unfinished in the copy since it was taken (a copy by other means: since
                // the restore, which then relies on the read-back's allowance for clocks).
                let since = try Double.fetchOne(db, SQLRequest<Double>(literal: """
                    SELECT \(SettingColumns.value) FROM \(SettingTable.self) WHERE \(SettingColumns.name) = \(Store.backupTakenAtSetting)
                    """)) ?? now.timeIntervalSince1970
                try db.execute(literal: """
                    UPDATE \(EventTable.self)
                    SET \(EventColumns.unknownSince) = COALESCE(\(EventColumns.unknownSince), \(EventColumns.lastAttemptAt), \(since))
                    WHERE \(EventColumns.state) NOT IN \([EventState.uploaded, EventState.recorded, EventState.rejected])
                    """)
                let marked = db.changesCount
                try Store.setSetting(db, Store.restoredAtSetting, Store.instantText(now.timeIntervalSince1970))
                try Store.setSetting(db, Store.possiblySentSinceSetting, Store.instantText(since))
                try Store.audit(db, actor: actor, action: .storeRestore, subject: backup,
                                detail: "audit head of the copy: \(report.auditHead.map { "\($0.id) \($0.hex)" } ?? "none"); "
                                    + "\(marked) unfinished events marked possibly sent (read back before any resend)")
            }
            try queue.close()
            try Store.flush(incoming)
        } catch {
            try? FileManager.default.removeItem(atPath: incoming)
            throw error
        }
        var aside: String?
        if hadStore {
            let stamp = ISO8601DateFormatter().string(from: now).replacingOccurrences(of: ":", with: "")
            let kept = path + ".replaced-" + stamp
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                guard rename(path + suffix, kept + suffix) == 0 else {
                    throw StoreError("cannot move \(path + suffix) aside: \(String(cString: strerror(errno))); nothing was replaced")
                }
            }
            aside = kept
        }
        // The lock file too, when this restore made it (as root, before outlawd ever ran): outlawd must open it.
        if hadStore { _ = chown(path + ".lock", owner.st_uid, owner.st_gid) }
        guard rename(incoming, path) == 0 else {
            throw StoreError("cannot put the copy in place at \(path): \(String(cString: strerror(errno))); the old store is at \(aside ?? "-")")
        }
        try Store.flush(folder)
        return (report, aside)
    }

    /// The copy's connections: no journal and no syncs of SQLite's own. The copy is a new file under a temporary name
    /// that nothing else opens, flushed whole before it is renamed; a crash before that leaves only a `.partial`,
    /// which the next backup replaces. Each journal file and fsync at the copy's end was a commit of the file system's
    /// journal that the daemon's own commits waited behind.
    static var copyConfiguration: Configuration {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = OFF")
            try db.execute(sql: "PRAGMA synchronous = OFF")
        }
        return configuration
    }

    /// Sets a database file's header to the rollback journal (bytes 18 and 19, the file format's write and read
    /// versions: 1 legacy, 2 WAL), what `PRAGMA journal_mode = DELETE` writes, without opening the file in WAL mode
    /// first (which makes a -wal and a -shm, and syncs them, only to remove them).
    static func setRollbackJournalHeader(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw StoreError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard let header = sqliteHeader(fd) else { throw StoreError("\(path) is not an SQLite database") }
        guard header[18] != 1 || header[19] != 1 else { return }
        let legacy: [UInt8] = [1, 1]
        guard legacy.withUnsafeBytes({ pwrite(fd, $0.baseAddress, 2, 18) }) == 2 else {
            throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The first 20 bytes of an SQLite database (its magic string, the page size, and at 18 and 19 the file format's
    /// write and read versions: 1 legacy, 2 WAL); nil for a shorter file or anything else.
    static func sqliteHeader(_ fd: Int32) -> [UInt8]? {
        var header = [UInt8](repeating: 0, count: 20)
        guard header.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 20, 0) }) == 20,
              header.starts(with: Array("SQLite format 3\0".utf8))
        else { return nil }
        return header
    }

    /// Deletes a file a few MiB at a time: truncated from its end in steps of `removalStep`, each flushed and followed
    /// by as long a rest, then unlinked. One unlink of a whole copy frees (and, on a disk mounted with `discard`,
    /// trims) all of its blocks in one commit of the file system's journal, which the daemon's own commits wait
    /// behind. A file with other hard links is only unlinked; one already gone counts as deleted.
    public static func removeGradually(_ path: String) throws {
        // Non-blocking: a FIFO under a backup's name is unlinked, not waited on.
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        if fd >= 0 {
            defer { close(fd) }
            var info = stat()
            // Truncating shortens every name of the file: a copy hard-linked elsewhere (a snapshot of the backup
            // folder, say) is only unlinked here.
            if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_nlink == 1 {
                var size = info.st_size
                while size > removalStep {
                    let started = ContinuousClock.now
                    size -= removalStep
                    guard ftruncate(fd, size) == 0, fdatasync(fd) == 0 else { break }
                    usleep(UInt32(min(Store.seconds(ContinuousClock.now - started), 0.5) * 1_000_000))
                }
            }
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw StoreError("cannot delete \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// What `removeGradually` frees at a time.
    static let removalStep: off_t = 8 << 20

    /// fsync of a file or folder: a copy is on the disk before it is renamed or reported.
    static func flush(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot open \(path) to flush it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError("cannot flush \(path): \(String(cString: strerror(errno)))") }
    }

    /// Copies a file byte for byte into a new file only its owner can read.
    static func copyFile(_ source: String, to destination: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard input >= 0 else { throw StoreError("cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard output >= 0 else { throw StoreError("cannot create \(destination): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw StoreError("cannot read \(source): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                guard w > 0 else { throw StoreError("cannot write \(destination): \(String(cString: strerror(errno)))") }
                written += w
            }
        }
    }

    /// An instant as a setting's text, to the millisecond: SQLite's reading of it back is then the same number every
    /// time it is read and written again (a full-precision text could come back an ulp away).
    static func instantText(_ seconds: Double) -> String {
        String(format: "%.3f", seconds)
    }

    /// Pages a backup step copies (4 KiB each): 1 MiB, flushed before the next.
    static let backupPagesPerStep: CInt = 256

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func describe(_ error: any Error) -> String {
        (error as? DatabaseError)?.message ?? "\(error)"
    }
}
