import Foundation

/// `lastModifiedStart`/`lastModifiedEnd` as Metrc wants them: `yyyy-mm-ddThh:mm:ssZ` (UTC, whole seconds).
enum MetrcWindowTimestamp {
    /// Rounds down for a window start and up for its end, so the window never shrinks.
    static func format(_ date: Date, roundingUp: Bool) -> String {
        let seconds = date.timeIntervalSince1970
        let whole = roundingUp ? seconds.rounded(.up) : seconds.rounded(.down)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second],
                                        from: Date(timeIntervalSince1970: whole))
        func two(_ n: Int?) -> String { String(format: "%02d", n ?? 0) }
        return String(format: "%04d", c.year ?? 0) + "-" + two(c.month) + "-" + two(c.day)
            + "T" + two(c.hour) + ":" + two(c.minute) + ":" + two(c.second) + "Z"
    }
}
