import Foundation

/// Everything the sandbox knows: keys, users, facilities, reference lists, plants, packages, harvests, adjustments,
/// plant waste records.
/// A value type: writes are applied to a copy and committed only when every object of the request is valid.
/// Its JSON form (camelCase fields, timestamps as `YYYY-MM-DDThh:mm:ss+00:00`) is the state file format.
public struct SandboxState: Codable, Sendable, Equatable {
    public var vendorKeys: [String]
    public var users: [SandboxUser]
    public var facilities: [SandboxFacility]
    public var unitsOfMeasure: [SandboxUnitOfMeasure]
    public var wasteMethods: [SandboxWasteMethod]
    public var wasteReasons: [SandboxReason]
    public var adjustmentReasons: [SandboxReason]
    public var locations: [SandboxLocation]
    public var sublocations: [SandboxSublocation]
    public var strains: [SandboxStrain]
    public var items: [SandboxItem]
    public var plants: [SandboxPlant]
    public var packages: [SandboxPackage]
    public var harvests: [SandboxHarvest]
    public var adjustments: [SandboxAdjustment]
    public var plantWaste: [SandboxPlantWaste]

    public init(vendorKeys: [String] = [], users: [SandboxUser] = [], facilities: [SandboxFacility] = [],
                unitsOfMeasure: [SandboxUnitOfMeasure] = [], wasteMethods: [SandboxWasteMethod] = [],
                wasteReasons: [SandboxReason] = [], adjustmentReasons: [SandboxReason] = [],
                locations: [SandboxLocation] = [], sublocations: [SandboxSublocation] = [],
                strains: [SandboxStrain] = [], items: [SandboxItem] = [], plants: [SandboxPlant] = [],
                packages: [SandboxPackage] = [], harvests: [SandboxHarvest] = [],
                adjustments: [SandboxAdjustment] = [], plantWaste: [SandboxPlantWaste] = []) {
        self.vendorKeys = vendorKeys
        self.users = users
        self.facilities = facilities
        self.unitsOfMeasure = unitsOfMeasure
        self.wasteMethods = wasteMethods
        self.wasteReasons = wasteReasons
        self.adjustmentReasons = adjustmentReasons
        self.locations = locations
        self.sublocations = sublocations
        self.strains = strains
        self.items = items
        self.plants = plants
        self.packages = packages
        self.harvests = harvests
        self.adjustments = adjustments
        self.plantWaste = plantWaste
    }

    enum CodingKeys: String, CodingKey {
        case vendorKeys, users, facilities, unitsOfMeasure, wasteMethods, wasteReasons, adjustmentReasons
        case locations, sublocations, strains, items, plants, packages, harvests, adjustments, plantWaste
    }

    /// Every list may be left out of a state file (it is then empty).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            vendorKeys: try c.decodeIfPresent([String].self, forKey: .vendorKeys) ?? [],
            users: try c.decodeIfPresent([SandboxUser].self, forKey: .users) ?? [],
            facilities: try c.decodeIfPresent([SandboxFacility].self, forKey: .facilities) ?? [],
            unitsOfMeasure: try c.decodeIfPresent([SandboxUnitOfMeasure].self, forKey: .unitsOfMeasure) ?? [],
            wasteMethods: try c.decodeIfPresent([SandboxWasteMethod].self, forKey: .wasteMethods) ?? [],
            wasteReasons: try c.decodeIfPresent([SandboxReason].self, forKey: .wasteReasons) ?? [],
            adjustmentReasons: try c.decodeIfPresent([SandboxReason].self, forKey: .adjustmentReasons) ?? [],
            locations: try c.decodeIfPresent([SandboxLocation].self, forKey: .locations) ?? [],
            sublocations: try c.decodeIfPresent([SandboxSublocation].self, forKey: .sublocations) ?? [],
            strains: try c.decodeIfPresent([SandboxStrain].self, forKey: .strains) ?? [],
            items: try c.decodeIfPresent([SandboxItem].self, forKey: .items) ?? [],
            plants: try c.decodeIfPresent([SandboxPlant].self, forKey: .plants) ?? [],
            packages: try c.decodeIfPresent([SandboxPackage].self, forKey: .packages) ?? [],
            harvests: try c.decodeIfPresent([SandboxHarvest].self, forKey: .harvests) ?? [],
            adjustments: try c.decodeIfPresent([SandboxAdjustment].self, forKey: .adjustments) ?? [],
            plantWaste: try c.decodeIfPresent([SandboxPlantWaste].self, forKey: .plantWaste) ?? []
        )
    }

    // MARK: State file

    public static func decode(json data: Data) throws -> SandboxState {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = MetrcTimestamp.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad timestamp \(text)"))
            }
            return date
        }
        return try decoder.decode(SandboxState.self, from: data)
    }

    public func encodedJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(MetrcTimestamp.format(date))
        }
        return try encoder.encode(self)
    }

    public static func load(contentsOf path: String) throws -> SandboxState {
        try decode(json: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    public func save(to path: String) throws {
        try encodedJSON().write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    // MARK: Lookups (names compare case-insensitively, as Metrc's database does)

    public func facility(_ license: String) -> SandboxFacility? {
        facilities.first { $0.license == license }
    }

    public func user(withKey key: String) -> SandboxUser? {
        users.first { $0.key == key }
    }

    public func user(named name: String) -> SandboxUser? {
        users.first { $0.name == name }
    }

    func location(_ name: String, license: String) -> SandboxLocation? {
        locations.first { $0.license == license && $0.name.caseInsensitiveEquals(name) }
    }

    func sublocation(_ name: String, license: String) -> SandboxSublocation? {
        sublocations.first { $0.license == license && $0.name.caseInsensitiveEquals(name) }
    }

    func strain(_ name: String, license: String) -> SandboxStrain? {
        strains.first { $0.license == license && $0.name.caseInsensitiveEquals(name) }
    }

    func item(_ name: String, license: String) -> SandboxItem? {
        items.first { $0.license == license && $0.name.caseInsensitiveEquals(name) }
    }

    public func unit(_ name: String) -> SandboxUnitOfMeasure? {
        unitsOfMeasure.first { $0.name.caseInsensitiveEquals(name) }
    }

    func wasteMethod(_ name: String) -> SandboxWasteMethod? {
        wasteMethods.first { $0.name.caseInsensitiveEquals(name) }
    }

    func wasteReason(_ name: String) -> SandboxReason? {
        wasteReasons.first { $0.name.caseInsensitiveEquals(name) }
    }

    func adjustmentReason(_ name: String) -> SandboxReason? {
        adjustmentReasons.first { $0.name.caseInsensitiveEquals(name) }
    }

    public func plant(label: String, license: String) -> SandboxPlant? {
        plants.first { $0.license == license && $0.label == label }
    }

    public func package(label: String, license: String) -> SandboxPackage? {
        packages.first { $0.license == license && $0.label == label }
    }

    /// The next free id over all numbered records (Metrc ids are unique per kind; one counter is simpler).
    var nextId: Int {
        let all = [
            locations.map(\.id).max(), sublocations.map(\.id).max(), strains.map(\.id).max(), items.map(\.id).max(),
            plants.map(\.id).max(), packages.map(\.id).max(), harvests.map(\.id).max(), adjustments.map(\.id).max(),
            plantWaste.map(\.id).max(), facilities.map(\.id).max(),
        ]
        return (all.compactMap { $0 }.max() ?? 0) + 1
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        // The exact match first: it is the common case and allocates nothing (lookups run per rendered record).
        if self == other { return true }
        return self.count == other.count && self.lowercased() == other.lowercased()
    }
}
