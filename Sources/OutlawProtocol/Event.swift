/// The kinds of event a handheld records; each maps to one Metrc action, or none for scans.
public enum EventType: String, CaseIterable, Sendable, Codable {
    case plantHarvest = "plant.harvest"
    case plantMove = "plant.move"
    case plantDestroy = "plant.destroy"
    case packageMove = "package.move"
    case packageAdjust = "package.adjust"
    /// A partial harvest: weight taken from a plant that stays.
    case plantManicure = "plant.manicure"
    /// One waste record for one or more plants, or for a whole location; the plants stay.
    case plantWaste = "plant.waste"
    case plantScan = "plant.scan"
    case packageScan = "package.scan"

    /// Scans are kept for audits and never uploaded.
    public var isUploaded: Bool {
        switch self {
        case .plantScan, .packageScan: return false
        default: return true
        }
    }

    /// The field holding the Metrc tag this event is about (`plants`, a list, for a waste record).
    public var tagField: String {
        switch self {
        case .plantHarvest, .plantMove, .plantDestroy, .plantScan, .plantManicure: return "plant"
        case .plantWaste: return "plants"
        case .packageMove, .packageAdjust, .packageScan: return "package"
        }
    }

    /// Whether the event's tags are plants (else packages).
    public var isAboutPlants: Bool { tagField != "package" }

    /// What the event keeps its place in the order of: its tag, each plant a waste record names, or for a
    /// waste record of a whole room, that room (`location:NAME`, so wastes of one room keep their order too).
    public func orderTags(_ fields: [String: JSONValue]) -> [String] {
        orderTags(EventFields(fields))
    }

    public func orderTags(_ fields: EventFields) -> [String] {
        if self == .plantWaste {
            let plants = fields["plants"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if !plants.isEmpty { return Array(Set(plants)).sorted() }
            return fields["location"]?.stringValue.map { ["location:" + $0] } ?? []
        }
        return fields[tagField]?.stringValue.map { [$0] } ?? []
    }
}

/// One event that passed validation, with the facts later steps need pulled out of its fields.
public struct ValidatedEvent: Sendable, Hashable {
    public let seq: Int
    public let type: EventType
    public let at: Timestamp
    /// The plant or package tag label (for a waste record, its first plant or its room as in `tags`).
    public let tag: String
    /// Every tag the event keeps its place in the order of (`EventType.orderTags`).
    public var tags: [String] { type.orderTags(eventFields) }
    /// The whole event object as received (unknown fields included), members in canonical order.
    public let eventFields: EventFields
    /// The same as a dictionary, for code that is not on the ingest path.
    public var fields: [String: JSONValue] { eventFields.dictionary }
    /// `fields` as canonical JSON (sorted keys): what the store keeps, written once per event and also the
    /// event's part of the batch's canonical content.
    public let canonicalJSON: String

    public init(seq: Int, type: EventType, at: Timestamp, tag: String, eventFields: EventFields) {
        self.seq = seq
        self.type = type
        self.at = at
        self.tag = tag
        self.eventFields = eventFields
        self.canonicalJSON = eventFields.canonicalJSON
    }

    public init(seq: Int, type: EventType, at: Timestamp, tag: String, fields: [String: JSONValue]) {
        self.init(seq: seq, type: type, at: at, tag: tag, eventFields: EventFields(fields))
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
    /// The login ticket the batch carried: proof of its user, not part of its content (a resend may carry a newer one).
    public let ticket: String?

    public init(id: String, user: String, license: String, events: [ValidatedEvent], canonicalContent: String,
                ticket: String? = nil) {
        self.id = id
        self.ticket = ticket
        self.user = user
        self.license = license
        self.events = events
        self.canonicalContent = canonicalContent
    }
}
