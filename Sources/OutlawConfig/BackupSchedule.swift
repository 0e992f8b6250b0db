import Foundation

/// The daemon's own backups (`[backup]`): what a copy is called, when the next one is due, which old ones go. Pure:
/// the times are the caller's, the names a folder listing's. Here, beside `[backup]`'s keys, as what they mean; the
/// daemon's `BackupService` runs it.
public enum BackupSchedule {
    public static let prefix = "outlawd-"
    public static let suffix = ".sqlite"
    /// What `Store.backup` writes before the rename; one left behind is a copy a crash interrupted.
    public static let partialSuffix = ".partial"

    /// Backups are named by UTC, whatever the machine's time zone.
    private static var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }

    /// `outlawd-20261205T031500Z.sqlite`: the UTC second the copy was started. The names sort as the times do.
    public static func fileName(at date: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ n: Int?) -> String { n.map { $0 < 10 ? "0\($0)" : "\($0)" } ?? "00" }
        let year = String(c.year ?? 0)
        return prefix + String(repeating: "0", count: max(0, 4 - year.count)) + year + two(c.month) + two(c.day)
            + "T" + two(c.hour) + two(c.minute) + two(c.second) + "Z" + suffix
    }

    /// The time one of the daemon's own names says; nil for any other name (a copy `outlawctl backup` wrote under a
    /// name of the operator's, a `.partial`, a date that does not exist), which the daemon never counts or deletes.
    public static func time(of name: String) -> Date? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let stamp = Array(name.dropFirst(prefix.count).dropLast(suffix.count).utf8)
        // YYYYMMDD T HHMMSS Z
        guard stamp.count == 16, stamp[8] == UInt8(ascii: "T"), stamp[15] == UInt8(ascii: "Z") else { return nil }
        let digits = stamp[0..<8] + stamp[9..<15]
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        func number(_ range: Range<Int>) -> Int { stamp[range].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) } }
        let components = DateComponents(year: number(0..<4), month: number(4..<6), day: number(6..<8),
                                        hour: number(9..<11), minute: number(11..<13), second: number(13..<15))
        // The calendar would roll 20261340 over into another day: only a name it writes back the same is one of ours.
        guard let date = calendar.date(from: components), fileName(at: date) == name else { return nil }
        return date
    }

    /// The newest of the daemon's copies among `names` not dated after `now`: one dated later (the clock was set
    /// back since) does not postpone the next copy.
    public static func newest(in names: [String], now: Date) -> Date? {
        names.compactMap(time(of:)).filter { $0 <= now }.max()
    }

    /// When the next copy is due: one interval after the newest copy in the folder (now when there is none), so a
    /// restart never postpones a backup; and never sooner than one interval after this daemon's last try into the
    /// same folder, so a copy that failed is tried again at the next interval, not at once.
    public static func due(newest: Date?, lastAttempt: Date?, interval: TimeInterval, now: Date) -> Date {
        var due = newest.map { $0.addingTimeInterval(interval) } ?? now
        if let lastAttempt { due = max(due, min(lastAttempt, now).addingTimeInterval(interval)) }
        return due
    }

    /// The daemon's copies beyond the newest `keep`, oldest first: what it deletes after a copy succeeded. Names of
    /// any other pattern are never among them.
    public static func beyond(keep: Int, in names: [String]) -> [String] {
        let ours = names.compactMap { name in time(of: name).map { (name, $0) } }.sorted { $0.1 < $1.1 }.map(\.0)
        return Array(ours.dropLast(max(keep, 1)))
    }

    /// Copies of the daemon's own names that a crash left unfinished (`NAME.partial`): deleted with the old ones.
    public static func leftovers(in names: [String]) -> [String] {
        names.filter { $0.hasSuffix(partialSuffix) && time(of: String($0.dropLast(partialSuffix.count))) != nil }.sorted()
    }
}
