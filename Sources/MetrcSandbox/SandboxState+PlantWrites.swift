import Foundation

extension SandboxState {
    /// `PUT /plants/v2/harvest`: `Plant`, `Weight`, `UnitOfWeight`, `DryingLocation`, `DryingSublocation`,
    /// `HarvestName`, `PatientLicenseNumber`, `ActualDate`. Only flowering, tracked plants can be harvested.
    mutating func harvest(_ check: inout RowCheck, _ context: WriteContext) -> Int? {
        let license = context.license
        let index = findActivePlant(&check, labelField: "Plant", allowId: false, license: license)
        if let index, plants[index].growthPhase != .flowering {
            check.fail("Plant \(plants[index].label) is not in the flowering phase and cannot be harvested.")
        }
        let weight = check.requiredNumber("Weight")
        if let weight, !(weight > 0) { check.fail("Weight must be greater than 0.") }
        let unit = checkUnit(check.requiredString("UnitOfWeight"), field: "UnitOfWeight", kind: .weightBased, &check)
        let drying = checkLocation(
            check.requiredString("DryingLocation"), sublocation: check.optionalString("DryingSublocation"),
            field: "DryingLocation", subfield: "DryingSublocation", license: license,
            purpose: \.forHarvests, purposeText: "harvests", &check)
        let harvestName = check.optionalString("HarvestName")
        _ = check.optionalString("PatientLicenseNumber")
        let day = check.requiredDay("ActualDate", context)
        if let index, let day, day < plants[index].plantedDate {
            check.fail("ActualDate \(day) is before plant \(plants[index].label) was planted (\(plants[index].plantedDate)).")
        }
        guard check.messages.isEmpty, let index, let weight, let unit, let drying, let day else { return nil }

        addHarvestedWeight(plant: index, harvestName: harvestName ?? "\(day)-\(drying.0)-H", type: .wholePlant,
                           weight: weight, unit: unit, drying: drying, day: day, context)
        records.changePlant(at: index) { plant in
            plant.state = .harvested
            plant.harvestedDate = day
        }
        return plants[index].id
    }

    /// `POST /plants/v2/manicure`: `Plant`, `Weight`, `UnitOfWeight`, `DryingLocation`, `DryingSublocation`,
    /// `HarvestName`, `PlantCount`, `PatientLicenseNumber`, `ActualDate`. A partial harvest: the plant stays
    /// tracked (same phase, same lists) while its harvest counters grow and the weight goes into a harvest batch.
    /// Not idempotent: every accepted object counts again, as Metrc documents for POSTs.
    mutating func manicurePlant(_ check: inout RowCheck, _ context: WriteContext) -> Int? {
        let license = context.license
        // No phase check, unlike the whole-plant harvest: Metrc's permission for it is "Manicure/Harvest
        // Veg/Flower Plants", so vegetative and flowering plants (the only phases the sandbox has) both qualify.
        let index = findActivePlant(&check, labelField: "Plant", allowId: false, license: license)
        let weight = check.requiredNumber("Weight")
        if let weight, !(weight > 0) { check.fail("Weight must be greater than 0.") }
        let unit = checkUnit(check.requiredString("UnitOfWeight"), field: "UnitOfWeight", kind: .weightBased, &check)
        let drying = checkLocation(
            check.requiredString("DryingLocation"), sublocation: check.optionalString("DryingSublocation"),
            field: "DryingLocation", subfield: "DryingSublocation", license: license,
            purpose: \.forHarvests, purposeText: "harvests", &check)
        let harvestName = check.optionalString("HarvestName")
        // Checked, but without further effect: the sandbox does not model plant groups.
        if let plantCount = check.optionalInt("PlantCount"), plantCount < 1 {
            check.fail("PlantCount must be at least 1.")
        }
        _ = check.optionalString("PatientLicenseNumber")
        let day = check.requiredDay("ActualDate", context)
        if let index, let day, day < plants[index].plantedDate {
            check.fail("ActualDate \(day) is before plant \(plants[index].label) was planted (\(plants[index].plantedDate)).")
        }
        guard check.messages.isEmpty, let index, let weight, let unit, let drying, let day else { return nil }

        // "-M", not the harvest's "-H": a generated manicure name must not fold into that day's whole-plant harvest.
        addHarvestedWeight(plant: index, harvestName: harvestName ?? "\(day)-\(drying.0)-M", type: .manicure,
                           weight: weight, unit: unit, drying: drying, day: day, context)
        return plants[index].id
    }

    /// Adds `weight` from plant `index` to the harvest batch `harvestName` (created as `type` if the facility has
    /// none of that name; an existing batch keeps its unit and the weight is converted into it) and counts it on
    /// the plant: `HarvestCount` + 1, `HarvestedWetWeight` + weight (in the unit of the plant's first harvest or
    /// manicure), `HarvestId` = this batch. Shared by harvest and manicure, which Metrc counts alike.
    private mutating func addHarvestedWeight(plant index: Int, harvestName name: String, type: HarvestType,
                                             weight: Double, unit: SandboxUnitOfMeasure, drying: (String, String?),
                                             day: MetrcDay, _ context: WriteContext) {
        let license = context.license
        let harvestIndex: Int
        if let existing = records.harvestPosition(name: name, license: license) {
            harvestIndex = existing
            let existingUnit = self.unit(harvests[existing].unitOfWeight) ?? unit
            let total = roundQuantity(harvests[existing].totalWetWeight + weight * unit.toBase / existingUnit.toBase)
            records.changeHarvest(at: existing) { $0.totalWetWeight = total }
        } else {
            records.appendHarvest(SandboxHarvest(
                id: nextId, license: license, name: name, harvestType: type, dryingLocation: drying.0,
                dryingSublocation: drying.1, harvestStartDate: day, plantLabels: [], totalWetWeight: roundQuantity(weight),
                unitOfWeight: unit.name, lastModified: context.now))
            harvestIndex = harvests.count - 1
        }
        // PlantCount of a batch counts plants, not manicures: a plant manicured twice into it is one plant.
        let label = plants[index].label
        let isNewToBatch = !harvests[harvestIndex].plantLabels.contains(label)
        records.changeHarvest(at: harvestIndex) { harvest in
            if isNewToBatch { harvest.plantLabels.append(label) }
            harvest.lastModified = context.now
        }

        let plantUnit = plants[index].harvestedUnitOfWeight.flatMap { self.unit($0) } ?? unit
        let wetWeight = roundQuantity((plants[index].harvestedWetWeight ?? 0) + weight * unit.toBase / plantUnit.toBase)
        let harvestCount = plants[index].timesHarvested + 1
        let harvestId = harvests[harvestIndex].id
        records.changePlant(at: index) { plant in
            plant.harvestedWetWeight = wetWeight
            plant.harvestedUnitOfWeight = plantUnit.name
            plant.harvestCount = harvestCount
            plant.harvestId = harvestId
            plant.lastModified = context.now
        }
    }

    /// `PUT /plants/v2/location`: `Id` or `Label`, `Location`, `Sublocation`, `ActualDate`.
    mutating func movePlant(_ check: inout RowCheck, _ context: WriteContext) -> Int? {
        let license = context.license
        let index = findActivePlant(&check, labelField: "Label", allowId: true, license: license)
        let target = checkLocation(
            check.requiredString("Location"), sublocation: check.optionalString("Sublocation"),
            field: "Location", subfield: "Sublocation", license: license,
            purpose: \.forPlants, purposeText: "plants", &check)
        let day = check.requiredDay("ActualDate", context)
        if let index, let day, day < plants[index].plantedDate {
            check.fail("ActualDate \(day) is before plant \(plants[index].label) was planted (\(plants[index].plantedDate)).")
        }
        guard check.messages.isEmpty, let index, let target else { return nil }
        records.changePlant(at: index) { plant in
            plant.location = target.0
            plant.sublocation = target.1
            plant.lastModified = context.now
        }
        return plants[index].id
    }

    /// `DELETE /plants/v2/`: `Id` or `Label`, `WasteMethodName`, `WasteMaterialMixed`, `WasteWeight`,
    /// `WasteUnitOfMeasureName`, `WasteReasonName`, `Count`, `ReasonNote`, `ActualDate`.
    mutating func destroyPlant(_ check: inout RowCheck, _ context: WriteContext) -> Int? {
        let license = context.license
        let index = findActivePlant(&check, labelField: "Label", allowId: true, license: license)
        if let method = check.requiredString("WasteMethodName"), wasteMethod(method) == nil {
            check.fail("WasteMethodName \(method) is not a known waste method.")
        }
        _ = check.requiredString("WasteMaterialMixed")
        let reasonName = check.requiredString("WasteReasonName")
        var reason: SandboxReason?
        if let reasonName {
            reason = wasteReason(reasonName)
            if reason == nil { check.fail("WasteReasonName \(reasonName) is not a known waste reason.") }
        }
        let wasteWeight = check.optionalNumber("WasteWeight")
        let unitName = check.optionalString("WasteUnitOfMeasureName")
        if let wasteWeight, wasteWeight < 0 { check.fail("WasteWeight cannot be negative.") }
        if reason?.requiresWasteWeight == true, !((wasteWeight ?? 0) > 0) {
            check.fail("WasteWeight greater than 0 is required for waste reason \(reason!.name).")
        }
        if let wasteWeight, wasteWeight > 0, unitName == nil {
            check.fail("WasteUnitOfMeasureName is required when WasteWeight is given.")
        }
        _ = checkUnit(unitName, field: "WasteUnitOfMeasureName", kind: .weightBased, &check)
        if let count = check.optionalInt("Count"), count < 0 { check.fail("Count cannot be negative.") }
        let note = check.optionalString("ReasonNote")
        if let reason, reason.requiresNote, note == nil {
            check.fail("ReasonNote is required for waste reason \(reason.name).")
        }
        let day = check.requiredDay("ActualDate", context)
        if let index, let day, day < plants[index].plantedDate {
            check.fail("ActualDate \(day) is before plant \(plants[index].label) was planted (\(plants[index].plantedDate)).")
        }
        guard check.messages.isEmpty, let index, let day else { return nil }
        records.changePlant(at: index) { plant in
            plant.state = .destroyed
            plant.destroyedDate = day
            plant.destroyedNote = note
            plant.destroyedByUserName = context.userName
            plant.lastModified = context.now
        }
        return plants[index].id
    }

    /// `POST /plants/v2/waste`: `PlantLabels` (1...100 tags; or none, with `LocationName`, for the waste of a whole
    /// location), `LocationName`, `SublocationName`, `WasteMethodName`, `MixedMaterial`, `WasteWeight`,
    /// `UnitOfMeasureName`, `ReasonName`, `Note`, `WasteDate`. Adds one waste record for all the plants named; they
    /// stay tracked (only their `LastModified` changes). Not idempotent: every accepted object adds a record.
    mutating func recordPlantWaste(_ check: inout RowCheck, _ context: WriteContext) -> Int? {
        let license = context.license
        var indices: [Int]? = []
        if let labels = check.stringArray("PlantLabels") {
            if labels.count > SandboxState.maximumWastePlantLabels {
                check.fail("PlantLabels names \(labels.count) plants; at most \(SandboxState.maximumWastePlantLabels) are allowed.")
            }
            var seen: Set<String> = []
            for label in labels {
                guard seen.insert(label).inserted else {
                    check.fail("Plant \(label) is named more than once in PlantLabels.")
                    indices = nil
                    continue
                }
                if let index = findTrackedPlant(label: label, license: license, &check) {
                    indices?.append(index)
                } else {
                    indices = nil
                }
            }
        } else {
            indices = nil
        }
        let locationName = check.optionalString("LocationName")
        let sublocationName = check.optionalString("SublocationName")
        // Canonical names of where the waste is from; both stay nil when not given.
        var place: (location: String?, sublocation: String?) = (nil, nil)
        if let locationName {
            if let found = checkLocation(locationName, sublocation: sublocationName, field: "LocationName",
                                         subfield: "SublocationName", license: license, purpose: \.forPlants,
                                         purposeText: "plants", &check) {
                place = (found.0, found.1)
            }
        } else {
            if indices?.isEmpty == true { check.fail("PlantLabels or LocationName is required.") }
            if let sublocationName {
                if let sub = sublocation(sublocationName, license: license) {
                    place.sublocation = sub.name
                } else {
                    check.fail("SublocationName \(sublocationName) is not a sublocation of facility \(license).")
                }
            }
        }
        var method: SandboxWasteMethod?
        if let name = check.requiredString("WasteMethodName") {
            method = wasteMethod(name)
            if method == nil { check.fail("WasteMethodName \(name) is not a known waste method.") }
        }
        let material = check.requiredString("MixedMaterial")
        var reason: SandboxReason?
        if let name = check.requiredString("ReasonName") {
            reason = wasteReason(name)
            if reason == nil { check.fail("ReasonName \(name) is not a known waste reason.") }
        }
        let weight = check.optionalNumber("WasteWeight")
        if let weight, !(weight > 0) { check.fail("WasteWeight must be greater than 0.") }
        if let reason, reason.requiresWasteWeight == true, weight == nil {
            check.fail("WasteWeight greater than 0 is required for waste reason \(reason.name).")
        }
        let unitName = check.optionalString("UnitOfMeasureName")
        if weight != nil, unitName == nil { check.fail("UnitOfMeasureName is required when WasteWeight is given.") }
        let unit = checkUnit(unitName, field: "UnitOfMeasureName", kind: .weightBased, &check)
        let note = check.optionalString("Note")
        if let reason, reason.requiresNote, note == nil {
            check.fail("Note is required for waste reason \(reason.name).")
        }
        let day = check.requiredDay("WasteDate", context)
        if let day {
            for index in indices ?? [] where day < plants[index].plantedDate {
                check.fail("WasteDate \(day) is before plant \(plants[index].label) was planted (\(plants[index].plantedDate)).")
            }
        }
        guard check.messages.isEmpty, let indices, let method, let material, let reason, let day else { return nil }

        let id = nextId
        records.appendPlantWaste(SandboxPlantWaste(
            id: id, license: license, plantLabels: indices.map { plants[$0].label }, location: place.location,
            sublocation: place.sublocation, wasteMethod: method.name, mixedMaterial: material,
            wasteWeight: weight.map(roundQuantity), unitOfMeasure: unit?.name, reason: reason.name, note: note,
            wasteDate: day, recordedByUserName: context.userName, lastModified: context.now))
        for index in indices { records.changePlant(at: index) { $0.lastModified = context.now } }
        return id
    }

    /// Most plants one waste object may name. Metrc publishes no number; 100 is outlawd's own protocol limit for
    /// `plant.waste`, so a daemon bug that sends more shows up here rather than passing silently.
    static let maximumWastePlantLabels = 100
}
