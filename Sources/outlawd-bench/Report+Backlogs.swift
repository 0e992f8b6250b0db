import Foundation

/// The rows, notes and settings of the backlog, chains and store-size parts.
extension BenchReport {
    var backlogRows: [Row] {
        var rows: [Row] = []
        func pct(_ v: Double) -> String { String(format: "%.0f%%", v * 100) }
        func ms(_ v: Double) -> String { v < 10 ? String(format: "%.2f", v) : String(format: "%.1f", v) }
        for b in backlogs {
            let isChains = b.label.hasPrefix("chains")
            let scope = "\(b.label) (\(BacklogShape.grouped(b.tags)) tags, +\(b.latencyMs) ms a write)"
            rows.append(Row(figure: "\(scope): drained, first request to last answer",
                            value: String(format: "%.0f events/s (%@ of %@ in %.1f s; %d requests, %.0f objects each on average)",
                                          b.eventsPerSecond, BacklogShape.grouped(b.uploaded), BacklogShape.grouped(b.events),
                                          b.activeSeconds ?? b.seconds, b.requests, b.meanObjects)))
            rows.append(Row(figure: "\(b.label): from the resume", value: String(format: "%.1f s to empty, %.0f events/s; first request after %.2f s",
                                                                                 b.seconds, Double(b.uploaded) / max(b.seconds, 0.001),
                                                                                 b.pickupSeconds ?? -1)))
            rows.append(Row(figure: "\(b.label): bound", value: String(format: "%.0f events/s: ", b.bound) + b.boundWhy))
            let clean = !b.timedOut && b.failed == 0
            rows.append(Row(figure: "\(b.label): drain ÷ bound", value: pct(b.share), target: isChains ? "≥ 80%" : "≥ 90%",
                            met: clean && b.share >= (isChains ? 0.8 : 0.9)))
            if !isChains, let last = b.lastTenthPerSecond, let share = b.lastTenthShare {
                rows.append(Row(figure: "\(b.label): last tenth ÷ bound", value: String(format: "%.0f events/s = ", last) + pct(share),
                                target: "≥ 90%", met: clean && share >= 0.9))
            }
            var cpu = b.cpuPer1000.map { String(format: "%.3f s per 1,000 events", $0) } ?? "?"
            if let d = b.daemonCPU, let s = b.sandboxCPU, b.seconds > 0 {
                cpu += String(format: "; of a core over the drain: outlawd %.0f%%, sandbox %.0f%%", d / b.seconds * 100, s / b.seconds * 100)
            }
            rows.append(Row(figure: "\(b.label): daemon CPU" + (b.ingest == nil ? "" : " (the paced ingest's included)"), value: cpu))
            rows.append(Row(figure: "\(b.label): daemon peak RSS", value: mib(b.peakRSS), target: "≤ 128 MiB",
                            met: b.peakRSS.map { $0 <= 128 * Self.mebibyte }))
            if let i = b.ingest {
                rows.append(Row(figure: "\(b.label): paced \(i.handhelds)×\(options.lightRate) ev/s during the drain: ack p50 / p99 / max",
                                value: "\(ms(i.latency.p50)) / \(ms(i.latency.p99)) / \(ms(i.latency.max)) ms"
                                    + String(format: " (acked %.0f of %.0f events/s)", i.ackedPerSecond, i.offeredPerSecond),
                                target: "p99 ≤ 50 ms", met: i.latency.count > 0 && i.latency.p99 <= 50 && i.nacks == 0))
            }
        }
        if let z = storeSize {
            let scope = "store of \(BacklogShape.grouped(z.seeded)) finished events"
            rows.append(Row(figure: "\(scope): seeded in", value: String(format: "%.1f s (audit chain %@, %d rows; outlawd started in %.1f s)",
                                                                        z.seedSeconds, z.auditIntact ? "intact" : "BROKEN", z.auditRows,
                                                                        z.startSeconds),
                            target: "chain intact", met: z.auditIntact))
            if let m = z.migrationSeconds {
                // The unit's TimeoutStartSec= is 60 s; a longer open extends it (StartTimeoutExtension).
                rows.append(Row(figure: "\(scope): the v15 migration (an index over the events' upload attempts) at the first start",
                                value: String(format: "%.1f s", m)))
            }
            if let p = z.paced {
                let paced = "\(scope): paced \(p.handhelds)×\(options.pacedRate) ev/s"
                rows.append(Row(figure: "\(paced): offered / acked events/s", value: String(format: "%.0f / %.0f", p.offeredPerSecond, p.ackedPerSecond),
                                target: "acked = offered", met: p.ackedPerSecond >= p.offeredPerSecond * 0.99 && p.nacks == 0))
                rows.append(Row(figure: "\(paced): ack p50 / p99 / max", value: "\(ms(p.latency.p50)) / \(ms(p.latency.p99)) / \(ms(p.latency.max)) ms",
                                target: "p99 ≤ 20 ms", met: p.latency.count > 0 && p.latency.p99 <= 20))
                rows.append(Row(figure: "\(paced): daemon peak RSS", value: mib(p.peakRSS), target: "≤ 64 MiB",
                                met: p.peakRSS.map { $0 <= 64 * Self.mebibyte }))
            }
            rows.append(Row(figure: "\(scope): disk per million events",
                            value: String(format: "%.0f MiB (%.2f GiB for %@ events after a checkpoint, WAL %.1f MiB)",
                                          z.bytesPerMillion / 1_048_576, Double(z.mainBytes + z.walBytes) / 1_073_741_824,
                                          BacklogShape.grouped(z.events), Double(z.walBytes) / 1_048_576)))
            if let pull = z.pullSeconds {
                rows.append(Row(figure: "\(scope): a handheld's pull of every plant; status of a seeded batch",
                                value: String(format: "%.2f s for %d plants; %@", pull, z.pulledPlants, z.batchState ?? "?"),
                                target: "answers, uploaded", met: z.batchState == "uploaded"))
            }
            if let s = z.statusSeconds {
                rows.append(Row(figure: "\(scope): outlawctl status", value: String(format: "%.2f s", s), target: "answers",
                                met: z.statusOK))
            }
        }
        if let r = retention {
            let scope = "retention of \(BacklogShape.grouped(r.seeded)) old events"
            if let off = r.pacedOff, let on = r.pacedDuring {
                let paced = "\(scope): paced \(on.handhelds)×\(options.pacedRate) ev/s ack p99"
                // The runs before and after, with retention off, bracket the run: their mean is the baseline.
                let offRuns = [off, r.pacedAfter].compactMap { $0 }.filter { $0.latency.count > 0 }
                let baseline = offRuns.isEmpty ? 0 : offRuns.map(\.latency.p99).reduce(0, +) / Double(offRuns.count)
                let ratio = baseline > 0 ? on.latency.p99 / baseline : 0
                let offText = offRuns.map { ms($0.latency.p99) }.joined(separator: " and ")
                    + (off.latency.p99 > 0 ? String(format: "; ÷ the run before alone %.2f×", on.latency.p99 / off.latency.p99) : "")
                rows.append(Row(figure: "\(paced), during its first run ÷ with retention off (the mean of a run before and one after)",
                                value: "\(ms(on.latency.p99)) ÷ \(ms(baseline)) ms (\(offText)) = " + String(format: "%.2f×", ratio)
                                    + (r.runCoveredPaced ? " (the run lasted the whole paced run)" : " (the run ended before the paced run did)"),
                                target: "≤ 1.5×", met: on.latency.count > 0 && baseline > 0 && ratio <= 1.5 && on.nacks == 0))
                rows.append(Row(figure: "\(scope): daemon peak RSS during the run", value: mib(on.peakRSS), target: "≤ 64 MiB",
                                met: on.peakRSS.map { $0 <= 64 * Self.mebibyte }))
            }
            if let seconds = r.runSeconds, let archived = r.archivedEvents {
                rows.append(Row(figure: "\(scope): the first run", value: String(
                    format: "%@ events archived (%@ deleted) in %.0f s, %.0f events/s; archives %.1f MiB (%.1f MiB per million events)",
                    BacklogShape.grouped(archived), BacklogShape.grouped(r.deletedEvents ?? 0), seconds, Double(archived) / max(seconds, 0.001),
                    Double(r.archiveBytes) / 1_048_576, archived > 0 ? Double(r.archiveBytes) / 1_048_576 / Double(archived) * 1_000_000 : 0),
                    target: "every seeded event", met: archived >= r.seeded))
            }
        }
        return rows
    }

    var backlogNotes: [String] {
        var notes: [String] = []
        for b in backlogs {
            notes.append("\(b.label): stored in " + String(format: "%.1f s", b.seedSeconds) + "; events: \(b.mix)")
            if b.timedOut { notes.append("\(b.label): gave up after \(Int(b.seconds)) s with \(b.left) events still waiting") }
            if b.failed > 0 { notes.append("\(b.label): \(b.failed) events failed at Metrc (first: \(b.firstFailure ?? "?"))") }
            if let i = b.ingest {
                if i.nacks > 0 { notes.append("\(b.label) ingest: \(i.nacks) batches refused (nack)") }
                for e in i.errors.prefix(3) { notes.append("\(b.label) ingest: \(e)") }
            }
        }
        return notes
    }

    var backlogSettings: [String] {
        let o = options
        var parts: [String] = []
        let backlogs = [BenchOptions.Part.backlog100k, .backlog1m].filter { o.parts.contains($0) }
        if !backlogs.isEmpty {
            parts.append("""
                \(backlogs.map(\.rawValue).joined(separator: ", ")): \(o.backlogEvents.map { "\($0) events" } ?? "100,000 / 1,000,000 events") \
                (most tags 1–3 events, a few chains of 30 moves, every uploadable type), 5 users (jane and john with personal keys, \
                3 on the Default key), stored straight into the store with uploads paused; a metrc-sandbox process at Metrc's GET \
                limits, +\(o.drainLatencyMs) ms a write, concurrency \(o.drainConcurrency), \(o.drainObjects) objects a request, \
                reference sync off; during the drain \(o.pacedHandhelds) handhelds × \(o.lightRate) events/s for \(fmt(o.seconds)) s \
                (their batches wait for review, so the drain is the backlog's alone)
                """)
        }
        if o.parts.contains(.store10m) {
            parts.append("""
                store-10m: \(o.storeEvents) finished events seeded in SQL (390 days, within the default retention, of batches of 100 by jane and john, \
                the bench's event mix), then paced \(o.pacedHandhelds) handhelds × \(o.pacedRate) events/s for \(fmt(o.seconds)) s
                """)
        }
        if o.parts.contains(.chains) {
            parts.append("chains: \(o.chainTags) plants × \(o.chainLength) moves by one collector, the same sandbox and daemon settings")
        }
        return parts
    }
}
