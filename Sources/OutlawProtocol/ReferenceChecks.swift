/// Which of an event's fields name something Metrc lists (a tag, a location, a unit, a reason), and in which list:
/// what the scan check looks up in the copy of the reference data.
public enum ReferenceChecks {
    /// One name to look up: the event field it came from, the list, and the value.
    public struct Lookup: Sendable, Equatable {
        public let field: String
        public let kind: ReferenceKind
        public let value: String

        public init(field: String, kind: ReferenceKind, value: String) {
            self.field = field
            self.kind = kind
            self.value = value
        }
    }

    public static func lookups(type: EventType, fields: [String: JSONValue]) -> [Lookup] {
        lookups(type: type, fields: EventFields(fields))
    }

    public static func lookups(type: EventType, fields: EventFields) -> [Lookup] {
        let named: [(String, ReferenceKind)]
        switch type {
        case .plantHarvest, .plantManicure:
            named = [("plant", .plants), ("unit", .units), ("drying_location", .locations), ("drying_sublocation", .sublocations)]
        case .plantMove:
            named = [("plant", .plants), ("location", .locations), ("sublocation", .sublocations)]
        case .plantDestroy:
            named = [("plant", .plants), ("waste_unit", .units), ("waste_method", .wasteMethods), ("reason", .wasteReasons)]
        case .packageMove:
            named = [("package", .packages), ("location", .locations), ("sublocation", .sublocations)]
        case .packageAdjust:
            named = [("package", .packages), ("unit", .units), ("reason", .adjustReasons)]
        case .plantWaste:
            named = [("location", .locations), ("sublocation", .sublocations), ("waste_unit", .units),
                     ("waste_method", .wasteMethods), ("reason", .wasteReasons)]
        case .plantScan:
            named = [("plant", .plants), ("location", .locations)]
        case .packageScan:
            named = [("package", .packages), ("location", .locations)]
        }
        var lookups = named.compactMap { field, kind in
            fields[field]?.stringValue.map { Lookup(field: field, kind: kind, value: $0) }
        }
        if type == .plantWaste, let plants = fields["plants"]?.arrayValue {
            lookups += plants.compactMap { $0.stringValue.map { Lookup(field: "plants", kind: .plants, value: $0) } }
        }
        return lookups
    }

    /// The warning for names the copy does not list, in the words an operator reads.
    public static func warning(_ missing: [Lookup]) -> String? {
        guard !missing.isEmpty else { return nil }
        return missing.map { lookup in
            switch lookup.kind {
            case .plants: "plant \(lookup.value) is not an active plant in Metrc"
            case .packages: "package \(lookup.value) is not an active package in Metrc"
            default: "\(lookup.field) \"\(lookup.value)\" is not in Metrc's \(lookup.kind.rawValue.replacingOccurrences(of: "_", with: " "))"
            }
        }.joined(separator: "; ")
    }
}
