import Foundation

/// The demo's result: what the handheld sent, who signed each Metrc action according to the sandbox's write
/// log, and what Metrc refused with the line that replays it. Printed as a table, or as JSON with `--json`.
struct ShiftReport: Codable, Sendable {
    /// Counts over the whole shift, as the device protocol's `status` reports them.
    struct Totals: Codable, Sendable {
        var batches: Int
        var events: Int
        var acked: Int
        var uploaded: Int
        var failed: Int
        var pending: Int
    }

    /// A person logged in on the handheld, and whose Metrc key signs their work.
    struct Login: Codable, Sendable {
        let user: String
        let role: String
        /// `personal` or `default` (the login answer's `metrc_key`).
        let metrcKey: String
        /// The Metrc user who should sign: the person (the sandbox's demo users carry the same names) or the facility's owner.
        let expectedSigner: String?
    }

    /// One batch and its final state.
    struct Batch: Codable, Sendable {
        let id: String
        let user: String
        let events: Int
        let state: String
    }

    /// One event sent, with the Metrc action it becomes and its tag (how the write log is matched to people).
    struct Event: Codable, Sendable {
        let batch: String
        let seq: Int
        let user: String
        let type: String
        let action: String
        let tag: String
    }

    /// One row of the table: one person's events of one Metrc action and who signed them at Metrc.
    struct Signature: Codable, Sendable {
        let user: String
        let metrcKey: String
        let action: String
        let endpoint: String
        let sent: Int
        let failed: Int
        /// Objects of this run in the write log for these events.
        let objects: Int
        /// The write log's `userName` of those writes, sorted.
        let signedBy: [String]
        let expectedSigner: String?
    }

    /// An event Metrc refused, with what to do about it.
    struct Failure: Codable, Sendable {
        let device: String
        let batch: String
        let seq: Int
        let user: String
        let type: String
        let tag: String
        /// As outlawd stored it: `Metrc: ` and Metrc's row message.
        let message: String
        let fix: String?
        let replay: String
    }

    let run: String
    let device: String
    let config: String
    let metrcBaseURL: String
    let license: String
    let startedAt: String
    let elapsedSeconds: Double
    let totals: Totals
    let users: [Login]
    let batches: [Batch]
    let events: [Event]
    let signatures: [Signature]
    let failures: [Failure]
    /// What did not go as the shift was built to go (empty when all is well; the exit code is then 0).
    let problems: [String]
}

extension ShiftReport {
    /// Puts the shift, the final statuses and the write log together. Only writes recorded since `since` whose
    /// objects are this run's events count: earlier runs moved and adjusted the same tags.
    static func build(site: DemoSite, device: String, shift: Shift, logins: [Login], statuses: [String: BatchProgress],
                      writes: [WriteLogEntry], since: Date, startedAt: Date, finishedAt: Date) -> ShiftReport {
        let events = shift.batches.flatMap { batch in batch.events.map { (batch: batch, event: $0) } }
        var objectsPerEvent: [String: Int] = [:]
        var signers: [String: Set<String>] = [:]
        func key(_ batch: String, _ seq: Int) -> String { "\(batch)#\(seq)" }
        for write in writes {
            guard write.license == site.license, let recorded = write.recorded, recorded >= since,
                  let action = MetrcAction(rawValue: write.action), case .array(let objects) = write.objects else { continue }
            for object in objects {
                // Tags are used once per run, so at most one event matches.
                guard let match = events.first(where: { $0.event.action == action && $0.event.matches(object) }) else { continue }
                objectsPerEvent[key(match.batch.id, match.event.seq), default: 0] += 1
                signers["\(match.batch.user) \(action.rawValue)", default: []].insert(write.userName)
            }
        }

        var failures: [Failure] = []
        for batch in shift.batches {
            for error in statuses[batch.id]?.errors ?? [] {
                let event = batch.events.first { $0.seq == error.seq }
                let planned = batch.id == shift.refused.batch && error.seq == shift.refused.seq
                let location = #"{"license":"\#(site.license)","name":"\#(shift.refused.location)"}"#
                failures.append(Failure(
                    device: device, batch: batch.id, seq: error.seq, user: batch.user, type: event?.type ?? "?",
                    tag: event?.tag ?? "?", message: error.message,
                    fix: planned ? "curl -s -X POST \(site.metrcBaseURL)/_sandbox/locations -d '\(location)'" : nil,
                    replay: Shell.line(["scripts/outlaw-replay", "--config", site.configPath, "--batch", "\(device):\(batch.id)"])))
            }
        }
        let failedKeys = Set(failures.map { key($0.batch, $0.seq) })

        var problems: [String] = []
        var signatures: [Signature] = []
        for login in logins {
            for action in MetrcAction.allCases {
                let mine = events.filter { $0.batch.user == login.user && $0.event.action == action }
                guard !mine.isEmpty else { continue }
                let failed = mine.filter { failedKeys.contains(key($0.batch.id, $0.event.seq)) }.count
                let objects = mine.reduce(0) { $0 + (objectsPerEvent[key($1.batch.id, $1.event.seq)] ?? 0) }
                let signedBy = (signers["\(login.user) \(action.rawValue)"] ?? []).sorted()
                signatures.append(Signature(user: login.user, metrcKey: login.metrcKey, action: action.rawValue,
                                            endpoint: action.endpoint, sent: mine.count, failed: failed, objects: objects,
                                            signedBy: signedBy, expectedSigner: login.expectedSigner))
                if objects != mine.count - failed {
                    problems.append("\(login.user) \(action.rawValue): \(mine.count) sent, \(failed) failed, but \(objects) objects of this run in Metrc's write log")
                }
                if let expected = login.expectedSigner, !signedBy.isEmpty, signedBy != [expected] {
                    problems.append("\(login.user) \(action.rawValue) signed by \(signedBy.joined(separator: ", ")) at Metrc, expected \(expected)")
                }
            }
        }
        for (eventKey, count) in objectsPerEvent where count > 1 {
            problems.append("event \(eventKey) reached Metrc \(count) times")
        }
        if failures.count != 1 || failures.first.map({ $0.batch != shift.refused.batch || $0.seq != shift.refused.seq }) == true {
            problems.append("expected exactly one refused event (\(shift.refused.batch) seq \(shift.refused.seq), the move to \(shift.refused.location)), got \(failures.count)")
        }

        let progress = shift.batches.compactMap { statuses[$0.id] }
        return ShiftReport(
            run: shift.run, device: device, config: site.configPath, metrcBaseURL: site.metrcBaseURL, license: site.license,
            startedAt: Timestamp.format(startedAt, timeZone: .current),
            elapsedSeconds: (finishedAt.timeIntervalSince(startedAt) * 10).rounded() / 10,
            totals: Totals(batches: shift.batches.count, events: events.count, acked: shift.batches.count,
                           uploaded: progress.reduce(0) { $0 + $1.uploaded }, failed: progress.reduce(0) { $0 + $1.failed },
                           pending: progress.reduce(0) { $0 + $1.pending }),
            users: logins,
            batches: shift.batches.map { Batch(id: $0.id, user: $0.user, events: $0.events.count, state: statuses[$0.id]?.state ?? "unknown") },
            events: events.map { Event(batch: $0.batch.id, seq: $0.event.seq, user: $0.batch.user, type: $0.event.type,
                                       action: $0.event.action?.rawValue ?? "-", tag: $0.event.tag) },
            signatures: signatures, failures: failures, problems: problems)
    }

    /// The table a person reads at the end of the demo.
    func text(owner: String?) -> String {
        var lines: [String] = []
        lines.append("Shift \(run): \(totals.batches) batches, \(totals.events) events in \(elapsedSeconds) s: "
            + "\(totals.uploaded) uploaded, \(totals.failed) failed")
        lines.append("")
        lines.append("Who signed what at Metrc (the sandbox's write log, this run's writes only):")
        var rows = [["USER", "METRC KEY", "ACTION", "ENDPOINT", "SENT", "AT METRC", "SIGNED BY (METRC USER)"]]
        for s in signatures {
            let signed = s.signedBy.map { $0 == owner ? "\($0) (Default key)" : $0 }.joined(separator: ", ")
            rows.append([s.user, s.metrcKey, s.action, s.endpoint, String(s.sent), String(s.objects), signed.isEmpty ? "-" : signed])
        }
        lines += Table.render(rows, rightAligned: [4, 5]).map { "  " + $0 }
        lines.append("")
        if failures.isEmpty {
            lines.append("Metrc refused nothing.")
        } else {
            lines.append("Refused by Metrc (\(failures.count)):")
            for f in failures {
                lines.append("  device \(f.device)  batch \(f.batch)  seq \(f.seq)  collected by \(f.user)  \(f.type) \(f.tag)")
                lines.append("    why:    \(f.message)")
                if let fix = f.fix { lines.append("    fix:    \(fix)") }
                lines.append("    replay: \(f.replay)")
            }
        }
        if !problems.isEmpty {
            lines.append("")
            lines.append("Not as expected:")
            lines += problems.map { "  - " + $0 }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Plain-text columns, padded to the widest cell.
enum Table {
    static func render(_ rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
        let widths = (0..<(rows.map(\.count).max() ?? 0)).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return rightAligned.contains(column) ? padding + cell : (column == row.count - 1 ? cell : cell + padding)
            }.joined(separator: "  ")
        }
    }
}

/// Command lines a person can paste into bash.
enum Shell {
    static func line(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }

    static func quote(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,")
        if !word.isEmpty, word.allSatisfy(safe.contains) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
