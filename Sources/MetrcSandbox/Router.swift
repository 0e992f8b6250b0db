import Foundation

/// The Metrc endpoints the sandbox serves.
public enum MetrcRoute: Sendable, Equatable {
    case facilities
    case unitsOfMeasure
    case wasteMethods
    case plantWasteMethods
    case plantWasteReasons
    case vegetativePlants
    case floweringPlants
    case inactivePlants
    case onHoldPlants
    case plant(label: String)
    case activePackages
    case inactivePackages
    case package(label: String)
    case adjustments
    case adjustReasons
    case locations
    case locationTypes
    case sublocations
    case strains
    case items
    case activeHarvests
    /// `GET /plants/v2/waste`: the plant waste records.
    case plantWaste
    case write(SandboxAction)

    /// Whether `licenseNumber` is required (Metrc: everything but the facility list and global lists).
    public var requiresLicense: Bool {
        switch self {
        case .facilities, .unitsOfMeasure, .wasteMethods, .plantWasteMethods: false
        default: true
        }
    }

    /// The permission the signing user needs at the facility.
    public var permission: SandboxPermission? {
        switch self {
        case .write(let action): action.permission
        case .facilities, .unitsOfMeasure, .wasteMethods, .plantWasteMethods: nil
        default: .view
        }
    }

    /// Whether the list is filtered by `lastModifiedStart`/`lastModifiedEnd` (the lists Metrc documents those
    /// parameters for); only these are subject to `SandboxConfiguration.maxModifiedWindow`.
    public var isWindowed: Bool {
        switch self {
        case .vegetativePlants, .floweringPlants, .inactivePlants, .onHoldPlants, .activePackages, .inactivePackages,
             .adjustments, .locations, .sublocations, .strains, .items, .activeHarvests, .plantWaste:
            true
        default:
            false
        }
    }

    public var isWrite: Bool {
        if case .write = self { return true }
        return false
    }

    /// Resolves a request line: 404 for an unknown path, 405 for a known path with another method.
    /// Paths compare case-insensitively, with or without a trailing slash.
    public static func resolve(method: String, path: String) -> Result<MetrcRoute, MetrcError> {
        let original = path.split(separator: "/").map(String.init)
        let segments = original.map { $0.lowercased() }
        let method = method.uppercased()
        var known: [String: MetrcRoute] = [:]
        switch segments {
        case ["facilities", "v2"]: known = ["GET": .facilities]
        case ["unitsofmeasure", "v2", "active"]: known = ["GET": .unitsOfMeasure]
        case ["wastemethods", "v2"]: known = ["GET": .wasteMethods]
        case ["plants", "v2", "waste", "methods", "all"]: known = ["GET": .plantWasteMethods]
        case ["plants", "v2", "waste", "reasons"]: known = ["GET": .plantWasteReasons]
        case ["plants", "v2"]: known = ["DELETE": .write(.destroyPlants)]
        case ["plants", "v2", "harvest"]: known = ["PUT": .write(.harvestPlants)]
        case ["plants", "v2", "location"]: known = ["PUT": .write(.movePlants)]
        case ["plants", "v2", "manicure"]: known = ["POST": .write(.manicurePlants)]
        case ["plants", "v2", "waste"]: known = ["GET": .plantWaste, "POST": .write(.wastePlants)]
        case ["plants", "v2", "vegetative"]: known = ["GET": .vegetativePlants]
        case ["plants", "v2", "flowering"]: known = ["GET": .floweringPlants]
        case ["plants", "v2", "inactive"]: known = ["GET": .inactivePlants]
        case ["plants", "v2", "onhold"]: known = ["GET": .onHoldPlants]
        case ["packages", "v2", "active"]: known = ["GET": .activePackages]
        case ["packages", "v2", "inactive"]: known = ["GET": .inactivePackages]
        case ["packages", "v2", "adjustments"]: known = ["GET": .adjustments]
        case ["packages", "v2", "adjust", "reasons"]: known = ["GET": .adjustReasons]
        case ["packages", "v2", "adjust"]: known = ["POST": .write(.adjustPackages), "PUT": .write(.adjustPackages)]
        case ["packages", "v2", "location"]: known = ["PUT": .write(.movePackages)]
        case ["locations", "v2", "active"]: known = ["GET": .locations]
        case ["locations", "v2", "types"]: known = ["GET": .locationTypes]
        case ["sublocations", "v2", "active"]: known = ["GET": .sublocations]
        case ["strains", "v2", "active"]: known = ["GET": .strains]
        case ["items", "v2", "active"]: known = ["GET": .items]
        case ["harvests", "v2", "active"]: known = ["GET": .activeHarvests]
        default:
            if segments.count == 3, segments[0] == "plants", segments[1] == "v2" {
                known = ["GET": .plant(label: original[2].uppercased())]
            } else if segments.count == 3, segments[0] == "packages", segments[1] == "v2" {
                known = ["GET": .package(label: original[2].uppercased())]
            }
        }
        if known.isEmpty {
            return .failure(.notFound("No HTTP resource was found that matches the request URI '\(path)'."))
        }
        guard let route = known[method] else {
            return .failure(MetrcError(status: 405, message: "The requested resource does not support http method '\(method)'."))
        }
        return .success(route)
    }
}
