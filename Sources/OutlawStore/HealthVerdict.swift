import Foundation

/// What `outlawctl status` concludes from what it read: healthy, degraded (and why) or down. Pure: no I/O.
public struct HealthVerdict: Sendable, Equatable {
    /// The verdict, as `status --json` names it.
    public enum Level: String, Sendable, Codable, Comparable {
        case healthy, degraded, down

        /// `outlawctl status`'s exit code: 0 healthy, 1 degraded, 2 down.
        public var exitCode: Int32 {
            switch self {
            case .healthy: 0
            case .degraded: 1
            case .down: 2
            }
        }

        public static func < (a: Level, b: Level) -> Bool { a.exitCode < b.exitCode }
    }

    /// The last upload attempt Metrc did not answer properly (a 5xx, no answer, a 404).
    public struct MetrcFault: Sendable, Equatable {
        public let at: Date
        public let outcome: AttemptOutcome
        public let message: String?

        public init(at: Date, outcome: AttemptOutcome, message: String?) {
            self.at = at
            self.outcome = outcome
            self.message = message
        }
    }

    /// Everything the verdict depends on, read by the caller.
    public struct Facts: Sendable {
        public var now: Date
        /// The daemon's last report; nil when there is none (never started, or stopped cleanly: it clears it).
        public var heartbeat: DaemonStatus?
        /// Whether the reporting process still exists on this host; nil when unknown.
        public var processExists: Bool?
        /// What the daemon said at start it lacks to upload (Metrc's address, keys), naming the files to fill.
        public var uploadGaps: [String] = []
        public var uploadsPaused = false
        /// Events Metrc is still to take (queued or uploading).
        public var waitingForMetrc = 0
        /// When the oldest unfinished event (held and in review too) was received.
        public var oldestWaitingReceivedAt: Date?
        /// `[metrc] alert_after_hours`.
        public var alertAfterHours = 48.0
        public var lastMetrcFault: MetrcFault?
        /// When Metrc last accepted an upload.
        public var lastSuccessAt: Date?
        /// Keys Metrc refuses: user names, "Default" for the Default key.
        public var rejectedKeys: [String] = []
        /// `[metrc] reference_sync`, and `sync_interval_seconds`.
        public var referenceSync = false
        public var referenceSyncInterval: TimeInterval = 300
        /// What the daemon says is wrong with the reference sync.
        public var referenceProblem: String?
        /// The least recent last success over the configured licenses' lists; nil when none has synced yet.
        public var leastRecentReferenceSync: Date?

        public init(now: Date, heartbeat: DaemonStatus?) {
            self.now = now
            self.heartbeat = heartbeat
        }
    }

    public let level: Level
    /// One sentence each; the reasons for `down` first.
    public let reasons: [String]

    public init(level: Level, reasons: [String]) {
        self.level = level
        self.reasons = reasons
    }

    /// The daemon writes its report every 5 s: one silent for longer than this is hung or gone.
    public static let heartbeatTimeout: TimeInterval = 30

    /// How old the reference copy may get before it counts as stale: three syncs missed, and never less than an hour
    /// (a failed sync is retried within minutes, and a slow full sync of a big facility takes a few).
    public static func referenceMaxAge(syncInterval: TimeInterval) -> TimeInterval {
        max(3600, 3 * syncInterval)
    }

    /// Whether the daemon runs and reports, as the verdict judges it: a report younger than `heartbeatTimeout` from a
    /// process that still exists.
    public static func daemonReporting(_ heartbeat: DaemonStatus?, processExists: Bool?, now: Date) -> Bool {
        guard let heartbeat else { return false }
        return processExists != false && now.timeIntervalSince(heartbeat.updatedAt) < heartbeatTimeout
    }

    public static func decide(_ facts: Facts) -> HealthVerdict {
        var down: [String] = []
        var degraded: [String] = []
        let now = facts.now
        if let heartbeat = facts.heartbeat {
            let silent = now.timeIntervalSince(heartbeat.updatedAt)
            if facts.processExists == false {
                down.append("outlawd (pid \(heartbeat.pid)) is not running: it ended without stopping cleanly after its last report at "
                    + "\(format(heartbeat.updatedAt)) (systemctl status outlawd; journalctl -u outlawd)")
            } else if silent >= heartbeatTimeout {
                down.append("outlawd has not reported for \(age(silent)) (last at \(format(heartbeat.updatedAt))): it is hung or was killed "
                    + "(systemctl status outlawd; journalctl -u outlawd)")
            }
        } else {
            down.append("outlawd is not running: it stopped, or has not started since the store was made (systemctl status outlawd)")
        }
        degraded += facts.uploadGaps
        if facts.uploadsPaused {
            degraded.append("uploads to Metrc are paused (outlawctl resume)")
        }
        if let fault = facts.lastMetrcFault, facts.waitingForMetrc > 0, fault.at > (facts.lastSuccessAt ?? .distantPast) {
            let what = fault.message.map { "\(fault.outcome.displayText): \($0)" } ?? fault.outcome.displayText
            degraded.append("Metrc is failing: the upload at \(format(fault.at)) got \(what), and none has succeeded since "
                + "(\(facts.waitingForMetrc) events waiting; journalctl -u outlawd -p warning)")
        }
        if let oldest = facts.oldestWaitingReceivedAt, now.timeIntervalSince(oldest) >= facts.alertAfterHours * 3600 {
            // In hours, as the setting it is compared with.
            let waited = now.timeIntervalSince(oldest)
            degraded.append("the oldest waiting event was received \(waited < 3600 ? age(waited) : "\(Int(waited / 3600)) h") ago, past [metrc] alert_after_hours "
                + "(\(hours(facts.alertAfterHours))): outlawctl failed; outlawctl batches --state held")
        }
        if !facts.rejectedKeys.isEmpty {
            degraded.append("Metrc refuses the key of \(facts.rejectedKeys.joined(separator: ", ")): the events it signs wait until a new "
                + "key is set (outlawctl key list)")
        }
        if facts.referenceSync {
            if let problem = facts.referenceProblem {
                degraded.append("reference data: \(problem) (outlawctl sync status)")
            }
            let maxAge = referenceMaxAge(syncInterval: facts.referenceSyncInterval)
            if let synced = facts.leastRecentReferenceSync, now.timeIntervalSince(synced) > maxAge {
                degraded.append("reference data is stale: a list was last synced \(age(now.timeIntervalSince(synced))) ago, more than "
                    + "\(age(maxAge)) (outlawctl sync status)")
            }
        }
        let level: Level = !down.isEmpty ? .down : !degraded.isEmpty ? .degraded : .healthy
        return HealthVerdict(level: level, reasons: down + degraded)
    }

    static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    static func age(_ seconds: TimeInterval) -> String {
        if seconds < 120 { return "\(Int(seconds)) s" }
        if seconds < 7200 { return "\(Int(seconds / 60)) min" }
        if seconds < 172_800 { return "\(Int(seconds / 3600)) h" }
        return "\(Int(seconds / 86_400)) days"
    }

    static func hours(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) h" : "\(value) h"
    }
}
