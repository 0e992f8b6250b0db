import Foundation
import OutlawProtocol

/// What a retention archive is called: `outlawd-archive-2025-03.0001.jsonl.gz`, the UTC month its batches were
/// received and its part number within that month (a month archived over several runs, or larger than one part,
/// has several). The names sort as the months and parts do. Pure.
public struct ArchiveName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let prefix = "outlawd-archive-"
    public static let suffix = ".jsonl.gz"
    /// What a file is called while it is written, before the rename that gives it its name.
    public static let partialSuffix = ".partial"

    /// `YYYY-MM`.
    public let month: String
    public let part: Int

    public init(month: String, part: Int) {
        self.month = month
        self.part = part
    }

    public var fileName: String {
        let digits = String(part)
        return Self.prefix + month + "." + String(repeating: "0", count: max(0, 4 - digits.count)) + digits + Self.suffix
    }

    public var description: String { fileName }

    /// The name's month and part; nil for any other name (a `.partial`, the operator's own files).
    public init?(fileName: String) {
        guard fileName.hasPrefix(Self.prefix), fileName.hasSuffix(Self.suffix) else { return nil }
        let stem = fileName.dropFirst(Self.prefix.count).dropLast(Self.suffix.count)
        let pieces = stem.split(separator: ".", omittingEmptySubsequences: false)
        guard pieces.count == 2, Self.isMonth(pieces[0]), pieces[1].count >= 4, pieces[1].allSatisfy(\.isASCIIDigit),
              let part = Int(pieces[1]), part >= 1
        else { return nil }
        self.init(month: String(pieces[0]), part: part)
        guard self.fileName == fileName else { return nil }
    }

    public static func < (a: ArchiveName, b: ArchiveName) -> Bool { (a.month, a.part) < (b.month, b.part) }

    /// The UTC month of an instant, `YYYY-MM`.
    public static func month(of date: Date) -> String {
        String(Timestamp.format(date).prefix(7))
    }

    static func isMonth(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 7, bytes[4] == UInt8(ascii: "-") else { return false }
        let digits = bytes[0..<4] + bytes[5..<7]
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return false }
        let month = Int(bytes[5] - 48) * 10 + Int(bytes[6] - 48)
        return (1...12).contains(month)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
