import ArgumentParser
import Foundation
import OutlawProtocol
import OutlawKeys
import OutlawStore

/// `--since` accepts a date (`2026-11-28`) or an RFC 3339 time.
func parseSince(_ text: String?) throws -> Date? {
    guard let text else { return nil }
    let full = ISO8601DateFormatter()
    if let d = full.date(from: text) { return d }
    let day = ISO8601DateFormatter()
    day.formatOptions = [.withFullDate]
    if let d = day.date(from: text) { return d }
    throw UsageError(message: "--since must be a date (2026-11-28) or an RFC 3339 time, not \(text)")
}

struct FailedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failed", abstract: "List failed and held events, grouped by batch, with Metrc's message.")
    @OptionGroup var options: ConfigOptions
    @Option(name: .long) var device: String?
    @Option(name: .long) var user: String?
    @Option(name: .long, help: "Only batches received since this date or time.") var since: String?
    @Flag(name: .long, help: "Only the distinct causes, with what to do about each.") var causes = false
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let store = try options.openStore()
        let batches = try store.failures(FailureFilter(device: device, user: user, since: try parseSince(since)))
        if causes {
            for cause in FailureCauses.summarize(batches) {
                print("\(cause.events) events (\(cause.users.joined(separator: ", "))): \(cause.message)")
                print("  what to do: \(cause.advice)")
            }
            return
        }
        if json { return try printJSON(batches) }
        if batches.isEmpty { return print("no failed or held events") }
        for batch in batches {
            print("\(batch.device) \(batch.id)  collected by \(batch.user)  \(batch.license)  received \(formatDate(batch.receivedAt))")
            print(table(["  SEQ", "TYPE", "TAG", "STATE", "KEY", "TRIES", "FIRST TRY", "LAST TRY", "WHY"], batch.events.map {
                ["  \($0.seq)", $0.type, $0.tag, $0.state.rawValue, $0.keyKind?.rawValue ?? "-", "\($0.attempts)", formatDate($0.firstAttemptAt),
                 formatDate($0.lastAttemptAt), why($0.message, warning: $0.warning)]
            }))
            print("")
        }
    }

    /// Metrc's message, then what the scan check noted when the event was stored (often the same cause, told earlier).
    func why(_ message: String?, warning: String?) -> String {
        let parts = [message, warning.map { "(scan warning: \($0))" }].compactMap { $0 }
        return parts.joined(separator: " ")
    }
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Requeue failed events (and held ones with --held) so the daemon uploads them again.",
        discussion: """
            outlawctl replay DEVICE BATCH_ID [BATCH_ID ...] [--events 3,4]
            outlawctl replay --all-failed [--device D] [--user U] [--since DATE]
            Uploaded events are never resent; replaying twice requeues nothing the second time.
            """)
    @OptionGroup var options: ConfigOptions
    @Argument(help: "DEVICE then one or more BATCH_IDs.") var selection: [String] = []
    @Flag(name: .long, help: "Every failed event matching --device/--user/--since.") var allFailed = false
    @Option(name: .long) var device: String?
    @Option(name: .long) var user: String?
    @Option(name: .long) var since: String?
    @Option(name: .long, help: "Only these seqs (comma-separated), with one batch.") var events: String?
    @Flag(name: .long, help: "Requeue held events too.") var held = false
    @Flag(name: .long, help: "Print what would be requeued and change nothing.") var dryRun = false
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        var filters: [FailureFilter] = []
        let seqs = try events.map { text in
            try text.split(separator: ",").map { part -> Int in
                guard let n = Int(part.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                    throw UsageError(message: "--events takes seqs like 3,4,7")
                }
                return n
            }
        }
        if allFailed {
            guard selection.isEmpty else { throw UsageError(message: "give either DEVICE BATCH_ID... or --all-failed, not both") }
            guard seqs == nil else { throw UsageError(message: "--events needs one batch") }
            filters.append(FailureFilter(device: device, user: user, since: try parseSince(since), includeHeld: held))
        } else {
            guard selection.count >= 2 else { throw UsageError(message: "give DEVICE BATCH_ID [BATCH_ID ...], or --all-failed") }
            let deviceName = selection[0]
            if seqs != nil, selection.count != 2 { throw UsageError(message: "--events needs exactly one batch") }
            for id in selection.dropFirst() {
                filters.append(FailureFilter(batch: (deviceName, id), seqs: seqs, includeHeld: held))
            }
        }
        let store = try options.openStore()
        var requeued: [FailedBatch] = []
        for filter in filters {
            requeued += try store.replay(filter, dryRun: dryRun, actor: operatorName())
        }
        if json { return try printJSON(requeued) }
        let count = requeued.reduce(0) { $0 + $1.events.count }
        for batch in requeued {
            print("\(dryRun ? "would requeue" : "requeued") \(batch.device) \(batch.id): seq \(batch.events.map { String($0.seq) }.joined(separator: ","))")
        }
        print(dryRun ? "dry run: \(count) events would be requeued; nothing changed" : "\(count) events requeued")
    }
}

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause uploads to Metrc; devices are still served and batches stored.")
    @OptionGroup var options: ConfigOptions

    func run() throws {
        try options.openStore().setUploadsPaused(true, actor: operatorName())
        print("uploads paused (until outlawctl resume; survives restarts)")
    }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume uploads to Metrc.")
    @OptionGroup var options: ConfigOptions

    func run() throws {
        try options.openStore().setUploadsPaused(false, actor: operatorName())
        print("uploads resumed")
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "One screen: the verdict and why, devices, what waits, held users, Metrc.",
        discussion: """
            Exit codes: 0 healthy; 1 degraded (Metrc failing, a key refused, events waiting past [metrc] alert_after_hours, \
            reference data stale or failing, uploads paused, no Metrc address or keys); 2 outlawd not running or not \
            reporting (or, as for every command, a configuration or usage error: the message is then on stderr). \
            --json carries the same verdict and reasons.
            """)
    @OptionGroup var options: ConfigOptions
    @Flag(name: .long, help: "JSON output.") var json = false

    struct Status: Encodable {
        /// healthy, degraded or down: the exit code's meaning.
        let verdict: HealthVerdict.Level
        /// Why, one sentence each (empty when healthy).
        let reasons: [String]
        /// This outlawctl's version, and the running daemon's.
        let version: String
        let daemonVersion: String?
        let daemonRunning: Bool
        let connectedDevices: Int?
        let daemonStatusAt: Date?
        let uploadsPaused: Bool
        let queue: QueueStats
        let defaultKey: String
        /// Keys Metrc refuses, and keys within `[keys] warn_days` of their expected expiry.
        let keys: KeyCounts
        /// The oldest last success of any reference list (every list is at least this fresh); nil: none synced yet.
        let lastReferenceSync: Date?
        /// What is wrong with the reference sync (e.g. the Default key refused), nil when nothing is.
        let referenceProblem: String?
    }

    func run() throws {
        let configuration = try options.load()
        let store = try options.openStore()
        let lists = try ReferenceListState.load(store, licenses: configuration.facility.licenses)
        let synced = lists.compactMap(\.lastSuccessAt)
        let queue = try store.queueStats()
        let daemon = try store.daemonStatus()
        let now = Date()
        let keys = try KeyCounts.load(options, store: store)
        var facts = HealthVerdict.Facts(now: now, heartbeat: daemon)
        facts.processExists = daemon.map { Self.processExists($0.pid) }
        // The gaps the daemon named at its last start; a daemon stopped cleanly has no report, and its old gaps no say.
        facts.uploadGaps = daemon == nil ? [] : try store.uploadGaps()
        facts.uploadsPaused = try store.uploadsPaused()
        facts.waitingForMetrc = queue.queued + queue.uploading
        facts.oldestWaitingReceivedAt = queue.oldestWaitingReceivedAt
        facts.alertAfterHours = configuration.metrc.alertAfterHours
        facts.lastMetrcFault = try store.lastMetrcFault()
        facts.lastSuccessAt = queue.lastSuccessAt
        facts.rejectedKeys = keys.rejectedKeys
        facts.referenceSync = configuration.metrc.referenceSync
        facts.referenceSyncInterval = configuration.metrc.syncIntervalSeconds
        facts.referenceProblem = try store.setting(Store.referenceSyncProblemSetting)
        // Only the licenses served now: a license dropped from the configuration keeps its old rows, synced no more.
        facts.leastRecentReferenceSync = lists.filter { configuration.facility.licenses.contains($0.license) }.compactMap(\.lastSuccessAt).min()
        let verdict = HealthVerdict.decide(facts)
        let fresh = HealthVerdict.daemonReporting(daemon, processExists: facts.processExists, now: now)
        let status = Status(verdict: verdict.level, reasons: verdict.reasons, version: OutlawBuild.version,
                            daemonVersion: fresh ? daemon?.version : nil,
                            daemonRunning: fresh, connectedDevices: fresh ? daemon?.connectedDevices : nil, daemonStatusAt: daemon?.updatedAt,
                            uploadsPaused: facts.uploadsPaused, queue: queue,
                            defaultKey: try store.defaultKeyStatus()?.rawValue ?? "unknown", keys: keys,
                            lastReferenceSync: synced.min(), referenceProblem: facts.referenceProblem)
        if json {
            try printJSON(status)
        } else {
            print("health:        \(verdict.level.rawValue)" + verdict.reasons.map { "\n  - \($0)" }.joined())
            print("daemon:        " + (fresh ? "running, \(daemon?.connectedDevices ?? 0) devices connected" : "not reporting (last: \(formatDate(daemon?.updatedAt)))"))
            print("uploads:       " + (status.uploadsPaused ? "PAUSED (outlawctl resume)" : "running"))
            print("waiting:       \(queue.queued) queued, \(queue.uploading) uploading, \(queue.held) held, \(queue.review) in review")
            print("oldest wait:   " + (queue.oldestWaitingReceivedAt.map { "received \(formatDate($0))" } ?? "-"))
            print("held users:    " + (queue.heldUsers.isEmpty ? "-" : queue.heldUsers.joined(separator: ", ")))
            print("done:          \(queue.uploaded) uploaded, \(queue.failed) failed, \(queue.rejected) rejected in review, \(queue.recorded) scans recorded")
            print("Default key:   \(status.defaultKey)")
            print("keys:          \(status.keys.summary)")
            print("Metrc success: \(formatDate(queue.lastSuccessAt))")
            print("Metrc error:   " + (queue.lastErrorAt.map { "\(formatDate($0)) \(queue.lastErrorMessage ?? "")" } ?? "-"))
            // The least recent list says how stale the copy may be; lists never synced are counted, not hidden.
            let never = lists.count - synced.count
            print("last sync:     " + (status.lastReferenceSync.map {
                formatDate($0) + (never > 0 ? " (least recent list; \(never) of \(lists.count) never synced: outlawctl sync status)"
                                            : " (least recent of \(lists.count) lists)")
            } ?? "never"))
            if let problem = status.referenceProblem { print("reference:     \(problem)") }
        }
        // The verdict is the exit code (as `vault status`), printed first so scripts and people see the same thing.
        if verdict.level != .healthy { throw ExitCode(verdict.level.exitCode) }
    }

    /// Whether the process that wrote the report still exists: a daemon killed (SIGKILL, OOM) leaves its last report
    /// behind, which would otherwise look fresh for `heartbeatTimeout`. EPERM means it exists as another user.
    static func processExists(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
