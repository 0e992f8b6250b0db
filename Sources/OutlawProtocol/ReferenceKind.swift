/// The kinds of Metrc reference data a handheld can `pull`, as the contract names them.
public enum ReferenceKind: String, CaseIterable, Sendable, Codable, Comparable {
    case locations, sublocations, strains, items, plants, packages, units
    case wasteMethods = "waste_methods"
    case wasteReasons = "waste_reasons"
    case adjustReasons = "adjust_reasons"

    /// The item field that names a record: a tag label for plants and packages, a name for the rest.
    public var keyField: String {
        switch self {
        case .plants, .packages: "label"
        default: "name"
        }
    }

    /// Position in `allCases`, for the cursor's set of kinds.
    public var bit: Int { Self.allCases.firstIndex(of: self)! }

    public static func < (a: ReferenceKind, b: ReferenceKind) -> Bool { a.bit < b.bit }
}
