import Foundation
import OutlawConfig
import OutlawStore

/// What is known of one key, personal or the Default key, as `KeyHealthPolicy` needs it.
public struct KeyFacts: Sendable, Equatable {
    /// When the key was set (the Default key: when this daemon first used it).
    public var setAt: Date
    public var status: KeyStatus
    public var lastCheckAt: Date?
    public var lastCheckResult: KeyCheckResult?
    /// The expiry Metrc reported, when it reports one: it wins over the expected lifetime.
    public var metrcExpiresAt: Date?

    public init(setAt: Date, status: KeyStatus, lastCheckAt: Date? = nil, lastCheckResult: KeyCheckResult? = nil, metrcExpiresAt: Date? = nil) {
        self.setAt = setAt
        self.status = status
        self.lastCheckAt = lastCheckAt
        self.lastCheckResult = lastCheckResult
        self.metrcExpiresAt = metrcExpiresAt
    }

    public init(_ record: KeyHealthRecord) {
        self.init(setAt: record.setAt, status: record.status, lastCheckAt: record.lastCheckAt, lastCheckResult: record.lastCheckResult,
                  metrcExpiresAt: record.metrcExpiresAt)
    }

    /// The Default key: its status is the store's `defaultKeyStatus()` (nil, never checked, counts as unverified).
    public init(_ health: DefaultKeyHealth, status: KeyStatus?) {
        self.init(setAt: health.since, status: status ?? .unverified, lastCheckAt: health.lastCheckAt, lastCheckResult: health.lastCheckResult)
    }
}

/// A key's expiry is near: what the daily warning says.
public struct ExpiryWarning: Sendable, Equatable {
    /// The expected expiry day, `YYYY-MM-DD`.
    public let expires: String
    /// Whole days from today to that day: 0 is today, negative is past.
    public let daysLeft: Int
    /// Today, `YYYY-MM-DD`: remembered so the warning is logged once that day.
    public let day: String

    public init(expires: String, daysLeft: Int, day: String) {
        self.expires = expires
        self.daysLeft = daysLeft
        self.day = day
    }

    /// "in 5 days", "tomorrow", "today", "3 days ago".
    public var when: String {
        switch daysLeft {
        case 0: return "today"
        case 1: return "tomorrow"
        case 2...: return "in \(daysLeft) days"
        case -1: return "yesterday"
        default: return "\(-daysLeft) days ago"
        }
    }
}

/// When a key is due for its check with Metrc, when it is expected to expire, and when that is warned about:
/// pure, with the time (`now`) and the calendar (days are the facility's local days) given by the caller.
public struct KeyHealthPolicy: Sendable, Equatable {
    public var checkInterval: TimeInterval
    public var lifetimeDays: Int
    public var warnDays: Int
    /// A check that got no answer is tried again after this, or after the interval when that is shorter.
    public var unreachableRetry: TimeInterval
    public var calendar: Calendar

    public init(checkInterval: TimeInterval, lifetimeDays: Int, warnDays: Int, unreachableRetry: TimeInterval = 300,
                calendar: Calendar = .current)
    {
        self.checkInterval = checkInterval
        self.lifetimeDays = lifetimeDays
        self.warnDays = warnDays
        self.unreachableRetry = unreachableRetry
        self.calendar = calendar
    }

    /// From `[keys]`.
    public init(_ keys: DaemonConfiguration.Keys, calendar: Calendar = .current) {
        self.init(checkInterval: keys.checkIntervalHours * 3600, lifetimeDays: keys.lifetimeDays, warnDays: keys.warnDays, calendar: calendar)
    }

    /// A key is checked when it never was, when its last check is `checkInterval` old (an unanswered one sooner),
    /// or when the clock went back past it. A rejected key is not: only a new key helps, and setting one checks it.
    public func isDue(_ key: KeyFacts, now: Date) -> Bool {
        guard key.status != .rejected else { return false }
        guard let last = key.lastCheckAt else { return true }
        let elapsed = now.timeIntervalSince(last)
        if elapsed < 0 { return true }
        let wait = key.lastCheckResult == .unreachable ? min(checkInterval, unreachableRetry) : checkInterval
        return elapsed >= wait
    }

    /// Metrc's date when it gave one; otherwise the start of the day `lifetimeDays` after the day the key was set.
    public func expectedExpiry(_ key: KeyFacts) -> Date {
        if let reported = key.metrcExpiresAt { return reported }
        let setDay = calendar.startOfDay(for: key.setAt)
        return calendar.date(byAdding: .day, value: lifetimeDays, to: setDay) ?? setDay.addingTimeInterval(Double(lifetimeDays) * 86_400)
    }

    /// Whole local days from `now`'s day to the expected expiry day.
    public func daysLeft(_ key: KeyFacts, now: Date) -> Int {
        let from = calendar.startOfDay(for: now)
        let to = calendar.startOfDay(for: expectedExpiry(key))
        return calendar.dateComponents([.day], from: from, to: to).day ?? 0
    }

    /// Within `warnDays` of its expected expiry (or past it). A rejected key is an error already, not a warning.
    public func isExpiring(_ key: KeyFacts, now: Date) -> Bool {
        key.status != .rejected && daysLeft(key, now: now) <= warnDays
    }

    /// The warning to log now, if the key is expiring and none was logged today (`lastWarnedDay`, `YYYY-MM-DD`).
    public func warning(_ key: KeyFacts, now: Date, lastWarnedDay: String?) -> ExpiryWarning? {
        guard isExpiring(key, now: now) else { return nil }
        let today = day(now)
        guard lastWarnedDay != today else { return nil }
        return ExpiryWarning(expires: day(expectedExpiry(key)), daysLeft: daysLeft(key, now: now), day: today)
    }

    /// `YYYY-MM-DD` of the local day `date` falls in.
    public func day(_ date: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
    }
}
