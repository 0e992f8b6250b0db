import Foundation
import GRDB

extension Store {
    /// Outcomes that say Metrc itself is failing, as opposed to refusing an event (400) or a key (401/403).
    public static let metrcFaultOutcomes: [AttemptOutcome] = [.serverFault, .noAnswer, .notFound]

    /// The most recent upload attempt that ended in one of `metrcFaultOutcomes`. Read backwards by id, so with a recent
    /// fault only the newest rows are looked at.
    public func lastMetrcFault() throws -> HealthVerdict.MetrcFault? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, SQLRequest<Row>(literal: """
                SELECT \(UploadAttemptColumns.finishedAt), \(UploadAttemptColumns.outcome), \(UploadAttemptColumns.message)
                FROM \(UploadAttemptTable.self)
                WHERE \(UploadAttemptColumns.outcome) IN \(Store.metrcFaultOutcomes) AND \(UploadAttemptColumns.finishedAt) IS NOT NULL
                ORDER BY \(UploadAttemptColumns.id) DESC LIMIT 1
                """)),
                let outcome = row[UploadAttemptColumns.outcome] as AttemptOutcome?
            else { return nil }
            return HealthVerdict.MetrcFault(at: Date(timeIntervalSince1970: row[UploadAttemptColumns.finishedAt]), outcome: outcome,
                                            message: row[UploadAttemptColumns.message])
        }
    }
}

extension Store {
    static let uploadGapsSetting = "upload_gaps"

    /// What the running daemon lacks to upload (Metrc's address, keys), one sentence each; written at start and at
    /// each reload of the keys, read by `outlawctl status` while the daemon reports.
    public func setUploadGaps(_ gaps: [String]) throws {
        try setSetting(Store.uploadGapsSetting, gaps.isEmpty ? nil : String(decoding: try JSONEncoder().encode(gaps), as: UTF8.self))
    }

    public func uploadGaps() throws -> [String] {
        guard let text = try setting(Store.uploadGapsSetting) else { return [] }
        return (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }
}
