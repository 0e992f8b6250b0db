import Foundation
import Logging
import OutlawProtocol
import OutlawStore
import Synchronization

/// A journal warning, at most hourly, while an event has waited longer than `alert_after_hours` for Metrc.
final class LongWaitAlert: Sendable {
    let store: Store
    let logger: Logger
    /// `alert_after_hours`; a reload may change it.
    private let threshold: Mutex<Double>
    private let lastAlert = Mutex<Date?>(nil)
    private let lastCheck = Mutex<Date?>(nil)

    init(store: Store, logger: Logger, afterHours: Double) {
        self.store = store
        self.logger = logger
        threshold = Mutex(afterHours)
    }

    /// How often the queue is looked at: the uploader calls `check` after every pass, which under load is hundreds
    /// of times a second, and counting the queue reads every event row. A tenth of the threshold, at most a minute,
    /// is prompt enough for an alert about hours.
    static func checkInterval(afterHours: Double) -> TimeInterval {
        min(60, afterHours * 3600 / 10)
    }

    var afterHours: Double { threshold.withLock { $0 } }

    func setAfterHours(_ hours: Double) { threshold.withLock { $0 = hours } }

    /// Looks at the queue when due; counting it reads every waiting event, so on a thread of its own.
    func check(now: Date) async {
        let afterHours = self.afterHours
        let due = lastCheck.withLock { last in
            if let last, now.timeIntervalSince(last) < Self.checkInterval(afterHours: afterHours) { return false }
            last = now
            return true
        }
        guard due else { return }
        if let last = lastAlert.withLock({ $0 }), now.timeIntervalSince(last) < 3600 { return }
        let store = self.store
        guard let stats = try? await Blocking.run({ try store.queueStats(countingFinished: false) }),
              let oldest = stats.oldestWaitingReceivedAt
        else { return }
        let hours = now.timeIntervalSince(oldest) / 3600
        guard hours >= afterHours else { return }
        lastAlert.withLock { $0 = now }
        logger.warning("events have waited \(Int(hours)) hours for Metrc", metadata: MessageID.longWait.metadata([
            "oldest_received": "\(Timestamp.format(oldest))", "oldest_event": "\(stats.oldestWaitingEvent ?? "")",
            "waiting": "\(stats.waiting)", "held": "\(stats.held)", "review": "\(stats.review)", "held_users": "\(stats.heldUsers.joined(separator: ","))",
        ]))
    }
}
