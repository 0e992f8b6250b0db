import Foundation

/// One problem with one event, as reported in a `nack`'s `errors`.
public struct EventError: Sendable, Hashable {
    /// The event's `seq`, when it had a usable one.
    public let seq: Int?
    public let field: String
    public let message: String

    public init(seq: Int?, field: String, message: String) {
        self.seq = seq
        self.field = field
        self.message = message
    }
}

/// Why a batch was refused before anything of it was stored.
public struct BatchRejection: Error, Sendable, Hashable {
    public let code: NackCode
    public let message: String
    public let errors: [EventError]

    public init(_ code: NackCode, _ message: String, errors: [EventError] = []) {
        self.code = code
        self.message = message
        self.errors = errors
    }
}

/// The `nack` codes of the contract.
public enum NackCode: String, Sendable, Hashable {
    case badBatch = "bad_batch"
    case badEvents = "bad_events"
    case unknownUser = "unknown_user"
    case inactiveUser = "inactive_user"
    case unknownLicense = "unknown_license"
    case tooManyEvents = "too_many_events"
    case idConflict = "id_conflict"
    case unavailable = "unavailable"
    /// No ticket of a login of this user on this device covers the batch (`errors` lists the uncovered seqs).
    case loginRequired = "login_required"
}

/// Checks a `batch` message against every rule of the contract; pure, so every rule is tested directly.
public struct BatchValidator: Sendable {
    public let maxBatchEvents: Int
    public let defaultLicense: String
    public let licenses: Set<String>
    /// How far ahead of the server clock `at` may be.
    public let maxFutureSkew: TimeInterval

    public init(maxBatchEvents: Int, defaultLicense: String, licenses: Set<String>, maxFutureSkew: TimeInterval = 24 * 3600) {
        self.maxBatchEvents = maxBatchEvents
        self.defaultLicense = defaultLicense
        self.licenses = licenses.union([defaultLicense])
        self.maxFutureSkew = maxFutureSkew
    }

    /// The batch id as the device sent it, if it is usable in an answer.
    public static func echoedID(_ message: BatchMessage) -> String? {
        message["id"]?.stringValue
    }

    /// From a message already parsed whole (tests, tools): exactly what validating its line gives.
    public func validate(_ message: [String: JSONValue], now: Date) -> Result<ValidatedBatch, BatchRejection> {
        validate(BatchMessage(message), now: now)
    }

    public func validate(_ message: BatchMessage, now: Date) -> Result<ValidatedBatch, BatchRejection> {
        guard let idValue = message["id"] else { return .failure(.init(.badBatch, "id is missing")) }
        guard let id = idValue.stringValue else { return .failure(.init(.badBatch, "id must be a string")) }
        guard (1...128).contains(id.utf8.count), id.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else {
            return .failure(.init(.badBatch, "id must be 1 to 128 printable ASCII characters"))
        }
        guard let userValue = message["user"] else { return .failure(.init(.badBatch, "user is missing")) }
        guard let user = userValue.stringValue, Names.isValidUserName(user) else {
            return .failure(.init(.badBatch, "user must be 1 to 64 printable characters"))
        }
        var ticket: String?
        if let ticketValue = message["ticket"], !ticketValue.isNull {
            guard let t = ticketValue.stringValue, (1...Names.maxTicketBytes).contains(t.utf8.count) else {
                return .failure(.init(.badBatch, "ticket must be the string a login answered"))
            }
            ticket = t
        }
        guard let events = message.events else {
            let problem = message["events"] == nil ? "events is missing" : "events must be an array"
            return .failure(.init(.badBatch, problem))
        }
        guard !events.isEmpty else { return .failure(.init(.badBatch, "events must hold at least one event")) }
        guard events.count <= maxBatchEvents else {
            return .failure(.init(.tooManyEvents, "\(events.count) events; at most \(maxBatchEvents) a batch"))
        }
        var license = defaultLicense
        if let licenseValue = message["license"], !licenseValue.isNull {
            guard let named = licenseValue.stringValue else { return .failure(.init(.badBatch, "license must be a string")) }
            guard licenses.contains(named) else {
                return .failure(.init(.unknownLicense, "license \(named) is not served by this daemon"))
            }
            license = named
        }

        var errors: [EventError] = []
        var valid: [ValidatedEvent] = []
        valid.reserveCapacity(events.count)
        var seenSeqs = Set<Int>()
        let latest = now.addingTimeInterval(maxFutureSkew)
        for (index, value) in events.enumerated() {
            switch validateEvent(value, index: index, latest: latest, seenSeqs: &seenSeqs) {
            case .success(let event): valid.append(event)
            case .failure(let problems): errors.append(contentsOf: problems.list)
            }
        }
        if !errors.isEmpty {
            let invalidCount = Set(errors.map { $0.seq ?? -1 }).count
            let noun = invalidCount == 1 ? "event is" : "events are"
            return .failure(.init(.badEvents, "\(invalidCount) \(noun) invalid", errors: errors))
        }
        // The same text as serializing {"events","license","user"} with sorted keys, built from each event's
        // canonical JSON (which the store keeps too) instead of serializing every event twice.
        var canonical = #"{"events":["#
        canonical.reserveCapacity(valid.reduce(64) { $0 + $1.canonicalJSON.utf8.count + 1 })
        for (i, event) in valid.enumerated() {
            if i > 0 { canonical += "," }
            canonical += event.canonicalJSON
        }
        canonical += #"],"license":"#
        JSONValue.writeString(license, to: &canonical)
        canonical += #","user":"#
        JSONValue.writeString(user, to: &canonical)
        canonical += "}"
        return .success(ValidatedBatch(id: id, user: user, license: license, events: valid, canonicalContent: canonical,
                                       ticket: ticket))
    }

    struct Problems: Error { var list: [EventError] }

    private func validateEvent(_ element: BatchEventElement, index: Int, latest: Date, seenSeqs: inout Set<Int>)
        -> Result<ValidatedEvent, Problems>
    {
        guard case .object(let fields) = element else {
            return .failure(Problems(list: [EventError(seq: nil, field: "events[\(index)]", message: "must be an object")]))
        }
        var problems: [EventError] = []
        var seq: Int?
        switch fields["seq"] {
        case nil: problems.append(EventError(seq: nil, field: "seq", message: "is missing (events[\(index)])"))
        case .some(let v):
            if let s = v.integerValue, s >= 1 {
                if seenSeqs.insert(s).inserted {
                    seq = s
                } else {
                    problems.append(EventError(seq: s, field: "seq", message: "is used by another event of this batch"))
                }
            } else {
                problems.append(EventError(seq: nil, field: "seq", message: "must be an integer of at least 1 (events[\(index)])"))
            }
        }
        let reportSeq = seq ?? fields["seq"]?.integerValue
        func problem(_ field: String, _ message: String) {
            problems.append(EventError(seq: reportSeq, field: field, message: message))
        }

        var type: EventType?
        switch fields["type"] {
        case nil: problem("type", "is missing")
        case .some(let v):
            if let name = v.stringValue, let t = EventType(rawValue: name) {
                type = t
            } else {
                let shown = v.stringValue.map { "\"\($0)\"" } ?? "a non-string"
                problem("type", "\(shown) is not an event type; expected one of \(EventType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        var at: Timestamp?
        switch fields["at"] {
        case nil: problem("at", "is missing")
        case .some(let v):
            if let text = v.stringValue, let ts = Timestamp(text) {
                if ts.date > latest {
                    problem("at", "is more than 24 hours ahead of the server's clock")
                } else {
                    at = ts
                }
            } else {
                problem("at", "must be an RFC 3339 time with an offset, e.g. 2026-11-28T14:03:11-08:00")
            }
        }

        var tag: String?
        if let type {
            for rule in FieldRule.rules(for: type) {
                if let message = rule.check(fields[rule.name]) { problem(rule.name, message) }
            }
            tag = type.orderTags(fields).first
            if type == .plantWaste { checkWasteTargets(fields, problem: problem) }
        }
        guard problems.isEmpty, let seq, let type, let at, let tag else { return .failure(Problems(list: problems)) }
        return .success(ValidatedEvent(seq: seq, type: type, at: at, tag: tag, eventFields: fields))
    }
}

extension BatchValidator {
    /// A waste record names 1 to 100 plants, or a whole location, never both.
    func checkWasteTargets(_ fields: EventFields, problem: (String, String) -> Void) {
        let plants = fields["plants"].flatMap { $0.isNull ? nil : $0 }
        let location = fields["location"].flatMap { $0.isNull ? nil : $0 }
        switch (plants, location) {
        case (nil, nil):
            problem("plants", "is missing: name 1 to 100 plants, or a location for waste of a whole room")
        case (.some, .some):
            problem("location", "must not be given with plants: a waste record is for plants or for a location")
        case (.some(let value), nil):
            guard let list = value.arrayValue else { return problem("plants", "must be an array of tags") }
            guard (1...100).contains(list.count) else { return problem("plants", "must name 1 to 100 plants, not \(list.count)") }
            for (i, item) in list.enumerated() {
                guard let tag = item.stringValue, FieldRule.isTag(tag) else {
                    return problem("plants[\(i)]", "must be a Metrc tag: exactly 24 characters A-Z 0-9")
                }
            }
        case (nil, .some(let value)):
            if let message = FieldRule.required("location", .text).check(value) { problem("location", message) }
        }
    }
}

/// One field's rule within an event type.
struct FieldRule: Sendable {
    enum Kind: Sendable {
        case tag
        case text
        case positiveNumber
        case nonNegativeNumber
        case nonZeroNumber
        /// A Metrc unit of weight (Metrc's weight units, any case).
        case weightUnit
        case positiveInteger
    }

    /// Metrc's units of weight.
    static let weightUnits: Set<String> = ["grams", "kilograms", "milligrams", "ounces", "pounds"]

    let name: String
    let kind: Kind
    let optional: Bool

    static func required(_ name: String, _ kind: Kind) -> FieldRule { FieldRule(name: name, kind: kind, optional: false) }
    static func optional(_ name: String, _ kind: Kind = .text) -> FieldRule { FieldRule(name: name, kind: kind, optional: true) }

    /// A message saying what is wrong, or nil when the value is fine.
    func check(_ value: JSONValue?) -> String? {
        guard let value, !value.isNull else { return optional ? nil : "is missing" }
        switch kind {
        case .tag:
            guard let s = value.stringValue else { return "must be a string" }
            return FieldRule.isTag(s) ? nil : "must be a Metrc tag: exactly 24 characters A-Z 0-9"
        case .text:
            guard let s = value.stringValue else { return "must be a string" }
            if s.trimmingCharacters(in: .whitespaces).isEmpty { return optional ? nil : "must not be empty" }
            return s.count > 256 ? "must be at most 256 characters" : nil
        case .positiveNumber:
            guard let n = value.numberValue, n.isFinite else { return "must be a number" }
            return n > 0 ? nil : "must be greater than 0"
        case .nonNegativeNumber:
            guard let n = value.numberValue, n.isFinite else { return "must be a number" }
            return n >= 0 ? nil : "must be 0 or more"
        case .nonZeroNumber:
            guard let n = value.numberValue, n.isFinite else { return "must be a number" }
            return n != 0 ? nil : "must not be 0"
        case .weightUnit:
            guard let s = value.stringValue else { return "must be a string" }
            return FieldRule.weightUnits.contains(s.lowercased()) ? nil : "\"\(s)\" is not a unit of weight; expected Grams, Kilograms, Milligrams, Ounces or Pounds"
        case .positiveInteger:
            guard let n = value.integerValue else { return "must be a whole number" }
            return n >= 1 ? nil : "must be at least 1"
        }
    }

    static func isTag(_ s: String) -> Bool {
        let u = s.utf8
        return u.count == 24 && u.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) }
    }

    static func rules(for type: EventType) -> [FieldRule] {
        switch type {
        case .plantHarvest:
            return [.required("plant", .tag), .required("weight", .positiveNumber), .required("unit", .text),
                    .required("drying_location", .text), .optional("drying_sublocation"), .optional("harvest_name"),
                    .optional("patient_license")]
        case .plantMove:
            return [.required("plant", .tag), .required("location", .text), .optional("sublocation")]
        case .plantDestroy:
            return [.required("plant", .tag), .required("waste_weight", .nonNegativeNumber), .required("waste_unit", .text),
                    .required("waste_method", .text), .required("waste_material", .text), .required("reason", .text),
                    .optional("note")]
        case .packageMove:
            return [.required("package", .tag), .required("location", .text), .optional("sublocation")]
        case .packageAdjust:
            return [.required("package", .tag), .required("quantity", .nonZeroNumber), .required("unit", .text),
                    .required("reason", .text), .optional("note")]
        case .plantManicure:
            return [.required("plant", .tag), .required("weight", .positiveNumber), .required("unit", .weightUnit),
                    .required("drying_location", .text), .optional("drying_sublocation"), .optional("harvest_name"),
                    .optional("plant_count", .positiveInteger), .optional("patient_license")]
        case .plantWaste:
            // `plants` or `location`: checked together by `checkWasteTargets`.
            return [.optional("sublocation"), .required("waste_weight", .positiveNumber), .required("waste_unit", .weightUnit),
                    .required("waste_method", .text), .required("waste_material", .text), .required("reason", .text),
                    .optional("note")]
        case .plantScan:
            return [.required("plant", .tag), .optional("location")]
        case .packageScan:
            return [.required("package", .tag), .optional("location")]
        }
    }
}
