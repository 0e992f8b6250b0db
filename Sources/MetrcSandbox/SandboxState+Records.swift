import Foundation

/// What `seed` added: the new tags, in the order they were made.
public struct SandboxSeedResult: Sendable, Equatable {
    public var license: String
    public var plantLabels: [String]
    public var packageLabels: [String]

    public init(license: String, plantLabels: [String], packageLabels: [String]) {
        self.license = license
        self.plantLabels = plantLabels
        self.packageLabels = packageLabels
    }
}

/// Records added by hand (the control API), not by a Metrc write: what an incremental sync should find.
/// Each checks everything before it changes anything, and stamps `lastModified` with `now` (the sandbox clock).
/// Names of strains, items, locations and units match case-insensitively and are stored as the facility spells them.
extension SandboxState {
    /// Most plants or packages one `seed` may add (a typo of a few zeros should not eat the machine's memory).
    public static let maximumSeedCount = 1_000_000

    /// Prefix of the tags `seed` makes for plants; 17 digits follow.
    public static let seedPlantTagPrefix = "1A4FF05"
    /// Prefix of the tags `seed` makes for packages; 17 digits follow.
    public static let seedPackageTagPrefix = "1A4FF06"

    /// The planted / packaged day of a record added without one: 30 days before the sandbox's today, so writes
    /// dated today (or a little earlier) are not "before it was planted".
    public static func defaultStartDay(_ now: Date) -> MetrcDay { MetrcDay(now).adding(days: -30) }

    /// A tracked plant. Its vegetative date (and flowering date, if flowering) is its planted date.
    public mutating func addPlant(license: String, label: String, strain: String, location: String,
                                  sublocation: String? = nil, phase: PlantGrowthPhase, plantedDate: MetrcDay? = nil,
                                  now: Date) throws(MetrcError) -> SandboxPlant {
        try requireFacility(license)
        indexIfNeeded()
        try requireNewTag(label)
        guard let strainRecord = self.strain(strain, license: license) else {
            throw .badRequest("Strain \(strain) is not a strain of facility \(license).")
        }
        let place = try placement(location, sublocation: sublocation, license: license, purpose: \.forPlants,
                                  purposeText: "plants")
        let planted = plantedDate ?? SandboxState.defaultStartDay(now)
        let plant = SandboxPlant(
            id: nextId, license: license, label: label, strain: strainRecord.name, location: place.location,
            sublocation: place.sublocation, growthPhase: phase, plantedDate: planted, vegetativeDate: planted,
            floweringDate: phase == .flowering ? planted : nil, lastModified: now)
        records.appendPlant(plant)
        return plant
    }

    /// An active package of `item`; `unitOfMeasure` nil: the item's unit. The unit must be of the item's kind.
    public mutating func addPackage(license: String, label: String, item: String, quantity: Double,
                                    unitOfMeasure: String? = nil, location: String, sublocation: String? = nil,
                                    packagedDate: MetrcDay? = nil, now: Date) throws(MetrcError) -> SandboxPackage {
        try requireFacility(license)
        indexIfNeeded()
        try requireNewTag(label)
        guard let itemRecord = self.item(item, license: license) else {
            throw .badRequest("Item \(item) is not an item of facility \(license).")
        }
        guard quantity.isFinite, quantity >= 0 else { throw .badRequest("quantity must be a number of at least 0.") }
        let unitName = unitOfMeasure ?? itemRecord.unitOfMeasure
        guard let unit = self.unit(unitName) else { throw .badRequest("Unit \(unitName) is not a known unit of measure.") }
        if let itemUnit = self.unit(itemRecord.unitOfMeasure), itemUnit.quantityType != unit.quantityType {
            throw .badRequest("Unit \(unit.name) cannot measure item \(itemRecord.name), which is in \(itemUnit.name).")
        }
        let place = try placement(location, sublocation: sublocation, license: license, purpose: \.forPackages,
                                  purposeText: "packages")
        let package = SandboxPackage(
            id: nextId, license: license, label: label, item: itemRecord.name, quantity: roundQuantity(quantity),
            unitOfMeasure: unit.name, location: place.location, sublocation: place.sublocation,
            packagedDate: packagedDate ?? SandboxState.defaultStartDay(now), lastModified: now)
        records.appendPackage(package)
        return package
    }

    public mutating func addStrain(license: String, name: String, indicaPercentage: Double? = nil,
                                   sativaPercentage: Double? = nil, now: Date) throws(MetrcError) -> SandboxStrain {
        try requireFacility(license)
        let trimmed = try requireName(name)
        guard self.strain(trimmed, license: license) == nil else { throw .badRequest("Strain \(trimmed) exists.") }
        for (field, value) in [("indicaPercentage", indicaPercentage), ("sativaPercentage", sativaPercentage)] {
            if let value, !(0...100).contains(value) { throw .badRequest("\(field) must be 0...100.") }
        }
        let strain = SandboxStrain(id: nextId, license: license, name: trimmed, indicaPercentage: indicaPercentage,
                                   sativaPercentage: sativaPercentage, lastModified: now)
        strains.append(strain)
        return strain
    }

    /// An item measured in `unitOfMeasure` (a known unit), of an existing `strain` if one is given.
    public mutating func addItem(license: String, name: String, category: String = "Buds", unitOfMeasure: String,
                                 strain: String? = nil, now: Date) throws(MetrcError) -> SandboxItem {
        try requireFacility(license)
        let trimmed = try requireName(name)
        guard self.item(trimmed, license: license) == nil else { throw .badRequest("Item \(trimmed) exists.") }
        guard !category.trimmingCharacters(in: .whitespaces).isEmpty else { throw .badRequest("category must not be empty.") }
        guard let unit = self.unit(unitOfMeasure) else {
            throw .badRequest("Unit \(unitOfMeasure) is not a known unit of measure.")
        }
        var strainName: String?
        if let strain {
            guard let record = self.strain(strain, license: license) else {
                throw .badRequest("Strain \(strain) is not a strain of facility \(license).")
            }
            strainName = record.name
        }
        let item = SandboxItem(id: nextId, license: license, name: trimmed, category: category, unitOfMeasure: unit.name,
                               strain: strainName, lastModified: now)
        items.append(item)
        return item
    }

    /// Finishes an active package (it moves from the active list to the inactive one); `date` nil: the sandbox's today.
    public mutating func finishPackage(license: String, label: String, date: MetrcDay? = nil,
                                       now: Date) throws(MetrcError) -> SandboxPackage {
        try requireFacility(license)
        indexIfNeeded()
        guard let index = records.packagePosition(label: label, license: license) else {
            throw .notFound("Package \(label) was not found at facility \(license).")
        }
        guard packages[index].isActive else { throw .badRequest("Package \(label) is already finished.") }
        let day = date ?? MetrcDay(now)
        guard day >= packages[index].packagedDate else {
            throw .badRequest("Finish date \(day) is before package \(label) was packaged (\(packages[index].packagedDate)).")
        }
        records.changePackage(at: index) { package in
            package.finishedDate = day
            package.lastModified = now
        }
        return packages[index]
    }

    /// Adds `plants` tracked plants (alternately vegetative and flowering, the first vegetative) and `packages`
    /// active packages to `license`, spread round-robin over its strains, items, sublocations and the locations that
    /// may hold them. Tags are the seed prefixes plus a 17-digit counter that continues after the highest one in use,
    /// so they are unique however often it runs. Linear in the records added and present: 100,000 plants take under a
    /// second even in a debug build.
    public mutating func seed(license: String, plants plantCount: Int, packages packageCount: Int,
                              now: Date) throws(MetrcError) -> SandboxSeedResult {
        try requireFacility(license)
        let limit = SandboxState.maximumSeedCount
        guard (0...limit).contains(plantCount), (0...limit).contains(packageCount) else {
            throw .badRequest("plants and packages must each be 0...\(limit).")
        }
        let strainNames = strains.filter { $0.license == license }.map(\.name)
        let plantPlaces = locations.filter { $0.license == license && $0.forPlants != false }.map(\.name)
        let packagePlaces = locations.filter { $0.license == license && $0.forPackages != false }.map(\.name)
        let subs = sublocations.filter { $0.license == license }.map(\.name)
        if plantCount > 0 {
            guard !strainNames.isEmpty else { throw .badRequest("Facility \(license) has no strains to seed plants with.") }
            guard !plantPlaces.isEmpty else { throw .badRequest("Facility \(license) has no location that may hold plants.") }
        }
        // Each item with its unit and a plausible quantity, worked out once rather than per package.
        let stock: [(item: String, unit: String, quantity: Double)] = items.filter { $0.license == license }.map { item in
            let quantity: Double = switch unit(item.unitOfMeasure)?.quantityType {
            case .countBased?: 10
            case .volumeBased?: 500
            default: 100
            }
            return (item.name, item.unitOfMeasure, quantity)
        }
        if packageCount > 0 {
            guard !stock.isEmpty else { throw .badRequest("Facility \(license) has no items to seed packages with.") }
            guard !packagePlaces.isEmpty else {
                throw .badRequest("Facility \(license) has no location that may hold packages.")
            }
        }
        let plantLabels = freshTags(prefix: SandboxState.seedPlantTagPrefix, count: plantCount)
        let packageLabels = freshTags(prefix: SandboxState.seedPackageTagPrefix, count: packageCount)
        let start = SandboxState.defaultStartDay(now)
        indexIfNeeded()
        var id = nextId
        records.reserveCapacity(plants: plantCount, packages: packageCount)
        for (i, label) in plantLabels.enumerated() {
            let phase: PlantGrowthPhase = i % 2 == 0 ? .vegetative : .flowering
            records.appendPlant(SandboxPlant(
                id: id, license: license, label: label, strain: strainNames[i % strainNames.count],
                location: plantPlaces[i % plantPlaces.count], sublocation: subs.isEmpty ? nil : subs[i % subs.count],
                growthPhase: phase, plantedDate: start, vegetativeDate: start,
                floweringDate: phase == .flowering ? start : nil, lastModified: now))
            id += 1
        }
        for (i, label) in packageLabels.enumerated() {
            let kind = stock[i % stock.count]
            records.appendPackage(SandboxPackage(
                id: id, license: license, label: label, item: kind.item, quantity: kind.quantity, unitOfMeasure: kind.unit,
                location: packagePlaces[i % packagePlaces.count], sublocation: subs.isEmpty ? nil : subs[i % subs.count],
                packagedDate: start, lastModified: now))
            id += 1
        }
        return SandboxSeedResult(license: license, plantLabels: plantLabels, packageLabels: packageLabels)
    }

    // MARK: Checks

    private func requireFacility(_ license: String) throws(MetrcError) {
        guard facility(license) != nil else { throw .notFound("Unknown facility \(license).") }
    }

    private func requireName(_ name: String) throws(MetrcError) -> String {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .badRequest("name is required.") }
        return trimmed
    }

    /// A well-formed tag no plant or package (of any facility: Metrc tags are unique) carries yet.
    private func requireNewTag(_ label: String) throws(MetrcError) {
        guard isWellFormedTag(label) else { throw .badRequest("Tag \(label) is not valid (24 characters A-Z and 0-9).") }
        guard !records.holdsTag(label) else {
            throw .badRequest("Tag \(label) is already in use.")
        }
    }

    private func placement(_ name: String, sublocation: String?, license: String,
                           purpose: KeyPath<SandboxLocation, Bool?>,
                           purposeText: String) throws(MetrcError) -> (location: String, sublocation: String?) {
        guard let location = self.location(name, license: license) else {
            throw .badRequest("Location \(name) is not a location of facility \(license).")
        }
        guard location[keyPath: purpose] != false else { throw .badRequest("Location \(location.name) cannot hold \(purposeText).") }
        guard let sublocation else { return (location.name, nil) }
        guard let sub = self.sublocation(sublocation, license: license) else {
            throw .badRequest("Sublocation \(sublocation) is not a sublocation of facility \(license).")
        }
        return (location.name, sub.name)
    }

    /// `count` tags `prefix` + 17 digits, numbered after the highest such tag on any plant or package.
    private func freshTags(prefix: String, count: Int) -> [String] {
        guard count > 0 else { return [] }
        let width = 24 - prefix.utf8.count
        var highest = 0
        func consider(_ label: String) {
            guard label.hasPrefix(prefix), let number = Int(label.dropFirst(prefix.count)) else { return }
            highest = max(highest, number)
        }
        for plant in plants { consider(plant.label) }
        for package in packages { consider(package.label) }
        var tags: [String] = []
        tags.reserveCapacity(count)
        for number in (highest + 1)...(highest + count) {
            let digits = String(number)
            tags.append(prefix + String(repeating: "0", count: max(0, width - digits.count)) + digits)
        }
        return tags
    }
}
