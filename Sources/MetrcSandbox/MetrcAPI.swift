import Foundation

extension SandboxState {
    /// Answers a read route for `license` (nil for the global lists), as Metrc would: paged envelope or bare array.
    /// `maxModifiedWindow` (seconds) refuses wider `lastModifiedStart`/`lastModifiedEnd` windows on windowed lists.
    public func read(_ route: MetrcRoute, license: String?, user: SandboxUser, query: QueryParameters,
                     maxModifiedWindow: TimeInterval? = nil) throws(MetrcError) -> JSONValue
    {
        let window = try ModifiedWindow.parse(query)
        if route.isWindowed, let maxModifiedWindow { try window.checkWidth(atMost: maxModifiedWindow) }
        let page = try PageRequest.parse(query)
        let lic = license ?? ""
        // Filters to positions (no copies), then renders only the requested page: lists may hold 100,000 plants.
        func paged<T>(_ records: [T], where keep: (T) -> Bool = { _ in true }, _ lastModified: (T) -> Date?,
                      _ render: (T) -> JSONValue) -> JSONValue {
            var kept: [Int] = []
            for index in records.indices where keep(records[index]) {
                if let date = lastModified(records[index]), !window.contains(date) { continue }
                kept.append(index)
            }
            return pageEnvelope(total: kept.count, page: page) { range in kept[range].map { render(records[$0]) } }
        }
        switch route {
        case .facilities:
            return .array(facilities.filter { user.facilities[$0.license] != nil }.map { json(facility: $0, for: user) })
        case .unitsOfMeasure:
            return .array(unitsOfMeasure.map { json(unit: $0) })
        case .wasteMethods:
            return .array(wasteMethods.map { json(wasteMethod: $0) })
        case .plantWasteMethods:
            return paged(wasteMethods, { _ in nil }) { json(wasteMethod: $0) }
        case .plantWasteReasons:
            return paged(wasteReasons, { _ in nil }) { json(reason: $0) }
        case .adjustReasons:
            return paged(adjustmentReasons, { _ in nil }) { json(reason: $0) }
        case .vegetativePlants:
            return paged(plants, where: { $0.license == lic && $0.isActive && $0.growthPhase == .vegetative },
                         \.lastModified) { json(plant: $0) }
        case .floweringPlants:
            return paged(plants, where: { $0.license == lic && $0.isActive && $0.growthPhase == .flowering },
                         \.lastModified) { json(plant: $0) }
        case .inactivePlants:
            return paged(plants, where: { $0.license == lic && !$0.isActive }, \.lastModified) { json(plant: $0) }
        case .onHoldPlants:
            return paged([SandboxPlant](), \.lastModified) { json(plant: $0) }
        case .plant(let label):
            guard let found = plant(label: label, license: lic) else { throw .notFound("Plant \(label) was not found.") }
            return json(plant: found)
        case .activePackages:
            return paged(packages, where: { $0.license == lic && $0.isActive }, \.lastModified) { json(package: $0) }
        case .inactivePackages:
            return paged(packages, where: { $0.license == lic && !$0.isActive }, \.lastModified) { json(package: $0) }
        case .package(let label):
            guard let found = package(label: label, license: lic) else { throw .notFound("Package \(label) was not found.") }
            return json(package: found)
        case .adjustments:
            return paged(adjustments, where: { $0.license == lic }, \.lastModified) { json(adjustment: $0) }
        case .locations:
            return paged(locations, where: { $0.license == lic }, \.lastModified) { json(location: $0) }
        case .locationTypes:
            let types = Set(locations.filter { $0.license == lic }.compactMap(\.locationType)).sorted()
            return paged(types, { _ in nil }) { name in
                ["Id": 1, "Name": .string(name), "ForPlantBatches": true, "ForPlants": true, "ForHarvests": true,
                 "ForPackages": true]
            }
        case .sublocations:
            return paged(sublocations, where: { $0.license == lic }, \.lastModified) { json(sublocation: $0) }
        case .strains:
            // One pass over the plants for every strain's IsUsed, not one pass per strain.
            let used = Set(plants.lazy.filter { $0.license == lic }.map(\.strain))
            return paged(strains, where: { $0.license == lic }, \.lastModified) {
                json(strain: $0, isUsed: used.contains($0.name))
            }
        case .items:
            let used = Set(packages.lazy.filter { $0.license == lic }.map(\.item))
            return paged(items, where: { $0.license == lic }, \.lastModified) { json(item: $0, isUsed: used.contains($0.name)) }
        case .activeHarvests:
            return paged(harvests, where: { $0.license == lic }, \.lastModified) { json(harvest: $0) }
        case .plantWaste:
            return paged(plantWaste, where: { $0.license == lic }, \.lastModified) { json(plantWaste: $0) }
        case .write:
            throw MetrcError(status: 405, message: "The requested resource does not support http method 'GET'.")
        }
    }
}

/// Checks a write's body: a non-empty JSON array of at most `objectLimit` objects.
public func parseWriteBody(_ body: [UInt8], objectLimit: Int) throws(MetrcError) -> [JSONValue] {
    guard !body.isEmpty else { throw .badRequest("The request body is empty; a JSON array of objects is expected.") }
    guard let value = JSONValue.parse(body) else { throw .badRequest("The request body is not valid JSON.") }
    guard case .array(let objects) = value else { throw .badRequest("The request body must be a JSON array of objects.") }
    guard !objects.isEmpty else { throw .badRequest("No objects were submitted.") }
    guard objects.count <= objectLimit else {
        throw MetrcError(status: 413, message: "Too many objects in one request: \(objects.count) (at most \(objectLimit)).")
    }
    return objects
}
