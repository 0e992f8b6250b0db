/// The Metrc writes outlawd makes.
public enum MetrcAction: String, Sendable, CaseIterable, Codable {
    case harvestPlants = "harvest_plants"
    case movePlants = "move_plants"
    case destroyPlants = "destroy_plants"
    case movePackages = "move_packages"
    case adjustPackages = "adjust_packages"
    case manicurePlants = "manicure_plants"
    case wastePlants = "waste_plants"

    /// The HTTP method of the v2 call.
    public var method: String {
        switch self {
        case .harvestPlants, .movePlants, .movePackages: return "PUT"
        case .destroyPlants: return "DELETE"
        case .adjustPackages, .manicurePlants, .wastePlants: return "POST"
        }
    }

    /// The v2 path, without the query (`licenseNumber` is added by the client).
    public var path: String {
        switch self {
        case .harvestPlants: return "/plants/v2/harvest"
        case .movePlants: return "/plants/v2/location"
        case .destroyPlants: return "/plants/v2/"
        case .movePackages: return "/packages/v2/location"
        case .adjustPackages: return "/packages/v2/adjust"
        case .manicurePlants: return "/plants/v2/manicure"
        case .wastePlants: return "/plants/v2/waste"
        }
    }

    /// Whether sending the same request twice acts once (PUT, DELETE). A POST acts twice.
    public var isIdempotent: Bool { method != "POST" }

    /// The write an event type maps to; nil for scans, which are never uploaded.
    public init?(eventType: EventType) {
        switch eventType {
        case .plantHarvest: self = .harvestPlants
        case .plantMove: self = .movePlants
        case .plantDestroy: self = .destroyPlants
        case .packageMove: self = .movePackages
        case .packageAdjust: self = .adjustPackages
        case .plantManicure: self = .manicurePlants
        case .plantWaste: self = .wastePlants
        case .plantScan, .packageScan: return nil
        }
    }
}
