/// The kinds of event a handheld records; each maps to one Metrc action, or none for scans.
public enum EventType: String, CaseIterable, Sendable, Codable {
    case plantHarvest = "plant.harvest"
    case plantMove = "plant.move"
    case plantDestroy = "plant.destroy"
    case packageMove = "package.move"
    case packageAdjust = "package.adjust"
    case plantScan = "plant.scan"
    case packageScan = "package.scan"

    /// Scans are kept for audits and never uploaded.
    public var isUploaded: Bool {
        switch self {
        case .plantScan, .packageScan: return false
        default: return true
        }
    }

    /// The field holding the Metrc tag this event is about.
    public var tagField: String {
        switch self {
        case .plantHarvest, .plantMove, .plantDestroy, .plantScan: return "plant"
        case .packageMove, .packageAdjust, .packageScan: return "package"
        }
    }
}

/// One event that passed validation, with the facts later steps need pulled out of its fields.
public struct ValidatedEvent: Sendable, Hashable {
    public let seq: Int
    public let type: EventType
    public let at: Timestamp
    /// The plant or package tag label.
    public let tag: String
    /// The whole event object as received (unknown fields included), for storage and upload mapping.
    public let fields: [String: JSONValue]

    public init(seq: Int, type: EventType, at: Timestamp, tag: String, fields: [String: JSONValue]) {
        self.seq = seq
        self.type = type
        self.at = at
        self.tag = tag
        self.fields = fields
    }
}

/// A batch whose envelope and every event passed validation; the collector is checked by the store.
public struct ValidatedBatch: Sendable {
    public let id: String
    public let user: String
    /// The license named in the batch, or the daemon's default.
    public let license: String
    public let events: [ValidatedEvent]
    /// Canonical JSON of what makes the batch's content (user, license, events), for duplicate detection.
    public let canonicalContent: String

    public init(id: String, user: String, license: String, events: [ValidatedEvent], canonicalContent: String) {
        self.id = id
        self.user = user
        self.license = license
        self.events = events
        self.canonicalContent = canonicalContent
    }
}
