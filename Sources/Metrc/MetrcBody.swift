import OutlawProtocol

/// Pure mapping of one event to the Metrc request object (PascalCase fields, per Metrc's v2 Postman export).
public enum MetrcBody {
    /// `fields` is the event object as the device sent it (snake_case keys per PROTOCOL.md); `date` is the
    /// event's Metrc date (YYYY-MM-DD, already computed). Values are passed through as sent (numbers stay
    /// numbers); an absent optional field becomes `null`. Scans (never uploaded) give `.null`.
    public static func object(type: EventType, fields: [String: JSONValue], date: String) -> JSONValue {
        func value(_ key: String) -> JSONValue { fields[key] ?? .null }
        let day = JSONValue.string(date)
        switch type {
        case .plantHarvest:
            return .object([
                "Plant": value("plant"),
                "Weight": value("weight"),
                "UnitOfWeight": value("unit"),
                "DryingLocation": value("drying_location"),
                "DryingSublocation": value("drying_sublocation"),
                "HarvestName": value("harvest_name"),
                "PatientLicenseNumber": value("patient_license"),
                "ActualDate": day,
            ])
        case .plantMove:
            return .object([
                "Label": value("plant"),
                "Location": value("location"),
                "Sublocation": value("sublocation"),
                "ActualDate": day,
            ])
        case .plantDestroy:
            return .object([
                "Label": value("plant"),
                "WasteMethodName": value("waste_method"),
                "WasteMaterialMixed": value("waste_material"),
                "WasteWeight": value("waste_weight"),
                "WasteUnitOfMeasureName": value("waste_unit"),
                "WasteReasonName": value("reason"),
                "ReasonNote": value("note"),
                "Count": 1,
                "ActualDate": day,
            ])
        case .packageMove:
            return .object([
                "Label": value("package"),
                "Location": value("location"),
                "Sublocation": value("sublocation"),
                "MoveDate": day,
            ])
        case .packageAdjust:
            return .object([
                "Label": value("package"),
                "Quantity": value("quantity"),
                "UnitOfMeasure": value("unit"),
                "AdjustmentReason": value("reason"),
                "AdjustmentDate": day,
                "ReasonNote": value("note"),
            ])
        case .plantManicure:
            return .object([
                "Plant": value("plant"),
                "Weight": value("weight"),
                "UnitOfWeight": value("unit"),
                "DryingLocation": value("drying_location"),
                "DryingSublocation": value("drying_sublocation"),
                "HarvestName": value("harvest_name"),
                "PlantCount": fields["plant_count"] ?? 1,
                "PatientLicenseNumber": value("patient_license"),
                "ActualDate": day,
            ])
        case .plantWaste:
            let plants = fields["plants"].flatMap { $0.isNull ? nil : $0 }
            return .object([
                "PlantLabels": plants ?? .array([]),
                "LocationName": value("location"),
                "SublocationName": value("sublocation"),
                "WasteMethodName": value("waste_method"),
                "MixedMaterial": value("waste_material"),
                "WasteWeight": value("waste_weight"),
                "UnitOfMeasureName": value("waste_unit"),
                "ReasonName": value("reason"),
                "Note": value("note"),
                "WasteDate": day,
            ])
        case .plantScan, .packageScan:
            return .null
        }
    }
}
