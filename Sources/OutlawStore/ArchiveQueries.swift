import Foundation
import GRDB

/// One archive file checked against the audit row that vouches for it.
public struct ArchiveCheck: Sendable, Equatable, Codable {
    public let file: String
    public let month: String?
    public let part: Int?
    /// Events and batches the audit row says the file holds.
    public let events: Int?
    public let batches: Int?
    /// The file's size and SHA-256 as found (nil: not found).
    public let bytes: Int?
    public let sha256: String?
    /// The audit row and the SHA-256 it recorded.
    public let auditID: Int64?
    public let recordedSHA256: String?
    /// Why the file cannot be trusted; nil when it is intact.
    public let problem: String?

    public var intact: Bool { problem == nil }
}

/// Every archive checked, and the audit chain that vouches for them.
public struct ArchiveVerification: Sendable, Equatable {
    public let chain: AuditVerification
    public let checks: [ArchiveCheck]
    /// Files being written by a running outlawd (no audit row yet): neither good nor bad.
    public let inProgress: [String]

    public var intact: Bool { chain.intact && checks.allSatisfy(\.intact) }
}

/// An archived batch's lines, as `outlawctl archive show` prints them.
public struct ArchivedLines: Sendable, Equatable {
    public let file: String
    public let lines: [String]
}

extension Store {
    /// Which of these ids of one device's batches were archived (the `status` answer `archived`).
    public func archivedBatchIDs(deviceID: Int64, ids: [String]) async throws -> Set<String> {
        let unique = Array(Set(ids))
        guard !unique.isEmpty else { return [] }
        return try await readOffThePool { db in
            Set(try String.fetchAll(db, SQLRequest<String>(literal: """
                SELECT batch_id FROM archived_batches WHERE device_id = \(deviceID) AND batch_id IN \(unique)
                """)))
        }
    }

    /// The ingest path's check for a batch id that left the live store: the same content is a resend
    /// (`duplicate`), other content reuses the id (`id_conflict`), exactly as for a live batch.
    static func archivedBatch(_ db: Database, deviceID: Int64, batchID: String) throws -> (contentHash: Data, events: Int)? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT content_hash, event_count FROM archived_batches WHERE device_id = ? AND batch_id = ?"),
                         arguments: [deviceID, batchID]).map { ($0[ArchivedBatchColumns.contentHash], $0[ArchivedBatchColumns.eventCount]) }
    }

    /// Every archive the store recorded, by month and part.
    public func archives() throws -> [ArchiveRecord] {
        try pool.read { db in try Store.archiveRecords(db) }
    }

    /// Checks every archive in `dir` against the audit chain: each `store.archive` row's file must be there with the
    /// SHA-256 the row recorded, the chain must be intact up to that row, and every archive file in the folder must
    /// have its row. Files are read in steps (never whole in memory).
    public func verifyArchives(dir: String) throws -> ArchiveVerification {
        let (chain, rows, records) = try pool.read { db in
            (try Store.verifyAudit(db),
             try Row.fetchAll(db, sql: "SELECT id, subject, detail FROM audit WHERE action = ? ORDER BY id",
                              arguments: [AuditAction.storeArchive.rawValue]),
             try Store.archiveRecords(db))
        }
        var latest: [String: Row] = [:]
        for row in rows { if let subject: String = row[AuditColumns.subject] { latest[subject] = row } }
        var checks: [ArchiveCheck] = []
        for (file, row) in latest.sorted(by: { $0.key < $1.key }) {
            let auditID: Int64 = row[AuditColumns.id]
            let detail = (row[AuditColumns.detail] as String?).flatMap(ArchiveDetail.init)
            let name = ArchiveName(fileName: file)
            let path = dir + "/" + file
            var found: (digest: Data, bytes: Int)?
            var problem: String?
            if let broken = chain.firstBad, broken.id <= auditID {
                problem = "the audit chain is broken at \(broken), so row \(auditID) cannot vouch for it"
            } else if detail == nil {
                problem = "audit row \(auditID) does not say the file's SHA-256 (its detail cannot be read)"
            }
            if FileManager.default.fileExists(atPath: path) {
                do {
                    found = try SHA256Stream.ofFile(path)
                } catch {
                    problem = problem ?? "cannot be read: \(error)"
                }
            } else {
                problem = problem ?? "missing from \(dir) (shipped off the box and removed here? check that copy with --dir)"
            }
            if problem == nil, let found, let detail, found.digest.lowerHex != detail.sha256 {
                problem = "its SHA-256 is \(found.digest.lowerHex), but audit row \(auditID) recorded \(detail.sha256)"
                    + (found.bytes == detail.bytes ? "" : " for \(detail.bytes) bytes (it has \(found.bytes))")
                    + ": the file changed after it was written"
            }
            checks.append(ArchiveCheck(file: file, month: name?.month ?? detail?.month, part: name?.part ?? detail?.part, events: detail?.events,
                                       batches: detail?.batches, bytes: found?.bytes, sha256: found?.digest.lowerHex, auditID: auditID,
                                       recordedSHA256: detail?.sha256, problem: problem))
        }
        let writing = Set(records.filter { $0.state == ArchiveState.writing.rawValue }.map(\.file))
        var inProgress: [String] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for file in names.sorted() {
            let base = file.hasSuffix(ArchiveName.partialSuffix) ? String(file.dropLast(ArchiveName.partialSuffix.count)) : file
            guard let name = ArchiveName(fileName: base), latest[file] == nil else { continue }
            if writing.contains(base) {
                inProgress.append(file)
                continue
            }
            let found = try? SHA256Stream.ofFile(dir + "/" + file)
            checks.append(ArchiveCheck(file: file, month: name.month, part: name.part, events: nil, batches: nil, bytes: found?.bytes,
                                       sha256: found?.digest.lowerHex, auditID: nil, recordedSHA256: nil,
                                       problem: file == base ? "no audit row of this store vouches for it" : "a file a stopped run left unfinished, not an archive"))
        }
        return ArchiveVerification(chain: chain, checks: checks.sorted { $0.file < $1.file }, inProgress: inProgress)
    }

    /// The archived lines of one batch (or one of its events), read from the archive that holds it in `dir`; nil when
    /// the batch was never archived.
    public func archivedLines(device: String, batch: String, seq: Int? = nil, dir: String) throws -> ArchivedLines? {
        let file = try pool.read { db in
            try String.fetchOne(db, sql: """
                SELECT a.file FROM archived_batches x JOIN devices d ON d.id = x.device_id JOIN archives a ON a.id = x.archive_id
                WHERE d.name = ? AND x.batch_id = ?
                """, arguments: [device, batch])
        }
        guard let file else { return nil }
        let path = dir + "/" + file
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError("\(device):\(batch) is in the archive \(file), which is not in \(dir) (shipped off the box? point --dir at a copy)")
        }
        let wanted = ArchiveLine.Key(device: device, batch: batch)
        var lines: [String] = []
        var seen = false
        try GzipLineReader.read(path) { bytes in
            guard let line = ArchiveLine.parse(bytes) else { return true }
            // A batch's lines are together: once past them, the rest of the file need not be read.
            guard line.key == wanted else { return !seen }
            seen = true
            if seq == nil || line.seq == seq { lines.append(String(decoding: bytes, as: UTF8.self)) }
            return true
        }
        return ArchivedLines(file: file, lines: lines)
    }
}
