import GRDB

/// Where one event stands: the events table is the queue, and this column is its single source of truth.
public enum EventState: String, Sendable, Codable, CaseIterable, DatabaseValueConvertible {
    case queued, uploading, uploaded, failed, held
    /// Scans: stored for the record, never uploaded.
    case recorded
    /// Waits for a person's decision (`[review]`): approved, it is `queued` in its old place; rejected, `rejected`.
    case review
    /// Rejected in review: finished, never sent to Metrc; `message` says who rejected it and why.
    case rejected

    /// Not finished: an event in one of these states keeps later events of its tag waiting.
    public static let unfinished: [EventState] = [.queued, .uploading, .held, .review]
}

/// Why held events wait; outlawctl's advice is chosen by it.
public enum HoldCode: String, Sendable, Codable, CaseIterable, DatabaseValueConvertible {
    /// The collector's personal key was refused by Metrc; only a new key releases them.
    case keyRejected = "key_rejected"
    /// The facility requires personal keys and the collector has none.
    case keyRequired = "key_required"
    case defaultKeyRejected = "default_key_rejected"
    case defaultKeyMissing = "default_key_missing"
    /// A write with an unknown outcome that reading Metrc back could not decide: a person checks Metrc.
    case readBackUndecided = "read_back_undecided"

    /// Held for the Default key: released when it works again.
    public static let defaultKey: [HoldCode] = [.defaultKeyRejected, .defaultKeyMissing]
}

/// Which kind of Metrc key signed an upload attempt.
public enum KeyKind: String, Sendable, Codable, CaseIterable, DatabaseValueConvertible {
    case personal
    case `default`
}

/// How one upload attempt ended, as recorded on it.
public enum AttemptOutcome: String, Sendable, Codable, CaseIterable, DatabaseValueConvertible {
    case accepted
    /// Metrc refused some objects (400 with rows) and applied nothing.
    case rejected
    /// A 400 whose rows could not be matched to objects: the request was split.
    case rowsUnclear = "rows_unclear"
    case tooLarge = "too_large"
    case rateLimited = "rate_limited"
    case notFound = "not_found"
    /// A 5xx or a 400 with only a message: Metrc may have applied it.
    case serverFault = "server_fault"
    /// No answer (timeout, reset, refused): Metrc may have applied it.
    case noAnswer = "no_answer"
    /// The signing key was refused (401/403).
    case unauthorized
    /// The daemon stopped with the request in flight.
    case daemonStopped = "daemon_stopped"
    /// Recorded ahead of a free request slot, then never sent: uploads were paused or the daemon stopped first.
    case notSent = "not_sent"

    /// How people read it (logs, `outlawctl`); the raw value is what the store holds.
    public var displayText: String {
        switch self {
        case .accepted: "accepted"
        case .rejected: "rejected"
        case .rowsUnclear: "rejected (rows unclear)"
        case .tooLarge: "too large"
        case .rateLimited: "rate limited"
        case .notFound: "not found"
        case .serverFault: "server fault"
        case .noAnswer: "no answer"
        case .unauthorized: "unauthorized"
        case .daemonStopped: "unknown (daemon stopped)"
        case .notSent: "not sent"
        }
    }
}

/// A batch's state as the contract's `status` answer and `outlawctl batches --state` name it, derived from its events.
public enum BatchState: String, Sendable, Codable, CaseIterable {
    case queued, uploading, uploaded, partial, failed, held, recorded
    /// Some events wait for a person's review (`outlawctl review`).
    case review
}
