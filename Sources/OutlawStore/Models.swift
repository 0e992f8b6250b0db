import Foundation
import OutlawProtocol

/// A handheld known to the daemon.
public struct Device: Sendable, Equatable, Codable {
    public let id: Int64
    public let name: String
    public let active: Bool
    public let createdAt: Date
    public let lastSeenAt: Date?
}

/// What a person may do from a handheld.
public enum Role: String, Sendable, Codable, CaseIterable {
    case admin, console, user
}

/// An Outlaw user: the person who collects events.
public struct User: Sendable, Equatable, Codable {
    public let id: Int64
    public let name: String
    public let role: Role
    public let active: Bool
    public let createdAt: Date
}

/// The answer to a PIN check.
public enum LoginOutcome: Sendable, Equatable {
    case ok(User)
    case badCredentials
    case inactiveUser
    case locked(until: Date)
}

/// A PIN check as a device asks it; with `ticketDevice`, a good PIN also issues a login ticket for that device.
public struct LoginRequest: Sendable {
    public let name: String
    public let pin: String
    public let ticketDevice: Int64?
    public let ticketLifetime: TimeInterval

    public init(name: String, pin: String, ticketDevice: Int64? = nil, ticketLifetime: TimeInterval = 168 * 3600) {
        self.name = name
        self.pin = pin
        self.ticketDevice = ticketDevice
        self.ticketLifetime = ticketLifetime
    }
}

/// The answer to a PIN check, the ticket a good one issued, and whether this attempt locked the name.
public struct LoginAttempt: Sendable, Equatable {
    public let outcome: LoginOutcome
    public let ticket: LoginTicket?
    public let lockedNow: Bool

    public init(outcome: LoginOutcome, ticket: LoginTicket? = nil, lockedNow: Bool = false) {
        self.outcome = outcome
        self.ticket = ticket
        self.lockedNow = lockedNow
    }
}

/// What happened to one batch offered for storage.
public enum BatchOutcome: Sendable, Equatable {
    case stored(events: Int)
    case duplicate(events: Int)
    case rejected(BatchRejection)

    static func rejected(code: NackCode, message: String) -> BatchOutcome { .rejected(BatchRejection(code, message)) }
}

/// Per-state counts of a batch's events.
public struct EventCounts: Sendable, Equatable, Codable {
    public var total = 0
    public var queued = 0
    public var uploading = 0
    public var uploaded = 0
    public var failed = 0
    public var held = 0
    public var recorded = 0
    public var review = 0
    /// Rejected in review: finished without reaching Metrc (the device's `status` counts them as failed).
    public var rejected = 0

    public init() {}

    /// Events not yet finished (queued, uploading, held or in review).
    public var pending: Int { queued + uploading + held + review }

    mutating func add(state: EventState, count: Int) {
        total += count
        switch state {
        case .queued: queued += count
        case .uploading: uploading += count
        case .uploaded: uploaded += count
        case .failed: failed += count
        case .held: held += count
        case .recorded: recorded += count
        case .review: review += count
        case .rejected: rejected += count
        }
    }

    /// The batch-level state of the contract's `status` answer. Events in review come first (a person must act);
    /// rejected events count as failed ones: finished, never in Metrc.
    public var batchState: BatchState {
        if total == recorded { return .recorded }
        if review > 0 { return .review }
        if held > 0 { return .held }
        if uploading > 0 { return .uploading }
        if queued > 0 { return uploaded > 0 || failed > 0 || rejected > 0 ? .uploading : .queued }
        if failed > 0 || rejected > 0 { return uploaded > 0 ? .partial : .failed }
        return .uploaded
    }
}

/// One event as stored, with whose work it is and where it stands.
public struct StoredEvent: Sendable, Equatable, Codable {
    public let id: Int64
    public let seq: Int
    public let type: String
    public let tag: String
    public let at: String
    public let metrcDate: String
    public let user: String
    public let license: String
    public let state: EventState
    public let fields: String
    /// Metrc's message for a failed event, or why a held event waits.
    public let message: String?
    public let attempts: Int
    /// Which key signed the last upload attempt, and why.
    public let keyKind: KeyKind?
    public let keyReason: String?
    public let metrcID: String?
    public let firstAttemptAt: Date?
    public let lastAttemptAt: Date?
    /// What the scan check found missing from Metrc's lists when the event was stored.
    public var warning: String? = nil
}

/// A stored batch with its events' progress.
public struct BatchSummary: Sendable, Equatable, Codable {
    public let device: String
    public let id: String
    public let user: String
    public let license: String
    public let receivedAt: Date
    public let state: BatchState
    public let events: EventCounts
    public let heldReason: String?
    public let errors: [BatchError]
    /// Events stored with a scan warning (a tag or name missing from the copy of Metrc's lists).
    public var warnings: [BatchError] = []
}

/// A failed event's message, as `status` reports it.
public struct BatchError: Sendable, Equatable, Codable {
    public let seq: Int
    public let message: String
}

/// One line of the append-only audit table.
public struct AuditEntry: Sendable, Equatable, Codable {
    public let id: Int64
    public let at: Date
    public let actor: String
    public let action: String
    public let subject: String?
    public let detail: String?
}
