import Foundation

/// What a Metrc user may do at one facility. Reads need `view`; each write needs its own permission.
public enum SandboxPermission: String, Codable, Sendable, CaseIterable {
    case view
    case harvestPlants
    case movePlants
    case destroyPlants
    case movePackages
    case adjustPackages
    /// `POST /plants/v2/manicure`: Metrc's "Manicure/Harvest Veg/Flower Plants". Metrc uses that one permission
    /// for whole-plant harvests too; the sandbox keeps them apart so a test can grant one without the other.
    case manicurePlants
    /// `POST /plants/v2/waste`: Metrc's "Manage Plants Waste".
    case wastePlants
}

/// A Metrc user: one user API key, permissions per facility license.
public struct SandboxUser: Codable, Sendable, Equatable {
    public var name: String
    public var key: String
    /// A revoked key answers 401 until restored.
    public var revoked: Bool?
    /// The key answers 401 from this instant on.
    public var expiresAt: Date?
    /// License number → permissions at that facility. No entry: no access (401).
    public var facilities: [String: [SandboxPermission]]

    public init(name: String, key: String, revoked: Bool? = nil, expiresAt: Date? = nil,
                facilities: [String: [SandboxPermission]]) {
        self.name = name
        self.key = key
        self.revoked = revoked
        self.expiresAt = expiresAt
        self.facilities = facilities
    }

    public func isKeyValid(at now: Date) -> Bool {
        if revoked == true { return false }
        if let expiresAt, expiresAt <= now { return false }
        return true
    }

    public func may(_ permission: SandboxPermission, at license: String) -> Bool {
        facilities[license]?.contains(permission) ?? false
    }
}

public struct SandboxFacility: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var name: String
    public var licenseType: String
    /// The user whose key is the facility's Default key (shown with `IsOwner: true`).
    public var ownerUserName: String?

    public init(id: Int, license: String, name: String, licenseType: String, ownerUserName: String? = nil) {
        self.id = id
        self.license = license
        self.name = name
        self.licenseType = licenseType
        self.ownerUserName = ownerUserName
    }
}

public enum QuantityType: String, Codable, Sendable {
    case weightBased = "WeightBased"
    case countBased = "CountBased"
    case volumeBased = "VolumeBased"
}

public struct SandboxUnitOfMeasure: Codable, Sendable, Equatable {
    public var name: String
    public var abbreviation: String
    public var quantityType: QuantityType
    /// Size in the base unit of its kind (grams, each, milliliters), for converting adjustments.
    public var toBase: Double

    public init(name: String, abbreviation: String, quantityType: QuantityType, toBase: Double) {
        self.name = name
        self.abbreviation = abbreviation
        self.quantityType = quantityType
        self.toBase = toBase
    }
}

/// A waste or adjustment reason, with the flags that make fields mandatory.
public struct SandboxReason: Codable, Sendable, Equatable {
    public var name: String
    public var requiresNote: Bool
    public var requiresWasteWeight: Bool?

    public init(name: String, requiresNote: Bool, requiresWasteWeight: Bool? = nil) {
        self.name = name
        self.requiresNote = requiresNote
        self.requiresWasteWeight = requiresWasteWeight
    }
}

public struct SandboxWasteMethod: Codable, Sendable, Equatable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct SandboxLocation: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var name: String
    public var locationType: String?
    /// Which things the location may hold; `nil` means yes.
    public var forPlants: Bool?
    public var forHarvests: Bool?
    public var forPackages: Bool?
    public var lastModified: Date

    public init(id: Int, license: String, name: String, locationType: String? = "Default", forPlants: Bool? = nil,
                forHarvests: Bool? = nil, forPackages: Bool? = nil, lastModified: Date) {
        self.id = id
        self.license = license
        self.name = name
        self.locationType = locationType
        self.forPlants = forPlants
        self.forHarvests = forHarvests
        self.forPackages = forPackages
        self.lastModified = lastModified
    }
}

public struct SandboxSublocation: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var name: String
    public var lastModified: Date

    public init(id: Int, license: String, name: String, lastModified: Date) {
        self.id = id
        self.license = license
        self.name = name
        self.lastModified = lastModified
    }
}

public struct SandboxStrain: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var name: String
    public var indicaPercentage: Double?
    public var sativaPercentage: Double?
    public var lastModified: Date

    public init(id: Int, license: String, name: String, indicaPercentage: Double? = nil, sativaPercentage: Double? = nil,
                lastModified: Date) {
        self.id = id
        self.license = license
        self.name = name
        self.indicaPercentage = indicaPercentage
        self.sativaPercentage = sativaPercentage
        self.lastModified = lastModified
    }
}

public struct SandboxItem: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var name: String
    public var category: String
    public var unitOfMeasure: String
    public var strain: String?
    public var lastModified: Date

    public init(id: Int, license: String, name: String, category: String, unitOfMeasure: String, strain: String? = nil,
                lastModified: Date) {
        self.id = id
        self.license = license
        self.name = name
        self.category = category
        self.unitOfMeasure = unitOfMeasure
        self.strain = strain
        self.lastModified = lastModified
    }
}

public enum PlantGrowthPhase: String, Codable, Sendable {
    case vegetative = "Vegetative"
    case flowering = "Flowering"
}

public enum PlantState: String, Codable, Sendable {
    case tracked = "Tracked"
    case harvested = "Harvested"
    case destroyed = "Destroyed"
}

public struct SandboxPlant: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var label: String
    public var strain: String
    public var location: String
    public var sublocation: String?
    public var growthPhase: PlantGrowthPhase
    public var state: PlantState
    public var plantBatchName: String?
    public var plantedDate: MetrcDay
    public var vegetativeDate: MetrcDay?
    public var floweringDate: MetrcDay?
    public var harvestId: Int?
    public var harvestedDate: MetrcDay?
    public var harvestedWetWeight: Double?
    public var harvestedUnitOfWeight: String?
    /// Harvests and manicures of this plant so far (Metrc's `HarvestCount`). `nil` in state files that predate
    /// manicures: see `timesHarvested`.
    public var harvestCount: Int?
    public var destroyedDate: MetrcDay?
    public var destroyedNote: String?
    public var destroyedByUserName: String?
    public var lastModified: Date

    public init(id: Int, license: String, label: String, strain: String, location: String, sublocation: String? = nil,
                growthPhase: PlantGrowthPhase, state: PlantState = .tracked, plantBatchName: String? = nil,
                plantedDate: MetrcDay, vegetativeDate: MetrcDay? = nil, floweringDate: MetrcDay? = nil,
                lastModified: Date) {
        self.id = id
        self.license = license
        self.label = label
        self.strain = strain
        self.location = location
        self.sublocation = sublocation
        self.growthPhase = growthPhase
        self.state = state
        self.plantBatchName = plantBatchName
        self.plantedDate = plantedDate
        self.vegetativeDate = vegetativeDate
        self.floweringDate = floweringDate
        self.lastModified = lastModified
    }

    public var isActive: Bool { state == .tracked }

    /// `HarvestCount` as Metrc shows it: the stored count, or (for a state file without one) 1 if the plant was
    /// harvested, else 0.
    public var timesHarvested: Int { harvestCount ?? (harvestId == nil ? 0 : 1) }
}

public struct SandboxPackage: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var label: String
    public var item: String
    public var quantity: Double
    public var unitOfMeasure: String
    public var location: String?
    public var sublocation: String?
    public var packagedDate: MetrcDay
    public var finishedDate: MetrcDay?
    public var lastModified: Date

    public init(id: Int, license: String, label: String, item: String, quantity: Double, unitOfMeasure: String,
                location: String?, sublocation: String? = nil, packagedDate: MetrcDay, finishedDate: MetrcDay? = nil,
                lastModified: Date) {
        self.id = id
        self.license = license
        self.label = label
        self.item = item
        self.quantity = quantity
        self.unitOfMeasure = unitOfMeasure
        self.location = location
        self.sublocation = sublocation
        self.packagedDate = packagedDate
        self.finishedDate = finishedDate
        self.lastModified = lastModified
    }

    public var isActive: Bool { finishedDate == nil }
}

/// Metrc's `HarvestType`: a whole-plant harvest or a manicure (a partial harvest of a plant that keeps growing).
public enum HarvestType: String, Codable, Sendable {
    case wholePlant = "WholePlant"
    case manicure = "Manicure"
}

public struct SandboxHarvest: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var name: String
    /// What created the batch; `nil` (state files that predate manicures) is a whole-plant harvest.
    public var harvestType: HarvestType?
    public var dryingLocation: String
    public var dryingSublocation: String?
    public var harvestStartDate: MetrcDay
    public var plantLabels: [String]
    public var totalWetWeight: Double
    public var unitOfWeight: String
    public var lastModified: Date
}

/// One applied package adjustment (the sandbox's stand-in for Metrc's adjustment history).
public struct SandboxAdjustment: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    public var packageId: Int
    public var packageLabel: String
    public var quantity: Double
    public var unitOfMeasure: String
    public var reason: String
    public var adjustmentDate: MetrcDay
    public var reasonNote: String?
    public var adjustedByUserName: String
    public var lastModified: Date
}

/// One recorded plant waste (`POST /plants/v2/waste`): of the plants named, or of a whole location when none are.
/// The plants stay tracked.
public struct SandboxPlantWaste: Codable, Sendable, Equatable {
    public var id: Int
    public var license: String
    /// The tags named in the request, in its order; empty for a whole-location waste.
    public var plantLabels: [String]
    public var location: String?
    public var sublocation: String?
    public var wasteMethod: String
    public var mixedMaterial: String
    /// `nil` when the request gave none (allowed unless the reason `RequiresWasteWeight`).
    public var wasteWeight: Double?
    public var unitOfMeasure: String?
    public var reason: String
    public var note: String?
    public var wasteDate: MetrcDay
    public var recordedByUserName: String
    public var lastModified: Date

    public init(id: Int, license: String, plantLabels: [String], location: String?, sublocation: String?,
                wasteMethod: String, mixedMaterial: String, wasteWeight: Double?, unitOfMeasure: String?, reason: String,
                note: String?, wasteDate: MetrcDay, recordedByUserName: String, lastModified: Date) {
        self.id = id
        self.license = license
        self.plantLabels = plantLabels
        self.location = location
        self.sublocation = sublocation
        self.wasteMethod = wasteMethod
        self.mixedMaterial = mixedMaterial
        self.wasteWeight = wasteWeight
        self.unitOfMeasure = unitOfMeasure
        self.reason = reason
        self.note = note
        self.wasteDate = wasteDate
        self.recordedByUserName = recordedByUserName
        self.lastModified = lastModified
    }
}
