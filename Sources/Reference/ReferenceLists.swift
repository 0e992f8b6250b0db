import Foundation
import Metrc
import OutlawProtocol
import OutlawStore

/// Where Metrc keeps each kind of reference data, and how one of its records becomes the item handhelds pull.
public enum ReferenceLists {
    /// One Metrc list read for a kind.
    public struct Endpoint: Sendable, Equatable {
        public let path: String
        /// Facility-scoped (`licenseNumber`); the global lists take none.
        public let licensed: Bool
    }

    /// The active lists whose records make up the kind.
    public static func active(_ kind: ReferenceKind) -> [Endpoint] {
        switch kind {
        case .locations: [Endpoint(path: "/locations/v2/active", licensed: true)]
        case .sublocations: [Endpoint(path: "/sublocations/v2/active", licensed: true)]
        case .strains: [Endpoint(path: "/strains/v2/active", licensed: true)]
        case .items: [Endpoint(path: "/items/v2/active", licensed: true)]
        case .plants: [Endpoint(path: "/plants/v2/vegetative", licensed: true), Endpoint(path: "/plants/v2/flowering", licensed: true)]
        case .packages: [Endpoint(path: "/packages/v2/active", licensed: true)]
        case .units: [Endpoint(path: "/unitsofmeasure/v2/active", licensed: false)]
        case .wasteMethods: [Endpoint(path: "/plants/v2/waste/methods/all", licensed: false)]
        case .wasteReasons: [Endpoint(path: "/plants/v2/waste/reasons", licensed: true)]
        case .adjustReasons: [Endpoint(path: "/packages/v2/adjust/reasons", licensed: true)]
        }
    }

    /// The list of records that left the active list (harvested, destroyed, finished), read with the same window
    /// in an incremental sync so they are marked removed at once rather than at the next full sync.
    public static func inactive(_ kind: ReferenceKind) -> Endpoint? {
        switch kind {
        case .plants: Endpoint(path: "/plants/v2/inactive", licensed: true)
        case .packages: Endpoint(path: "/packages/v2/inactive", licensed: true)
        default: nil
        }
    }

    /// Lists without `LastModified` (units, methods, reasons): a window filters nothing, so they are read whole
    /// every time (one page each) and compared with the copy.
    public static func isReadWhole(_ kind: ReferenceKind) -> Bool {
        switch kind {
        case .units, .wasteMethods, .wasteReasons, .adjustReasons: true
        default: false
        }
    }

    /// The item for a Metrc record, nil when the record has no key (label or name). Field names are looked
    /// up ignoring case, as states differ.
    public static func item(_ kind: ReferenceKind, _ record: [String: JSONValue]) -> ReferenceItem? {
        func text(_ names: String...) -> JSONValue {
            record.field(anyOf: names).flatMap { $0.stringValue.map(JSONValue.string) } ?? .null
        }
        func flag(_ name: String) -> JSONValue {
            if case .bool(let b)? = record.field(name) { return .bool(b) }
            return .bool(false)
        }
        var fields: [String: JSONValue]
        switch kind {
        case .locations: fields = ["name": text("Name"), "type": text("LocationTypeName")]
        case .sublocations, .strains, .wasteMethods: fields = ["name": text("Name")]
        case .items: fields = ["name": text("Name"), "category": text("ProductCategoryName"), "unit": text("UnitOfMeasureName")]
        case .plants:
            fields = ["label": text("Label"), "strain": text("StrainName"), "location": text("LocationName"),
                      "sublocation": text("SublocationName"), "phase": text("GrowthPhase")]
        case .packages:
            var itemName = text("ItemName", "ProductName")
            if itemName == .null, let item = record.field("Item")?.objectValue {
                itemName = item.field("Name")?.stringValue.map(JSONValue.string) ?? .null
            }
            let quantity: JSONValue = record.field("Quantity").flatMap { $0.numberValue.map(JSONValue.number) } ?? .null
            fields = ["label": text("Label"), "item": itemName, "quantity": quantity, "unit": text("UnitOfMeasureName"),
                      "location": text("LocationName"), "sublocation": text("SublocationName")]
        case .units: fields = ["name": text("Name"), "abbreviation": text("Abbreviation"), "quantity_type": text("QuantityType")]
        case .wasteReasons, .adjustReasons: fields = ["name": text("Name"), "requires_note": flag("RequiresNote")]
        }
        guard let key = fields[kind.keyField]?.stringValue, !key.isEmpty else { return nil }
        return ReferenceItem(key: key, json: JSONValue.object(fields).serialized(sortedKeys: true))
    }

    /// The key of an inactive record (its label), for marking it removed.
    public static func key(_ kind: ReferenceKind, _ record: [String: JSONValue]) -> String? {
        record.field(kind == .plants || kind == .packages ? "Label" : "Name")?.stringValue
    }
}
