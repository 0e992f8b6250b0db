import ArgumentParser
import Foundation
import OutlawProtocol
import OutlawStore

/// `outlawctl sync` asks the daemon for a reference sync and waits for its report (the default, so the plain
/// command syncs); `outlawctl sync status` shows what the copy of Metrc's lists holds.
struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Sync the copy of Metrc's reference lists now, or show its state.",
        discussion: """
            outlawctl sync [--full] [--json] [--timeout SECONDS]     (the same as outlawctl sync run)
            outlawctl sync status [--json]
            """,
        subcommands: [Run.self, Status.self], defaultSubcommand: Run.self)

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask outlawd to sync Metrc's reference lists now and print what it did (exit 1 if any list failed).",
            discussion: """
                outlawd runs the sync (it holds the Metrc GET budget shared with uploads' read-backs and key checks); \
                outlawctl only asks and waits. A sync already running finishes first. Interrupting outlawctl does not \
                take the request back.
                """)
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "Read every list whole, not just what changed since the last sync.") var full = false
        @Option(name: .long, help: "Give up waiting for the report after this many seconds (the sync goes on).") var timeout: Double = 600
        @Flag(name: .long, help: "JSON output (the daemon's report).") var json = false

        func run() throws {
            guard timeout > 0 else { throw UsageError(message: "--timeout must be a number of seconds above 0") }
            guard try options.load().metrc.referenceSync else {
                throw StoreError("the reference sync is off in this configuration ([metrc] reference_sync = false)")
            }
            let store = try options.openStore()
            // A request nobody takes would only end at --timeout: say so at once when the daemon is not there.
            guard try daemonReporting(store) else { throw StoreError(Self.notRunning) }
            let id = try store.requestSync(by: operatorName(), full: full)
            let result = try wait(for: id, store: store)
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            guard let data = result?.data(using: .utf8), let report = try? decoder.decode(SyncReport.self, from: data) else {
                throw StoreError("outlawd finished sync request \(id) but its report cannot be read (an outlawd of another version?)")
            }
            if json {
                try printJSON(report)
            } else {
                print(Self.describe(report))
            }
            if let failure = Self.failure(report) { throw StoreError(failure) }
        }

        static let notRunning = "outlawd is not running: the sync runs in the daemon (systemctl start outlawd)"

        /// Polls the request until the daemon answers it; the result is the report's JSON.
        func wait(for id: Int64, store: Store) throws -> String? {
            let started = ContinuousClock.now
            var toldWaiting = false
            var lastDaemonCheck = started
            while true {
                guard let request = try store.syncRequest(id: id) else {
                    throw StoreError("sync request \(id) is gone from the store")
                }
                if request.finishedAt != nil { return request.result }
                let waited = ContinuousClock.now - started
                if waited >= .seconds(timeout) {
                    throw StoreError("no report from outlawd after \(Int(timeout)) s; the sync may still finish: "
                        + "outlawctl sync status, journalctl -u outlawd")
                }
                // The daemon's status row is rewritten every 5 s: once a second is enough to notice it stop.
                if ContinuousClock.now - lastDaemonCheck >= .seconds(1) {
                    lastDaemonCheck = .now
                    guard try daemonReporting(store) else { throw StoreError(Self.notRunning) }
                    // Requests are taken only between runs, so a long scheduled sync delays ours; tell, keep waiting.
                    if !toldWaiting, waited >= .seconds(30), try store.syncRequested() {
                        toldWaiting = true
                        FileHandle.standardError.write(Data("""
                            outlawctl: outlawd has not started the sync after 30 s (a sync already running finishes first; \
                            with no Metrc vendor key there is no sync at all: outlawctl status); still waiting

                            """.utf8))
                    }
                }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }

        /// The operator's view: one line per license and kind, then the totals.
        static func describe(_ report: SyncReport) -> String {
            var lines: [String] = []
            if let error = report.error { lines.append("sync did not run: \(error)") }
            if !report.kinds.isEmpty {
                // ERROR only when there is one: an empty last column would leave every line padded.
                let errors = report.kinds.contains { $0.error != nil }
                lines.append(table(
                    ["LICENSE", "KIND", "SYNC", "FETCHED", "CHANGED", "REMOVED", "REQUESTS", "429s", "SECONDS"] + (errors ? ["ERROR"] : []),
                    report.kinds.map {
                        [$0.license, $0.kind.rawValue, $0.full ? "full" : "incremental", "\($0.fetched)", "\($0.changed)",
                         "\($0.removed)", "\($0.requests)", "\($0.rateLimited)", seconds($0.seconds)] + (errors ? [$0.error ?? "-"] : [])
                    }))
            } else if report.error == nil {
                lines.append("nothing to sync: no license configured")
            }
            let requests = report.kinds.reduce(0) { $0 + $1.requests }
            let rateLimited = report.kinds.reduce(0) { $0 + $1.rateLimited }
            lines.append("total: \(seconds(report.seconds)) s, \(requests) requests, \(rateLimited) answered 429")
            return lines.joined(separator: "\n")
        }

        /// The one-line reason for exit 1, nil when every list synced.
        static func failure(_ report: SyncReport) -> String? {
            if let error = report.error { return "sync failed: \(error)" }
            let failed = report.kinds.filter { $0.error != nil }
            guard let first = failed.first else { return nil }
            return "sync failed for \(failed.count) of \(report.kinds.count) lists (first: \(first.license) \(first.kind.rawValue): "
                + "\(first.error ?? "")); the last good copy is still served"
        }

        static func seconds(_ value: Double) -> String { String(format: "%.1f", value) }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each reference list of each license: items held, last success, last full sync, last error.")
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "JSON output.") var json = false

        struct Report: Encodable {
            /// What is wrong with the sync as a whole (e.g. the Default key refused), nil when nothing is.
            let problem: String?
            let lists: [ReferenceListState]
        }

        func run() throws {
            let licenses = try options.load().facility.licenses
            let store = try options.openStore()
            let report = Report(problem: try store.setting(Store.referenceSyncProblemSetting),
                                lists: try ReferenceListState.load(store, licenses: licenses))
            if json { return try printJSON(report) }
            if let problem = report.problem { print("problem: \(problem)\n") }
            print(table(["LICENSE", "KIND", "COUNT", "LAST SUCCESS", "LAST FULL", "LAST ERROR"], report.lists.map { list in
                [list.license, list.kind.rawValue, "\(list.count)", list.lastSuccessAt.map { formatDate($0) } ?? "never",
                 list.lastFullAt.map { formatDate($0) } ?? "never",
                 list.lastError.map { "\(formatDate(list.lastErrorAt)) \($0)" } ?? "-"]
            }))
        }
    }
}

/// One list of one license as `sync status` and `status` show it: the store's state, or "never synced" for a
/// configured list the daemon has not tried yet (the store has no row for it).
struct ReferenceListState: Encodable {
    let license: String
    let kind: ReferenceKind
    let count: Int
    let lastSuccessAt: Date?
    let lastFullAt: Date?
    let lastError: String?
    let lastErrorAt: Date?

    /// Every kind of every configured license, then any other license the store still holds, in kind order.
    static func load(_ store: Store, licenses: [String]) throws -> [ReferenceListState] {
        let states = try store.referenceSyncStates()
        var byKey: [String: ReferenceSyncState] = [:]
        for state in states { byKey["\(state.license) \(state.kind.rawValue)"] = state }
        var order = licenses
        for state in states where !order.contains(state.license) { order.append(state.license) }
        return order.flatMap { license in
            ReferenceKind.allCases.compactMap { kind -> ReferenceListState? in
                guard let s = byKey["\(license) \(kind.rawValue)"] else {
                    // Unconfigured licenses show only what they have; configured ones show every kind.
                    return licenses.contains(license)
                        ? ReferenceListState(license: license, kind: kind, count: 0, lastSuccessAt: nil, lastFullAt: nil,
                                             lastError: nil, lastErrorAt: nil)
                        : nil
                }
                return ReferenceListState(license: s.license, kind: s.kind, count: s.count, lastSuccessAt: s.lastSuccessAt,
                                          lastFullAt: s.lastFullAt, lastError: s.lastError, lastErrorAt: s.lastErrorAt)
            }
        }
    }
}

/// Whether outlawd has written its status row recently (every 5 s while it runs), as `outlawctl status` judges it.
func daemonReporting(_ store: Store, now: Date = Date()) throws -> Bool {
    guard let status = try store.daemonStatus() else { return false }
    return now.timeIntervalSince(status.updatedAt) < 30
}
