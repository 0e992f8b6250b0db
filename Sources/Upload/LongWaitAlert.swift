import Foundation
import Logging
import OutlawProtocol
import OutlawStore
import Synchronization

/// A journal warning, at most hourly, while an event has waited longer than `alert_after_hours` for Metrc.
final class LongWaitAlert: Sendable {
    let store: Store
    let logger: Logger
    let afterHours: Double
    private let lastAlert = Mutex<Date?>(nil)

    init(store: Store, logger: Logger, afterHours: Double) {
        self.store = store
        self.logger = logger
        self.afterHours = afterHours
    }

    func check(now: Date) {
        if let last = lastAlert.withLock({ $0 }), now.timeIntervalSince(last) < 3600 { return }
        guard let stats = try? store.queueStats(), let oldest = stats.oldestWaitingReceivedAt else { return }
        let hours = now.timeIntervalSince(oldest) / 3600
        guard hours >= afterHours else { return }
        lastAlert.withLock { $0 = now }
        logger.warning("events have waited \(Int(hours)) hours for Metrc", metadata: [
            "oldest_received": "\(Timestamp.format(oldest))", "oldest_event": "\(stats.oldestWaitingEvent ?? "")",
            "waiting": "\(stats.waiting)", "held": "\(stats.held)", "review": "\(stats.review)", "held_users": "\(stats.heldUsers.joined(separator: ","))",
        ])
    }
}
