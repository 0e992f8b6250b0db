import Foundation

/// Everything the sandbox knows: keys, users, facilities, reference lists, plants, packages, harvests, adjustments,
/// plant waste records.
/// A value type: a write is applied in place and undone unless every object of the request is valid.
/// Its JSON form (camelCase fields, timestamps as `YYYY-MM-DDThh:mm:ss+00:00`) is the state file format.
/// Plants, packages and harvests are indexed (see `SandboxRecords`): the indexes are rebuilt when a state is made or
/// decoded, are neither encoded nor compared, and a change through the public record arrays drops them until the
/// next write rebuilds them.
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
    /// Plants, packages, harvests, adjustments and plant waste records, with their indexes.
    var records: SandboxRecords

    public var plants: [SandboxPlant] {
        get { records.plants }
        _modify { yield &records.anyChangePlants }
    }

    public var packages: [SandboxPackage] {
        get { records.packages }
        _modify { yield &records.anyChangePackages }
    }

    public var harvests: [SandboxHarvest] {
        get { records.harvests }
        _modify { yield &records.anyChangeHarvests }
    }

    public var adjustments: [SandboxAdjustment] {
        get { records.adjustments }
        _modify { yield &records.anyChangeAdjustments }
    }

    public var plantWaste: [SandboxPlantWaste] {
        get { records.plantWaste }
        _modify { yield &records.anyChangePlantWaste }
    }

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
        self.records = SandboxRecords(plants: plants, packages: packages, harvests: harvests, adjustments: adjustments,
                                      plantWaste: plantWaste)
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

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vendorKeys, forKey: .vendorKeys)
        try c.encode(users, forKey: .users)
        try c.encode(facilities, forKey: .facilities)
        try c.encode(unitsOfMeasure, forKey: .unitsOfMeasure)
        try c.encode(wasteMethods, forKey: .wasteMethods)
        try c.encode(wasteReasons, forKey: .wasteReasons)
        try c.encode(adjustmentReasons, forKey: .adjustmentReasons)
        try c.encode(locations, forKey: .locations)
        try c.encode(sublocations, forKey: .sublocations)
        try c.encode(strains, forKey: .strains)
        try c.encode(items, forKey: .items)
        try c.encode(plants, forKey: .plants)
        try c.encode(packages, forKey: .packages)
        try c.encode(harvests, forKey: .harvests)
        try c.encode(adjustments, forKey: .adjustments)
        try c.encode(plantWaste, forKey: .plantWaste)
    }

    /// The data, not the indexes.
    public static func == (a: SandboxState, b: SandboxState) -> Bool {
        a.vendorKeys == b.vendorKeys && a.users == b.users && a.facilities == b.facilities
            && a.unitsOfMeasure == b.unitsOfMeasure && a.wasteMethods == b.wasteMethods
            && a.wasteReasons == b.wasteReasons && a.adjustmentReasons == b.adjustmentReasons
            && a.locations == b.locations && a.sublocations == b.sublocations && a.strains == b.strains
            && a.items == b.items && a.plants == b.plants && a.packages == b.packages && a.harvests == b.harvests
            && a.adjustments == b.adjustments && a.plantWaste == b.plantWaste
    }

    /// Rebuilds the indexes if a change through the public record arrays dropped them (writes do it themselves).
    mutating func indexIfNeeded() {
        records.indexIfNeeded()
    }

    /// Runs `body` all or nothing as far as the records go (plants, packages, harvests, adjustments, plant waste):
    /// if it throws, every record it changed is put back and every record it added is removed. Changes of other
    /// lists are not undone. Nothing is copied: the undo log holds only what `body` changed.
    mutating func allOrNothing<T, E: Error>(_ body: (inout SandboxState) throws(E) -> T) throws(E) -> T {
        records.begin()
        do throws(E) {
            let result = try body(&self)
            records.commit()
            return result
        } catch {
            records.rollBack()
            throw error
        }
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
        records.plantPosition(label: label, license: license).map { records.plants[$0] }
    }

    public func package(label: String, license: String) -> SandboxPackage? {
        records.packagePosition(label: label, license: license).map { records.packages[$0] }
    }

    /// The next free id over all numbered records (Metrc ids are unique per kind; one counter is simpler).
    /// The big lists' highest id is kept by the indexes; the reference lists are short and scanned.
    var nextId: Int {
        var highest = records.highestRecordId
        func note(_ id: Int) { highest = max(highest ?? id, id) }
        for record in locations { note(record.id) }
        for record in sublocations { note(record.id) }
        for record in strains { note(record.id) }
        for record in items { note(record.id) }
        for record in facilities { note(record.id) }
        return (highest ?? 0) + 1
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        // The exact match first: it is the common case and allocates nothing (lookups run per rendered record).
        if self == other { return true }
        return self.count == other.count && self.lowercased() == other.lowercased()
    }
}
