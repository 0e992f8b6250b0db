import Foundation

/// Everything one run measured, printed as one table and written into docs/performance.md.
struct BenchReport: Sendable {
    var options: BenchOptions
    var machine: Machine
    var configuration: String
    var startedAt: Date
    var flat: IngestFigures?
    var baseline: BaselineFigures?
    /// Raw SQLite, one paced-size batch a transaction: each commit's time.
    var pacedBaseline: BaselineFigures?
    var light: IngestFigures?
    var paced: IngestFigures?
    var pacedRSSAfterLight: Int?
    var pacedDuringBackups: IngestFigures?
    var backups: BackupFigures?
    var drain: DrainFigures?
    var reference: ReferenceFigures?
    /// backlog-100k, backlog-1m and chains, in the order run.
    var backlogs: [BacklogFigures] = []
    var storeSize: StoreSizeFigures?
    var retention: RetentionFigures?
    var failures: [String] = []

    struct Row {
        var figure: String
        var value: String
        var target: String = ""
        /// nil: no target.
        var met: Bool?
    }

    static let mebibyte = 1_048_576

    var ratio: Double? {
        guard let flat, let baseline, baseline.eventsPerSecond > 0 else { return nil }
        return flat.ackedPerSecond / baseline.eventsPerSecond
    }

    var rows: [Row] {
        var rows: [Row] = []
        func ms(_ v: Double) -> String { v < 10 ? String(format: "%.2f", v) : String(format: "%.1f", v) }
        func rate(_ v: Double) -> String { String(format: "%.0f", v) }
        func pct(_ v: Double) -> String { String(format: "%.0f%%", v * 100) }
        if let f = flat {
            let scope = "flat-out \(f.handhelds)×\(f.eventsPerBatch)"
            rows.append(Row(figure: "\(scope): events/s acked", value: rate(f.ackedPerSecond)
                            + String(format: " (%d events, %.1f batches/s, %.1f s to the last ack)", f.ackedEvents, f.batchesPerSecond,
                                     f.busySeconds)))
            rows.append(Row(figure: "\(scope): ack p50 / p99 / max", value: "\(ms(f.latency.p50)) / \(ms(f.latency.p99)) / \(ms(f.latency.max)) ms"))
            rows.append(Row(figure: "\(scope): daemon peak RSS", value: mib(f.peakRSS), target: "≤ 128 MiB",
                            met: f.peakRSS.map { $0 <= 128 * Self.mebibyte }))
            rows.append(Row(figure: "\(scope): daemon CPU per 100,000 events",
                            value: f.cpuPer100k.map { String(format: "%.2f s", $0) } ?? "?"))
        }
        if let b = baseline {
            rows.append(Row(figure: "raw SQLite (\(b.eventsPerTransaction) events/txn, 1 thread): events/s",
                            value: rate(b.eventsPerSecond) + String(format: " (%d events in %.1f s)", b.events, b.seconds)))
        }
        if let ratio {
            rows.append(Row(figure: "flat-out ÷ raw SQLite", value: pct(ratio), target: "≥ 50%", met: ratio >= 0.5))
        }
        if let p = paced {
            let scope = "paced \(p.handhelds)×\(options.pacedRate) ev/s"
            rows.append(Row(figure: "\(scope): offered / acked events/s", value: "\(rate(p.offeredPerSecond)) / \(rate(p.ackedPerSecond))",
                            target: "acked = offered", met: p.ackedPerSecond >= p.offeredPerSecond * 0.99 && p.nacks == 0))
            rows.append(Row(figure: "\(scope): ack p50 / p99 / max", value: "\(ms(p.latency.p50)) / \(ms(p.latency.p99)) / \(ms(p.latency.max)) ms",
                            target: "p99 ≤ 20 ms", met: p.latency.count > 0 && p.latency.p99 <= 20))
            if let b = pacedBaseline, b.transactions.count > 0 {
                rows.append(Row(figure: "raw SQLite, one \(b.eventsPerTransaction)-event transaction: p50 / p99 / max",
                                value: "\(ms(b.transactions.p50)) / \(ms(b.transactions.p99)) / \(ms(b.transactions.max)) ms"
                                    + String(format: " (%d transactions)", b.transactions.count)))
            }
            rows.append(Row(figure: "\(scope): daemon peak RSS", value: mib(p.peakRSS), target: "≤ 64 MiB",
                            met: p.peakRSS.map { $0 <= 64 * Self.mebibyte }))
            rows.append(Row(figure: "\(scope): daemon CPU per 100,000 events",
                            value: p.cpuPer100k.map { String(format: "%.2f s", $0) } ?? "?"))
        }
        if let b = pacedDuringBackups {
            let scope = "paced \(b.handhelds)×\(options.pacedRate) ev/s during back-to-back backups"
            rows.append(Row(figure: "\(scope): ack p50 / p99 / max", value: "\(ms(b.latency.p50)) / \(ms(b.latency.p99)) / \(ms(b.latency.max)) ms"))
            if let p = paced, p.latency.count > 0, b.latency.count > 0 {
                let ratio = b.latency.p99 / max(p.latency.p99, 0.001)
                rows.append(Row(figure: "paced p99 during backups ÷ paced p99 (same daemon, same run)", value: String(format: "%.2f×", ratio),
                                target: "≤ 2×", met: ratio <= 2))
            }
        }
        if let k = backups, k.count > 0 {
            rows.append(Row(figure: "backups taken during that run", value: String(format: "%d, %.1f MiB each, %.2f s each: %.1f s per GB",
                                                                                  k.count, k.meanBytes / 1_048_576, k.meanSeconds, k.secondsPerGB)))
        }
        if let l = light {
            rows.append(Row(figure: "light \(l.handhelds)×\(options.lightRate) ev/s: ack p50 / p99", value: "\(ms(l.latency.p50)) / \(ms(l.latency.p99)) ms"
                            + String(format: " (acked %.0f of %.0f events/s)", l.ackedPerSecond, l.offeredPerSecond)))
        }
        if let d = drain {
            let value = String(format: "%.0f events/s (%d events in %.2f s; %d requests)", d.eventsPerSecond, d.uploaded, d.seconds, d.requests)
            rows.append(Row(figure: "upload drain (\(d.users) users, \(d.tags) tags, +\(d.latencyMs) ms a write)", value: value))
            rows.append(Row(figure: "upload drain ÷ bound (\(d.concurrency)×\(d.objectsPerRequest)÷\(d.latencyMs) ms = \(rate(d.bound))/s)",
                            value: pct(d.share), target: "≥ 90%", met: !d.timedOut && d.failed == 0 && d.share >= 0.9))
            if let pickup = d.pickupSeconds {
                var value = String(format: "%.2f s", pickup)
                if let after = d.eventsPerSecondAfterPickup {
                    value += String(format: " (from then on: %.0f events/s = ", after) + pct(after / d.bound) + " of bound)"
                }
                rows.append(Row(figure: "upload drain: first upload after resume", value: value))
            }
            if let request = d.meanRequestSeconds, let inFlight = d.meanInFlight {
                // An attempt is recorded up to one request ahead of its slot, so attempts open at once run past
                // `concurrency` (at most twice it); Metrc itself never has more than `concurrency`.
                rows.append(Row(figure: "upload drain: mean attempt (recorded to answered) / attempts open at once",
                                value: String(format: "%.0f ms / %.2f (at Metrc at most %d)", request * 1000, inFlight, d.concurrency)))
            }
        }
        if let r = reference {
            rows.append(Row(figure: "reference sync, full (\(r.plants) plants, \(r.packages) packages)",
                            value: String(format: "%.2f s, %d requests, %d × 429, %d records", r.seconds, r.requests, r.rateLimited, r.fetched)))
            rows.append(Row(figure: "reference sync: GET rate ÷ \(r.limit)/s", value: String(format: "%.1f/s = ", r.getsPerSecond) + pct(r.share),
                            target: "≥ 90%, no 429", met: r.errors.isEmpty && r.rateLimited == 0 && r.share >= 0.9))
        }
        rows += backlogRows
        return rows
    }

    var table: String {
        var lines = ["| Figure | Value | Target | |", "| --- | --- | --- | --- |"]
        for row in rows {
            let verdict = row.met.map { $0 ? "met" : "**not met**" } ?? ""
            lines.append("| \(row.figure) | \(row.value) | \(row.target) | \(verdict) |")
        }
        return lines.joined(separator: "\n")
    }

    var notes: [String] {
        var notes: [String] = []
        for f in [flat, light, paced].compactMap({ $0 }) {
            if f.nacks > 0 { notes.append("\(f.label): \(f.nacks) batches refused (nack)") }
            for e in f.errors.prefix(5) { notes.append("\(f.label): \(e)") }
        }
        if let d = drain {
            if d.timedOut { notes.append("upload drain: gave up after \(Int(d.seconds)) s with \(d.left) events still waiting") }
            if d.failed > 0 { notes.append("upload drain: \(d.failed) events failed at Metrc") }
        }
        if let r = reference { notes += r.errors.map { "reference sync: \($0)" } }
        notes += backlogNotes
        notes += failures
        if configuration != "release" {
            notes.append("\(configuration) build: the figures are not comparable with the targets (scripts/bench measures release)")
        }
        return notes
    }

    var settings: String {
        let o = options
        var parts: [String] = []
        if o.parts.contains(.flat) {
            parts.append("flat-out \(o.handhelds) handhelds × \(o.eventsPerBatch)-event batches, window \(o.window), \(fmt(o.seconds)) s")
        }
        if o.parts.contains(.baseline) { parts.append("raw SQLite at most \(fmt(o.seconds)) s") }
        if o.parts.contains(.paced) {
            parts.append("""
                paced \(o.pacedHandhelds) handhelds × \(o.lightRate) then × \(o.pacedRate) events/s in \(o.pacedEventsPerBatch)-event \
                batches, \(fmt(o.seconds)) s each
                """)
        }
        if !o.parts.isDisjoint(with: [.flat, .paced, .reference]) {
            parts.append("sandbox seeded with \(o.plants) plants and \(o.packages) packages")
        }
        if o.parts.contains(.drain) {
            parts.append("""
                drain \(o.drainEvents) events, \(o.drainUsers) users, \(o.drainTags) tags, +\(o.drainLatencyMs) ms a write, \
                concurrency \(o.drainConcurrency), \(o.drainObjects) objects a request
                """)
        }
        parts += backlogSettings
        return parts.joined(separator: "; ")
    }

    func fmt(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }

    var printed: String {
        var out = "\noutlawd benchmark (\(configuration) build) on \(machine.summary)\n\(settings)\n\n\(table)\n"
        let notes = self.notes
        if !notes.isEmpty { out += "\n" + notes.map { "- " + $0 }.joined(separator: "\n") + "\n" }
        return out
    }

    /// The dated section for docs/performance.md.
    var section: String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var out = "### \(formatter.string(from: startedAt)) UTC, \(configuration) build\n\n"
        out += "- Machine: \(machine.summary)\n"
        out += "- Command: `\(options.command)`\n"
        if let source = ProcessInfo.processInfo.environment["OUTLAWD_BENCH_SOURCE"], !source.isEmpty {
            out += "- Source: \(source)\n"
        }
        out += "- Settings: \(settings)\n\n"
        out += table + "\n"
        let notes = self.notes
        if !notes.isEmpty { out += "\n" + notes.map { "- " + $0 }.joined(separator: "\n") + "\n" }
        return out + "\n"
    }

    static let marker = "<!-- outlawd-bench adds each run below this line, newest first -->"

    /// Adds the section under the marker (newest first), or at the end when the marker is missing.
    func write(to path: String) throws {
        var text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "# Performance\n\n\(Self.marker)\n"
        if let range = text.range(of: Self.marker + "\n") {
            text.insert(contentsOf: "\n" + section, at: range.upperBound)
        } else {
            text += "\n" + section
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
