import Foundation

extension SandboxState {
    /// `PUT /packages/v2/location`: `Label`, `Location`, `Sublocation`, `MoveDate`.
    mutating func movePackage(_ check: inout RowCheck, _ context: WriteContext) -> Int? {
        let license = context.license
        let index = findActivePackage(&check, license: license)
        let target = checkLocation(
            check.requiredString("Location"), sublocation: check.optionalString("Sublocation"),
            field: "Location", subfield: "Sublocation", license: license,
            purpose: \.forPackages, purposeText: "packages", &check)
        let day = check.requiredDay("MoveDate", context)
        if let index, let day, day < packages[index].packagedDate {
            check.fail("MoveDate \(day) is before package \(packages[index].label) was packaged (\(packages[index].packagedDate)).")
        }
        guard check.messages.isEmpty, let index, let target else { return nil }
        records.changePackage(at: index) { package in
            package.location = target.0
            package.sublocation = target.1
            package.lastModified = context.now
        }
        return packages[index].id
    }

    /// `POST /packages/v2/adjust`: `Label`, `Quantity` (signed, not 0), `UnitOfMeasure` (same kind as the
    /// package's unit; converted), `AdjustmentReason`, `AdjustmentDate`, `ReasonNote`. Not idempotent:
    /// every accepted object changes the quantity and adds an adjustment record.
    mutating func adjustPackage(_ check: inout RowCheck, _ context: WriteContext) -> Int? {
        let license = context.license
        let index = findActivePackage(&check, license: license)
        let quantity = check.requiredNumber("Quantity")
        if let quantity, quantity == 0 { check.fail("Quantity cannot be 0.") }
        let packageUnit = index.flatMap { self.unit(packages[$0].unitOfMeasure) }
        let unit = checkUnit(check.requiredString("UnitOfMeasure"), field: "UnitOfMeasure", kind: nil, &check)
        if let unit, let packageUnit, unit.quantityType != packageUnit.quantityType {
            check.fail("UnitOfMeasure \(unit.name) cannot be used for package \(packages[index!].label), measured in \(packageUnit.name).")
        }
        var reason: SandboxReason?
        if let reasonName = check.requiredString("AdjustmentReason") {
            reason = adjustmentReason(reasonName)
            if reason == nil { check.fail("AdjustmentReason \(reasonName) is not a known adjustment reason.") }
        }
        let note = check.optionalString("ReasonNote")
        if let reason, reason.requiresNote, note == nil {
            check.fail("ReasonNote is required for adjustment reason \(reason.name).")
        }
        let day = check.requiredDay("AdjustmentDate", context)
        if let index, let day, day < packages[index].packagedDate {
            check.fail("AdjustmentDate \(day) is before package \(packages[index].label) was packaged (\(packages[index].packagedDate)).")
        }
        var newQuantity: Double?
        if let index, let quantity, let unit, let packageUnit, unit.quantityType == packageUnit.quantityType {
            let converted = quantity * unit.toBase / packageUnit.toBase
            let result = roundQuantity(packages[index].quantity + converted)
            if result < 0 {
                check.fail("Adjusting package \(packages[index].label) by \(JSONValue.format(quantity)) \(unit.name) would make its quantity negative.")
            }
            newQuantity = result
        }
        guard check.messages.isEmpty, let index, let quantity, let unit, let reason, let day, let newQuantity
        else { return nil }
        records.changePackage(at: index) { package in
            package.quantity = newQuantity
            package.lastModified = context.now
        }
        let id = nextId
        records.appendAdjustment(SandboxAdjustment(
            id: id, license: license, packageId: packages[index].id, packageLabel: packages[index].label,
            quantity: quantity, unitOfMeasure: unit.name, reason: reason.name, adjustmentDate: day,
            reasonNote: note, adjustedByUserName: context.userName, lastModified: context.now))
        return id
    }
}
