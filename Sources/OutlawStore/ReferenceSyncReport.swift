import Foundation
import OutlawProtocol

// Here, not in Reference: outlawctl reads a sync's report and its problem, and needs nothing of the sync itself.

/// What one sync did for one kind of one license: `outlawctl sync` prints it.
public struct KindSyncReport: Sendable, Codable, Equatable {
    public var license: String
    public var kind: ReferenceKind
    public var full: Bool
    public var fetched = 0
    public var changed = 0
    public var removed = 0
    public var requests = 0
    public var rateLimited = 0
    public var seconds = 0.0
    public var error: String?

    public init(license: String, kind: ReferenceKind, full: Bool) {
        self.license = license
        self.kind = kind
        self.full = full
    }
}

/// One whole sync: every kind of every license.
public struct SyncReport: Sendable, Codable, Equatable {
    public var startedAt: Date
    public var seconds: Double
    public var kinds: [KindSyncReport]
    /// Set when the sync could not run at all (no Default key).
    public var error: String?

    public init(startedAt: Date, seconds: Double, kinds: [KindSyncReport], error: String? = nil) {
        self.startedAt = startedAt
        self.seconds = seconds
        self.kinds = kinds
        self.error = error
    }

    public var failed: Bool { error != nil || kinds.contains { $0.error != nil } }
}

extension Store {
    /// The setting that says what is wrong with the reference sync (shown by `outlawctl status` and STATUS=).
    public static let referenceSyncProblemSetting = "reference_sync_problem"
}
