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

        let name = harvestName ?? "\(day)-\(drying.0)-H"
        let harvestIndex: Int
        if let existing = harvests.firstIndex(where: { $0.license == license && $0.name == name }) {
            harvestIndex = existing
            let existingUnit = self.unit(harvests[existing].unitOfWeight) ?? unit
            harvests[existing].totalWetWeight = roundQuantity(
                harvests[existing].totalWetWeight + weight * unit.toBase / existingUnit.toBase)
        } else {
            harvests.append(SandboxHarvest(
                id: nextId, license: license, name: name, dryingLocation: drying.0, dryingSublocation: drying.1,
                harvestStartDate: day, plantLabels: [], totalWetWeight: roundQuantity(weight), unitOfWeight: unit.name,
                lastModified: context.now))
            harvestIndex = harvests.count - 1
        }
        harvests[harvestIndex].plantLabels.append(plants[index].label)
        harvests[harvestIndex].lastModified = context.now

        plants[index].state = .harvested
        plants[index].harvestId = harvests[harvestIndex].id
        plants[index].harvestedDate = day
        plants[index].harvestedWetWeight = roundQuantity(weight)
        plants[index].harvestedUnitOfWeight = unit.name
        plants[index].lastModified = context.now
        return plants[index].id
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
        plants[index].location = target.0
        plants[index].sublocation = target.1
        plants[index].lastModified = context.now
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
        plants[index].state = .destroyed
        plants[index].destroyedDate = day
        plants[index].destroyedNote = note
        plants[index].destroyedByUserName = context.userName
        plants[index].lastModified = context.now
        return plants[index].id
    }
}
