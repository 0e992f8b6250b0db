import Foundation

/// Metrc-shaped JSON (PascalCase) for every record the sandbox serves.
extension SandboxState {
    func json(facility: SandboxFacility, for user: SandboxUser) -> JSONValue {
        [
            "FacilityId": .int(facility.id),
            "HireDate": "0001-01-01",
            "IsOwner": .bool(facility.ownerUserName == user.name),
            "IsManager": .bool(facility.ownerUserName == user.name),
            "IsFinancialContact": false,
            "Email": nil,
            "Occupations": [],
            "Name": .string(facility.name),
            "Alias": .string(facility.name),
            "DisplayName": .string(facility.name),
            "CredentialedDate": "2024-01-01",
            "SupportActivationDate": nil,
            "SupportExpirationDate": nil,
            "FacilityType": [
                "IsMedical": false, "IsRetail": true, "IsHemp": false,
                "CanGrowPlants": true, "CanTrackVegetativePlants": true,
                "CanAssignLocationsToPackages": true, "CanUpdateLocationsOnPackages": true,
                "EnableSublocations": true,
            ],
            "License": [
                "Number": .string(facility.license),
                "EmployeeLicenseNumber": .string(facility.license),
                "StartDate": "2024-01-01",
                "EndDate": "2027-12-31",
                "LicenseType": .string(facility.licenseType),
            ],
        ]
    }

    func json(location: SandboxLocation) -> JSONValue {
        [
            "Id": .int(location.id),
            "Name": .string(location.name),
            "LocationTypeId": 1,
            "LocationTypeName": .optional(location.locationType),
            "ForPlantBatches": .bool(location.forPlants ?? true),
            "ForPlants": .bool(location.forPlants ?? true),
            "ForHarvests": .bool(location.forHarvests ?? true),
            "ForPackages": .bool(location.forPackages ?? true),
        ]
    }

    func json(sublocation: SandboxSublocation) -> JSONValue {
        ["Id": .int(sublocation.id), "Name": .string(sublocation.name)]
    }

    /// `isUsed` nil: worked out here, by a pass over the plants.
    func json(strain: SandboxStrain, isUsed: Bool? = nil) -> JSONValue {
        let genetics: JSONValue
        if let indica = strain.indicaPercentage, let sativa = strain.sativaPercentage {
            genetics = .string("\(JSONValue.format(indica))% Indica / \(JSONValue.format(sativa))% Sativa")
        } else {
            genetics = nil
        }
        return [
            "Id": .int(strain.id),
            "Name": .string(strain.name),
            "TestingStatus": "None",
            "ThcLevel": nil,
            "CbdLevel": nil,
            "IndicaPercentage": .optional(strain.indicaPercentage),
            "SativaPercentage": .optional(strain.sativaPercentage),
            "IsUsed": .bool(isUsed ?? plants.contains { $0.license == strain.license && $0.strain == strain.name }),
            "Genetics": genetics,
        ]
    }

    /// `isUsed` nil: worked out here, by a pass over the packages.
    func json(item: SandboxItem, isUsed: Bool? = nil) -> JSONValue {
        let strainRecord = item.strain.flatMap { strain($0, license: item.license) }
        return [
            "Id": .int(item.id),
            "Name": .string(item.name),
            "ProductCategoryName": .string(item.category),
            "ProductCategoryType": .string(item.category.replacingOccurrences(of: " ", with: "")),
            "QuantityType": .string(unit(item.unitOfMeasure)?.quantityType.rawValue ?? "WeightBased"),
            "DefaultLabTestingState": "NotSubmitted",
            "UnitOfMeasureName": .string(item.unitOfMeasure),
            "ApprovalStatus": "Approved",
            "StrainId": .optional(strainRecord?.id),
            "StrainName": .optional(item.strain),
            "IsUsed": .bool(isUsed ?? packages.contains { $0.license == item.license && $0.item == item.name }),
        ]
    }

    func json(unit: SandboxUnitOfMeasure) -> JSONValue {
        ["QuantityType": .string(unit.quantityType.rawValue), "Name": .string(unit.name),
         "Abbreviation": .string(unit.abbreviation), "IsArchived": false]
    }

    func json(reason: SandboxReason) -> JSONValue {
        [
            "Name": .string(reason.name),
            "RequiresNote": .bool(reason.requiresNote),
            "RequiresWasteWeight": .bool(reason.requiresWasteWeight ?? false),
            "RequiresImmatureWasteWeight": false,
            "RequiresMatureWasteWeight": .bool(reason.requiresWasteWeight ?? false),
        ]
    }

    func json(wasteMethod: SandboxWasteMethod) -> JSONValue {
        ["Name": .string(wasteMethod.name), "ForPlants": true, "ForProductDestruction": true]
    }

    func json(plant: SandboxPlant) -> JSONValue {
        let strainRecord = strain(plant.strain, license: plant.license)
        let locationRecord = location(plant.location, license: plant.license)
        let sub = plant.sublocation.flatMap { sublocation($0, license: plant.license) }
        let harvestUnit = plant.harvestedUnitOfWeight.flatMap { unit($0) }
        return [
            "Id": .int(plant.id),
            "Label": .string(plant.label),
            "State": .string(plant.state.rawValue),
            "GrowthPhase": .string(plant.growthPhase.rawValue),
            "PlantBatchId": nil,
            "PlantBatchName": .optional(plant.plantBatchName),
            "PlantBatchTypeName": "Clone",
            "StrainId": .optional(strainRecord?.id),
            "StrainName": .string(plant.strain),
            "LocationId": .optional(locationRecord?.id),
            "LocationName": .string(plant.location),
            "LocationTypeName": .optional(locationRecord?.locationType),
            "SublocationId": .optional(sub?.id),
            "SublocationName": .optional(plant.sublocation),
            "PatientLicenseNumber": nil,
            "HarvestId": .optional(plant.harvestId),
            "HarvestedUnitOfWeightName": .optional(plant.harvestedUnitOfWeight),
            "HarvestedUnitOfWeightAbbreviation": .optional(harvestUnit?.abbreviation),
            "HarvestedWetWeight": .optional(plant.harvestedWetWeight),
            "HarvestCount": .int(plant.timesHarvested),
            "IsOnHold": false,
            "PlantedDate": .string(plant.plantedDate.description),
            "VegetativeDate": .optional(plant.vegetativeDate?.description),
            "FloweringDate": .optional(plant.floweringDate?.description),
            "HarvestedDate": .optional(plant.harvestedDate?.description),
            "DestroyedDate": .optional(plant.destroyedDate?.description),
            "DestroyedNote": .optional(plant.destroyedNote),
            "DestroyedByUserName": .optional(plant.destroyedByUserName),
            "LastModified": .string(MetrcTimestamp.format(plant.lastModified)),
        ]
    }

    func json(package: SandboxPackage) -> JSONValue {
        let itemRecord = item(package.item, license: package.license)
        let unitRecord = unit(package.unitOfMeasure)
        let locationRecord = package.location.flatMap { location($0, license: package.license) }
        let sub = package.sublocation.flatMap { sublocation($0, license: package.license) }
        return [
            "Id": .int(package.id),
            "Label": .string(package.label),
            "PackageType": "Product",
            "LocationId": .optional(locationRecord?.id),
            "LocationName": .optional(package.location),
            "LocationTypeName": .optional(locationRecord?.locationType),
            "SublocationId": .optional(sub?.id),
            "SublocationName": .optional(package.sublocation),
            "Quantity": .number(package.quantity),
            "UnitOfMeasureName": .string(package.unitOfMeasure),
            "UnitOfMeasureAbbreviation": .optional(unitRecord?.abbreviation),
            "PackagedDate": .string(package.packagedDate.description),
            "Note": nil,
            "IsOnHold": false,
            "IsFinished": .bool(package.finishedDate != nil),
            "FinishedDate": .optional(package.finishedDate?.description),
            "ArchivedDate": nil,
            "LabTestingState": "NotSubmitted",
            "LastModified": .string(MetrcTimestamp.format(package.lastModified)),
            // This package uses its item: no pass over every package (a package list would be quadratic).
            "Item": itemRecord.map { json(item: $0, isUsed: true) } ?? ["Name": .string(package.item)],
        ]
    }

    func json(adjustment: SandboxAdjustment) -> JSONValue {
        [
            "Id": .int(adjustment.id),
            "PackageId": .int(adjustment.packageId),
            "PackageLabel": .string(adjustment.packageLabel),
            "Quantity": .number(adjustment.quantity),
            "UnitOfMeasureName": .string(adjustment.unitOfMeasure),
            "UnitOfMeasureAbbreviation": .optional(unit(adjustment.unitOfMeasure)?.abbreviation),
            "AdjustmentReasonName": .string(adjustment.reason),
            "AdjustmentDate": .string(adjustment.adjustmentDate.description),
            "ReasonNote": .optional(adjustment.reasonNote),
            "AdjustedByUserName": .string(adjustment.adjustedByUserName),
            "LastModified": .string(MetrcTimestamp.format(adjustment.lastModified)),
        ]
    }

    func json(harvest: SandboxHarvest) -> JSONValue {
        [
            "Id": .int(harvest.id),
            "Name": .string(harvest.name),
            "HarvestType": .string((harvest.harvestType ?? .wholePlant).rawValue),
            "DryingLocationName": .string(harvest.dryingLocation),
            "DryingSublocationName": .optional(harvest.dryingSublocation),
            "HarvestStartDate": .string(harvest.harvestStartDate.description),
            "CurrentWeight": .number(harvest.totalWetWeight),
            "TotalWetWeight": .number(harvest.totalWetWeight),
            "UnitOfWeightName": .string(harvest.unitOfWeight),
            "PlantCount": .int(harvest.plantLabels.count),
            "LastModified": .string(MetrcTimestamp.format(harvest.lastModified)),
        ]
    }

    /// One plant waste record, as `GET /plants/v2/waste` lists it. Metrc's list shows one line per plant (`Label`,
    /// `PlantWasteId`, `WasteAmount`); the sandbox shows one entry per record with every tag in `PlantLabels`,
    /// and `Label` only when the record names exactly one plant, so a reader keyed on either finds it.
    func json(plantWaste waste: SandboxPlantWaste) -> JSONValue {
        let locationRecord = waste.location.flatMap { location($0, license: waste.license) }
        let sub = waste.sublocation.flatMap { sublocation($0, license: waste.license) }
        let unitRecord = waste.unitOfMeasure.flatMap { unit($0) }
        return [
            "Id": .int(waste.id),
            "PlantWasteId": .int(waste.id),
            "PlantLabels": .array(waste.plantLabels.map(JSONValue.string)),
            "Label": waste.plantLabels.count == 1 ? JSONValue.string(waste.plantLabels[0]) : JSONValue.null,
            "PlantCount": .int(waste.plantLabels.count),
            "LocationId": .optional(locationRecord?.id),
            "LocationName": .optional(waste.location),
            "SublocationId": .optional(sub?.id),
            "SublocationName": .optional(waste.sublocation),
            "WasteMethodName": .string(waste.wasteMethod),
            "MixedMaterial": .string(waste.mixedMaterial),
            "WasteAmount": .optional(waste.wasteWeight),
            "WasteWeight": .optional(waste.wasteWeight),
            "UnitOfMeasureName": .optional(waste.unitOfMeasure),
            "WasteUnitOfMeasureAbbreviation": .optional(unitRecord?.abbreviation),
            "ReasonName": .string(waste.reason),
            "Note": .optional(waste.note),
            "WasteDate": .string(waste.wasteDate.description),
            "RecordedByUserName": .string(waste.recordedByUserName),
            "LastModified": .string(MetrcTimestamp.format(waste.lastModified)),
        ]
    }
}
