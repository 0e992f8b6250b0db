/// One event object's members as received, sorted by name, the first of a repeated name kept: what validation
/// reads and the stored canonical JSON is written from, without a dictionary (and its hashing) per event.
public struct EventFields: Sendable, Hashable {
    /// One member of the object.
    public struct Member: Sendable, Hashable {
        public let name: String
        public let value: JSONValue
    }

    /// Sorted by name, as String orders them (the order canonical JSON has always used).
    public let members: [Member]

    /// From members in the order they came, the first of a repeated name kept (as the parser always did).
    init(received: [Member]) {
        var kept: [Member] = []
        kept.reserveCapacity(received.count)
        for member in received where !kept.contains(where: { $0.name == member.name }) {
            kept.append(member)
        }
        kept.sort { $0.name < $1.name }
        members = kept
    }

    public init(_ dictionary: [String: JSONValue]) {
        members = dictionary.map { Member(name: $0.key, value: $0.value) }.sorted { $0.name < $1.name }
    }

    /// The value of the member `name`; an event has a dozen members at most, so a scan beats hashing.
    public subscript(name: String) -> JSONValue? {
        for member in members where member.name == name { return member.value }
        return nil
    }

    public var dictionary: [String: JSONValue] {
        Dictionary(members.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// The object as canonical JSON: exactly `JSONValue.object(dictionary).serialized(sortedKeys: true)`, written
    /// from members already in order.
    public var canonicalJSON: String {
        var out = "{"
        for (i, member) in members.enumerated() {
            if i > 0 { out += "," }
            JSONValue.writeString(member.name, to: &out)
            out += ":"
            member.value.write(to: &out, sortedKeys: true)
        }
        out += "}"
        return out
    }
}

/// One element of a batch's `events` array: an object, or anything else (refused by validation).
public enum BatchEventElement: Sendable, Hashable {
    case object(EventFields)
    case other(JSONValue)
}

/// A `batch` message: the envelope's members, and its `events` when they are an array, parsed straight into
/// `EventFields` (no tree of dictionaries for the events); a non-array `events` stays in the envelope.
public struct BatchMessage: Sendable, Hashable {
    public let envelope: [String: JSONValue]
    public let events: [BatchEventElement]?

    public init(envelope: [String: JSONValue], events: [BatchEventElement]?) {
        self.envelope = envelope
        self.events = events
    }

    /// From a message already parsed whole (tests, tools): the same batch the line parser makes.
    public init(_ message: [String: JSONValue]) {
        if case .array(let list)? = message["events"] {
            var envelope = message
            envelope["events"] = nil
            self.init(envelope: envelope, events: list.map { element in
                if case .object(let fields) = element { return .object(EventFields(fields)) }
                return .other(element)
            })
        } else {
            self.init(envelope: message, events: nil)
        }
    }

    public subscript(name: String) -> JSONValue? { envelope[name] }
}
