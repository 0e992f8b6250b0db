import Foundation
import GRDB
import OutlawProtocol
import OutlawStore

/// A year of finished events written straight into a store in SQL (recursive CTEs, one transaction): batches of
/// 100 events by jane and john over the store's devices, every event type of the bench's mix (scans `recorded`,
/// the rest `uploaded` with a Metrc id and an accepted attempt a batch; no `event_tags` rows, as uploaded events
/// drop theirs), and a daemon start in the audit chain every so often. Event fields are the daemon's own canonical JSON: templates taken
/// through `BatchValidator` once, tags and times put in by SQL.
extension StoreSeed {
    /// Placeholders the templates carry where SQL puts each event's own tags and time (valid as tags and as `at`).
    static let plantPlaceholders = (0..<3).map { "1A4FF0" + String(repeating: "Z", count: 17) + String($0) }
    static let packagePlaceholder = "1A4FF0" + String(repeating: "Y", count: 17) + "0"
    static let atPlaceholder = "2020-01-01T00:00:00-08:00"

    /// Seeds `count` finished events spread over `days` days ending `agedDays` days before `now` (by default the 390
    /// days before it). Returns the seconds it took.
    static func history(path: String, count: Int, deviceIDs: [Int64], jane: Int64, john: Int64, now: Date,
                        days: Double = 390, agedDays: Double = 0) throws -> Double {
        let started = ContinuousClock.now
        // The 20 events of the bench's mix, validated once: their canonical JSON, with placeholders.
        var line = #"{"op":"batch","id":"template","user":"jane","events":["#
        for (p, kind) in EventMix.pattern.enumerated() {
            if p > 0 { line += "," }
            EventMix.appendEvent(&line, seq: p + 1, kind: kind, n: p, plant: { plantPlaceholders[$0] }, package: { packagePlaceholder },
                                 packageUnit: { "Grams" }, at: atPlaceholder)
        }
        line += "]}"
        let template = try validate(line, validator: validator(), now: now)

        let queue = try open(path)
        try queue.writeWithoutTransaction { db in
            // Nothing to roll back to if this fails: the bench deletes the store. The daemon's WAL mode comes back at the end.
            try db.execute(sql: "PRAGMA journal_mode = OFF")
            try db.execute(sql: "CREATE TEMP TABLE seed_templates (k INTEGER PRIMARY KEY, type TEXT, state TEXT, tag TEXT, fields TEXT)")
            for (k, event) in template.events.enumerated() {
                try db.execute(sql: "INSERT INTO seed_templates VALUES (?, ?, ?, ?, ?)", arguments: [
                    k, event.type.rawValue, (event.type.isUploaded ? EventState.uploaded : EventState.recorded).rawValue,
                    event.tag, event.canonicalJSON,
                ])
            }
            try db.execute(sql: "CREATE TEMP TABLE seed_devices (k INTEGER PRIMARY KEY, id INTEGER)")
            for (k, id) in deviceIDs.enumerated() { try db.execute(sql: "INSERT INTO seed_devices VALUES (?, ?)", arguments: [k, id]) }

            // By default within the default retention (400 days), so the daemon keeps every seeded event while it is
            // measured; the retention part ages them past it.
            let span = days * 86_400.0
            let t0 = now.timeIntervalSince1970 - span - 86_400 - agedDays * 86_400
            let step = span / Double(count)
            let batches = (count + 99) / 100
            let firstBatch = (try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM batches")) ?? 1
            let firstEvent = (try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM events")) ?? 1
            let firstAttempt = (try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM upload_attempts")) ?? 1
            let plantPool = max(1000, count / 10)
            let packagePool = max(500, count / 20)
            let arguments: StatementArguments = [
                "n": count, "batches": batches, "firstBatch": firstBatch, "firstEvent": firstEvent, "firstAttempt": firstAttempt,
                "t0": t0, "step": step, "devices": deviceIDs.count, "jane": jane, "john": john, "license": EventMix.license,
                "plantPool": plantPool, "packagePool": packagePool,
                "P0": plantPlaceholders[0], "P1": plantPlaceholders[1], "P2": plantPlaceholders[2], "PK": packagePlaceholder,
                "AT": atPlaceholder, "move": MetrcAction.movePlants.rawValue,
            ]
            try db.inTransaction {
                try db.execute(sql: """
                    WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i < :batches - 1)
                    INSERT INTO batches (id, device_id, batch_id, user_id, license, content_hash, event_count, received_at, session, ticket_id)
                    SELECT :firstBatch + i, (SELECT id FROM seed_devices WHERE k = i % :devices), 'history-' || i,
                      CASE i % 2 WHEN 0 THEN :jane ELSE :john END, :license, randomblob(32), MIN(100, :n - i * 100),
                      :t0 + (i * 100 + 99) * :step + 1, 'bench-history', NULL
                    FROM b
                    """, arguments: arguments)
                // One accepted attempt a batch (the bench's mix in one request is not what the uploader sends, but it is
                // the right number of rows for `status` and the attempt columns to point at).
                try db.execute(sql: """
                    WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i < :batches - 1)
                    INSERT INTO upload_attempts (id, started_at, finished_at, license, action, key_kind, key_user, key_reason, events,
                                                 outcome, http_status)
                    SELECT :firstAttempt + i, :t0 + (i * 100 + 99) * :step + 60, :t0 + (i * 100 + 99) * :step + 60.3, :license, :move,
                      'personal', CASE i % 2 WHEN 0 THEN 'jane' ELSE 'john' END, 'personal key', MIN(100, :n - i * 100), 'accepted', 200
                    FROM b
                    """, arguments: arguments)
                try db.execute(sql: """
                    WITH RECURSIVE e(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM e WHERE i < :n - 1),
                    x AS (SELECT i, i / 100 AS b, i % 20 AS k, :t0 + i * :step AS t,
                            (i * 7 + i / 100) % :plantPool + 1 AS p, (i * 3) % :packagePool + 1 AS q FROM e),
                    y AS (SELECT x.*, strftime('%Y-%m-%dT%H:%M:%S', t - 28800, 'unixepoch') || '-08:00' AS at,
                            '1A4FF07' || printf('%017d', p) AS p0, '1A4FF07' || printf('%017d', (p % :plantPool) + 1) AS p1,
                            '1A4FF07' || printf('%017d', ((p + 1) % :plantPool) + 1) AS p2, '1A4FF08' || printf('%017d', q) AS pk FROM x)
                    INSERT INTO events (id, batch_id, seq, type, tag, at, metrc_date, fields, user_id, license, state, updated_at,
                                        attempts, metrc_id, key_kind, key_reason, first_attempt_at, last_attempt_at, attempt_id)
                    SELECT :firstEvent + i, :firstBatch + b, i % 100 + 1, s.type,
                      replace(replace(replace(replace(s.tag, :P0, p0), :P1, p1), :P2, p2), :PK, pk),
                      at, substr(at, 1, 10),
                      replace(replace(replace(replace(replace(s.fields, :P0, p0), :P1, p1), :P2, p2), :PK, pk), :AT, at),
                      CASE b % 2 WHEN 0 THEN :jane ELSE :john END, :license, s.state, t + 120,
                      s.state = 'uploaded', CASE WHEN s.state = 'uploaded' THEN CAST(100000000 + i AS TEXT) END,
                      CASE WHEN s.state = 'uploaded' THEN 'personal' END, CASE WHEN s.state = 'uploaded' THEN 'personal key' END,
                      CASE WHEN s.state = 'uploaded' THEN t + 60 END, CASE WHEN s.state = 'uploaded' THEN t + 60 END,
                      CASE WHEN s.state = 'uploaded' THEN :firstAttempt + b END
                    FROM y CROSS JOIN seed_templates s ON s.k = y.k  -- CROSS: the generated rows outside, one lookup each
                    """, arguments: arguments)
                // No event_tags rows: an uploaded event drops its own as it finishes (v13), so a year's store has none.
                let starts = max(10, count / 5000)
                try appendAudit(db, rows: (0..<starts).map { i in
                    (at: t0 + span * Double(i) / Double(starts), actor: "outlawd", action: "daemon.start",
                     subject: nil, detail: "bench history \(i)")
                })
                return .commit
            }
            try db.execute(sql: "PRAGMA journal_mode = WAL")
        }
        return since(started)
    }
}
