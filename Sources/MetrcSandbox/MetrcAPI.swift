import Foundation

extension SandboxState {
    /// Answers a read route for `license` (nil for the global lists), as Metrc would: paged envelope or bare array.
    public func read(_ route: MetrcRoute, license: String?, user: SandboxUser, query: QueryParameters)
        throws(MetrcError) -> JSONValue
    {
        let window = try ModifiedWindow.parse(query)
        let page = try PageRequest.parse(query)
        let lic = license ?? ""
        func paged<T>(_ records: [T], _ lastModified: (T) -> Date?, _ render: (T) -> JSONValue) -> JSONValue {
            let kept = records.filter { record in lastModified(record).map(window.contains) ?? true }
            return pageEnvelope(kept.map(render), page: page)
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
            return paged(plants.filter { $0.license == lic && $0.isActive && $0.growthPhase == .vegetative }, \.lastModified) { json(plant: $0) }
        case .floweringPlants:
            return paged(plants.filter { $0.license == lic && $0.isActive && $0.growthPhase == .flowering }, \.lastModified) { json(plant: $0) }
        case .inactivePlants:
            return paged(plants.filter { $0.license == lic && !$0.isActive }, \.lastModified) { json(plant: $0) }
        case .onHoldPlants:
            return paged([SandboxPlant](), \.lastModified) { json(plant: $0) }
        case .plant(let label):
            guard let found = plant(label: label, license: lic) else { throw .notFound("Plant \(label) was not found.") }
            return json(plant: found)
        case .activePackages:
            return paged(packages.filter { $0.license == lic && $0.isActive }, \.lastModified) { json(package: $0) }
        case .inactivePackages:
            return paged(packages.filter { $0.license == lic && !$0.isActive }, \.lastModified) { json(package: $0) }
        case .package(let label):
            guard let found = package(label: label, license: lic) else { throw .notFound("Package \(label) was not found.") }
            return json(package: found)
        case .adjustments:
            return paged(adjustments.filter { $0.license == lic }, \.lastModified) { json(adjustment: $0) }
        case .locations:
            return paged(locations.filter { $0.license == lic }, \.lastModified) { json(location: $0) }
        case .locationTypes:
            let types = Set(locations.filter { $0.license == lic }.compactMap(\.locationType)).sorted()
            return paged(types, { _ in nil }) { name in
                ["Id": 1, "Name": .string(name), "ForPlantBatches": true, "ForPlants": true, "ForHarvests": true,
                 "ForPackages": true]
            }
        case .sublocations:
            return paged(sublocations.filter { $0.license == lic }, \.lastModified) { json(sublocation: $0) }
        case .strains:
            return paged(strains.filter { $0.license == lic }, \.lastModified) { json(strain: $0) }
        case .items:
            return paged(items.filter { $0.license == lic }, \.lastModified) { json(item: $0) }
        case .activeHarvests:
            return paged(harvests.filter { $0.license == lic }, \.lastModified) { json(harvest: $0) }
        case .plantWaste:
            return paged(plantWaste.filter { $0.license == lic }, \.lastModified) { json(plantWaste: $0) }
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
