import Metrc
import OutlawProtocol
import Testing

@Suite("Event → Metrc object mapping (pure)")
struct MappingTests {
    let tag = "1A4FF0100000022000000151"
    let packageTag = "1A4FF0300000022000000001"

    @Test func harvestWithAllFields() {
        var fields = Events.harvest(tag, weight: 512.5, harvestName: "Fall Harvest")
        fields["patient_license"] = "P-1"
        #expect(MetrcBody.object(type: .plantHarvest, fields: fields, date: "2026-11-28") == [
            "Plant": .string(tag), "Weight": 512.5, "UnitOfWeight": "Grams", "DryingLocation": "Drying Room",
            "DryingSublocation": "Rack 1", "HarvestName": "Fall Harvest", "PatientLicenseNumber": "P-1",
            "ActualDate": "2026-11-28",
        ])
    }

    @Test func harvestOptionalFieldsAbsentAreNull() {
        var fields = Events.harvest(tag, weight: 100)
        fields["drying_sublocation"] = nil
        #expect(MetrcBody.object(type: .plantHarvest, fields: fields, date: "2026-01-02") == [
            "Plant": .string(tag), "Weight": 100, "UnitOfWeight": "Grams", "DryingLocation": "Drying Room",
            "DryingSublocation": nil, "HarvestName": nil, "PatientLicenseNumber": nil, "ActualDate": "2026-01-02",
        ])
    }

    @Test func plantMove() {
        #expect(MetrcBody.object(type: .plantMove, fields: Events.movePlant(tag, to: "Flower Room 2", sublocation: "Bench 3"),
                                 date: "2026-11-28") == [
            "Label": .string(tag), "Location": "Flower Room 2", "Sublocation": "Bench 3", "ActualDate": "2026-11-28",
        ])
        #expect(MetrcBody.object(type: .plantMove, fields: Events.movePlant(tag), date: "2026-11-27") == [
            "Label": .string(tag), "Location": "Quarantine", "Sublocation": nil, "ActualDate": "2026-11-27",
        ])
    }

    @Test func plantDestroy() {
        #expect(MetrcBody.object(type: .plantDestroy, fields: Events.destroy(tag, note: "black mold"), date: "2026-11-28") == [
            "Label": .string(tag), "WasteMethodName": "Compost", "WasteMaterialMixed": "Soil", "WasteWeight": 42,
            "WasteUnitOfMeasureName": "Grams", "WasteReasonName": "Mold", "ReasonNote": "black mold", "Count": 1,
            "ActualDate": "2026-11-28",
        ])
        #expect(MetrcBody.object(type: .plantDestroy, fields: Events.destroy(tag), date: "2026-11-28")["ReasonNote"] == .null)
    }

    @Test func packageMove() {
        #expect(MetrcBody.object(type: .packageMove, fields: Events.movePackage(packageTag, to: "Vault", sublocation: "Shelf B"),
                                 date: "2026-11-28") == [
            "Label": .string(packageTag), "Location": "Vault", "Sublocation": "Shelf B", "MoveDate": "2026-11-28",
        ])
        #expect(MetrcBody.object(type: .packageMove, fields: Events.movePackage(packageTag), date: "2026-11-28")["Sublocation"] == .null)
    }

    @Test func packageAdjust() {
        #expect(MetrcBody.object(type: .packageAdjust,
                                 fields: Events.adjust(packageTag, quantity: -2.5, reason: "Scale Variance", note: "new scale"),
                                 date: "2026-11-28") == [
            "Label": .string(packageTag), "Quantity": -2.5, "UnitOfMeasure": "Grams", "AdjustmentReason": "Scale Variance",
            "AdjustmentDate": "2026-11-28", "ReasonNote": "new scale",
        ])
        #expect(MetrcBody.object(type: .packageAdjust, fields: Events.adjust(packageTag), date: "2026-11-28")["ReasonNote"] == .null)
    }

    @Test func scansMapToNothing() {
        #expect(MetrcBody.object(type: .plantScan, fields: ["plant": .string(tag)], date: "2026-11-28") == .null)
        #expect(MetrcBody.object(type: .packageScan, fields: ["package": .string(packageTag)], date: "2026-11-28") == .null)
    }

    @Test func actionsOfEventTypes() {
        #expect(MetrcAction(eventType: .plantHarvest) == .harvestPlants)
        #expect(MetrcAction(eventType: .plantMove) == .movePlants)
        #expect(MetrcAction(eventType: .plantDestroy) == .destroyPlants)
        #expect(MetrcAction(eventType: .packageMove) == .movePackages)
        #expect(MetrcAction(eventType: .packageAdjust) == .adjustPackages)
        #expect(MetrcAction(eventType: .plantManicure) == .manicurePlants)
        #expect(MetrcAction(eventType: .plantWaste) == .wastePlants)
        #expect(MetrcAction(eventType: .plantScan) == nil)
        #expect(MetrcAction(eventType: .packageScan) == nil)
    }

    @Test func methodsAndPaths() {
        let calls = MetrcAction.allCases.map { "\($0.method) \($0.path) \($0.isIdempotent)" }
        #expect(calls == [
            "PUT /plants/v2/harvest true", "PUT /plants/v2/location true", "DELETE /plants/v2/ true",
            "PUT /packages/v2/location true", "POST /packages/v2/adjust false",
            "POST /plants/v2/manicure false", "POST /plants/v2/waste false",
        ])
        #expect(MetrcAction.allCases.map(\.rawValue) == [
            "harvest_plants", "move_plants", "destroy_plants", "move_packages", "adjust_packages", "manicure_plants", "waste_plants",
        ])
    }

    @Test func manicureAsMetrcNamesItsFields() {
        let fields: [String: JSON] = ["plant": .string(tag), "weight": 40.5, "unit": "Grams", "drying_location": "Drying Room",
                                      "harvest_name": "Nov manicure", "plant_count": 2]
        #expect(MetrcBody.object(type: .plantManicure, fields: fields, date: "2026-11-28") == [
            "Plant": .string(tag), "Weight": 40.5, "UnitOfWeight": "Grams", "DryingLocation": "Drying Room",
            "DryingSublocation": .null, "HarvestName": "Nov manicure", "PlantCount": 2, "PatientLicenseNumber": .null,
            "ActualDate": "2026-11-28",
        ])
        // PlantCount defaults to 1, as the contract says.
        #expect(MetrcBody.object(type: .plantManicure, fields: ["plant": .string(tag)], date: "2026-11-28")["PlantCount"] == 1)
    }

    @Test func wasteOfPlantsAndOfARoom() {
        let plants: [String: JSON] = ["plants": [.string(tag)], "waste_weight": 3, "waste_unit": "Grams", "waste_method": "Compost",
                                      "waste_material": "Soil", "reason": "Trim", "note": "leaves"]
        #expect(MetrcBody.object(type: .plantWaste, fields: plants, date: "2026-11-28") == [
            "PlantLabels": [.string(tag)], "LocationName": .null, "SublocationName": .null, "WasteMethodName": "Compost",
            "MixedMaterial": "Soil", "WasteWeight": 3, "UnitOfMeasureName": "Grams", "ReasonName": "Trim", "Note": "leaves",
            "WasteDate": "2026-11-28",
        ])
        let room: [String: JSON] = ["location": "Flower Room 1", "sublocation": "Bench 1", "waste_weight": 3, "waste_unit": "Grams",
                                    "waste_method": "Compost", "waste_material": "Soil", "reason": "Trim"]
        let body = MetrcBody.object(type: .plantWaste, fields: room, date: "2026-11-28")
        #expect(body["PlantLabels"] == [] && body["LocationName"] == "Flower Room 1" && body["SublocationName"] == "Bench 1")
    }
}
