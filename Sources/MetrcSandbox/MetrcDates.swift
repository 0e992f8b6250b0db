import Foundation

/// A calendar day as Metrc writes it (`YYYY-MM-DD`), e.g. `ActualDate`, `MoveDate`, `AdjustmentDate`.
public struct MetrcDay: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month),
            (1...MetrcDay.daysIn(month: month, year: year)).contains(day)
        else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses exactly `YYYY-MM-DD` (ten characters, a real calendar day); anything else is `nil`.
    public init?(_ text: String) {
        let chars = Array(text.utf8)
        guard chars.count == 10, chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"),
            let year = MetrcDay.digits(chars[0..<4]), let month = MetrcDay.digits(chars[5..<7]),
            let day = MetrcDay.digits(chars[8..<10])
        else { return nil }
        self.init(year: year, month: month, day: day)
    }

    /// The UTC day of `date`.
    public init(_ date: Date) {
        let days = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
        let (y, m, d) = MetrcDay.civil(fromDays: days)
        self.year = y
        self.month = m
        self.day = d
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let day = MetrcDay(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not YYYY-MM-DD: \(text)"))
        }
        self = day
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    /// Days since 1970-01-01.
    public var daysSinceEpoch: Int { MetrcDay.days(fromCivil: year, month, day) }

    /// Midnight UTC of this day.
    public var startDate: Date { Date(timeIntervalSince1970: Double(daysSinceEpoch) * 86_400) }

    public func adding(days: Int) -> MetrcDay {
        MetrcDay(Date(timeIntervalSince1970: Double(daysSinceEpoch + days) * 86_400))
    }

    public static func < (lhs: MetrcDay, rhs: MetrcDay) -> Bool { lhs.daysSinceEpoch < rhs.daysSinceEpoch }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func digits(_ bytes: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    // Howard Hinnant's civil-from-days algorithms.
    static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// Metrc timestamps: `LastModified` in answers, `lastModifiedStart`/`lastModifiedEnd` in queries.
public enum MetrcTimestamp {
    /// Parses `YYYY-MM-DDThh:mm:ss[.fraction][Z|±hh:mm]` (no zone means UTC) or a bare `YYYY-MM-DD` (midnight UTC).
    public static func parse(_ text: String) -> Date? {
        if let day = MetrcDay(text) { return day.startDate }
        let chars = Array(text.utf8)
        guard chars.count >= 19, let day = MetrcDay(String(decoding: chars[0..<10], as: UTF8.self)),
            chars[10] == UInt8(ascii: "T") || chars[10] == UInt8(ascii: " "),
            chars[13] == UInt8(ascii: ":"), chars[16] == UInt8(ascii: ":"),
            let hour = MetrcDay.digits(chars[11..<13]), let minute = MetrcDay.digits(chars[14..<16]),
            let second = MetrcDay.digits(chars[17..<19]), hour < 24, minute < 60, second < 60
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < chars.count, chars[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < chars.count, chars[index] >= UInt8(ascii: "0"), chars[index] <= UInt8(ascii: "9") {
                fraction += Double(chars[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offsetSeconds = 0
        if index < chars.count {
            if chars[index] == UInt8(ascii: "Z") || chars[index] == UInt8(ascii: "z") {
                index += 1
            } else if chars[index] == UInt8(ascii: "+") || chars[index] == UInt8(ascii: "-") {
                let sign = chars[index] == UInt8(ascii: "-") ? -1 : 1
                guard chars.count == index + 6, chars[index + 3] == UInt8(ascii: ":"),
                    let hours = MetrcDay.digits(chars[(index + 1)..<(index + 3)]),
                    let minutes = MetrcDay.digits(chars[(index + 4)..<(index + 6)]), hours < 24, minutes < 60
                else { return nil }
                offsetSeconds = sign * (hours * 3600 + minutes * 60)
                index += 6
            }
        }
        guard index == chars.count else { return nil }
        let seconds = Double(day.daysSinceEpoch * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds)
        return Date(timeIntervalSince1970: seconds + fraction)
    }

    /// `2025-06-01T07:05:59+00:00`, with microseconds when the instant has a fraction (as Metrc writes it).
    public static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let seconds = Int(micros.quotientAndRemainder(dividingBy: 1_000_000).quotient - (micros < 0 && micros % 1_000_000 != 0 ? 1 : 0))
        let fraction = Int(micros - Int64(seconds) * 1_000_000)
        let days = Int((Double(seconds) / 86_400).rounded(.down))
        let secondOfDay = seconds - days * 86_400
        let day = MetrcDay(Date(timeIntervalSince1970: Double(days) * 86_400))
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var text = "\(day)T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))"
        if fraction != 0 { text += "." + pad(fraction, 6) }
        return text + "+00:00"
    }
}
