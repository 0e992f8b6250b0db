import Foundation
import Metrc
import OutlawProtocol
import OutlawStore

/// Decides, without I/O, what one sync reads for each kind: everything (first sync, the daily full sync, the
/// small lists) or what changed in a window that overlaps the last one.
public enum SyncPlan {
    /// A `lastModifiedStart`/`lastModifiedEnd` window.
    public struct Window: Sendable, Equatable {
        public let start: Date
        public let end: Date

        public init(start: Date, end: Date) {
            self.start = start
            self.end = end
        }
    }

    /// What to read for one kind.
    public struct Step: Sendable, Equatable {
        public let kind: ReferenceKind
        public let full: Bool
        public let window: Window
    }

    /// The start of a full sync's window: Metrc's first state went live in 2014, so nothing it lists is older.
    public static let historyStart = Date(timeIntervalSince1970: 1_262_304_000)   // 2010-01-01T00:00:00Z
    /// An incremental window starts this long before the last one ended: a record stamped just before our
    /// last read but committed just after it is still found.
    public static let overlap: TimeInterval = 300

    public static func steps(kinds: [ReferenceKind], states: [ReferenceKind: ReferenceSyncState], now: Date,
                             fullEvery: TimeInterval, forceFull: Bool) -> [Step] {
        kinds.map { kind in
            let state = states[kind]
            let due = state?.lastFullAt.map { now.timeIntervalSince($0) >= fullEvery } ?? true
            if forceFull || due || ReferenceLists.isReadWhole(kind) || state?.windowEnd == nil {
                return Step(kind: kind, full: true, window: Window(start: historyStart, end: now))
            }
            let start = min(now, state!.windowEnd!.addingTimeInterval(-overlap))
            return Step(kind: kind, full: false, window: Window(start: start, end: now))
        }
    }

    /// Metrc refused the window as too wide (400 naming the lastModified parameters).
    public static func isTooWide(_ error: MetrcReadError) -> Bool {
        error.status == 400 && error.message.lowercased().contains("lastmodified")
    }

    /// No answer or a server fault: the same read may well work a moment later.
    public static func isWorthRetrying(_ error: MetrcReadError) -> Bool {
        guard let status = error.status else { return true }
        return (500...599).contains(status)
    }

    /// The two halves of a window Metrc refused; nil when it is already down to a second.
    public static func split(_ window: Window) -> [Window]? {
        let width = window.end.timeIntervalSince(window.start)
        guard width > 1 else { return nil }
        let middle = window.start.addingTimeInterval((width / 2).rounded(.down))
        return [Window(start: window.start, end: middle), Window(start: middle, end: window.end)]
    }
}

/// The opaque `cursor` of a `pulled` answer: the license, its change counter at the pull, and which kinds
/// the pull brought up to it (a later pull of another kind gets that kind whole).
public struct PullCursor: Sendable, Equatable {
    public let license: String
    public let change: Int64
    public let kinds: Set<ReferenceKind>

    public init(license: String, change: Int64, kinds: Set<ReferenceKind>) {
        self.license = license
        self.change = change
        self.kinds = kinds
    }

    public var text: String {
        let bits = kinds.reduce(0) { $0 | (1 << $1.bit) }
        let raw = "1|\(license)|\(change)|\(bits)"
        return "c" + Data(raw.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func parse(_ text: String) -> PullCursor? {
        guard text.hasPrefix("c"), text.count < 200 else { return nil }
        var base64 = String(text.dropFirst()).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let raw = String(data: data, encoding: .utf8) else { return nil }
        let parts = raw.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, parts[0] == "1", !parts[1].isEmpty, let change = Int64(parts[2]), change >= 0,
              let bits = Int(parts[3]), bits >= 0, bits < (1 << ReferenceKind.allCases.count) else { return nil }
        let kinds = Set(ReferenceKind.allCases.filter { bits & (1 << $0.bit) != 0 })
        return PullCursor(license: parts[1], change: change, kinds: kinds)
    }
}
