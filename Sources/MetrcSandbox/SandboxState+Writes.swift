import Foundation

/// One problem with one object of a write: Metrc's 400 body is an array of these.
public struct RowError: Sendable, Equatable, Codable, CustomStringConvertible {
    public let row: Int
    public let message: String

    public init(row: Int, message: String) {
        self.row = row
        self.message = message
    }

    public var json: JSONValue { ["row": .int(row), "message": .string(message)] }
    public var description: String { "row \(row): \(message)" }
}

/// The writes the sandbox accepts (named as the write log names them).
public enum SandboxAction: String, Codable, Sendable, CaseIterable {
    case harvestPlants
    case movePlants
    case destroyPlants
    case movePackages
    case adjustPackages
    /// `POST /plants/v2/manicure`: a partial harvest; the plant stays.
    case manicurePlants
    /// `POST /plants/v2/waste`: a plant waste record; the plants stay.
    case wastePlants

    public var permission: SandboxPermission {
        switch self {
        case .harvestPlants: .harvestPlants
        case .movePlants: .movePlants
        case .destroyPlants: .destroyPlants
        case .movePackages: .movePackages
        case .adjustPackages: .adjustPackages
        case .manicurePlants: .manicurePlants
        case .wastePlants: .wastePlants
        }
    }
}

public enum WriteOutcome: Sendable, Equatable {
    /// Applied; the ids of the records written (plants, packages, adjustments, plant waste records).
    case applied(ids: [Int])
    /// Nothing applied; every problem found.
    case rejected([RowError])
}

/// Who is writing, where and when.
public struct WriteContext: Sendable {
    public var license: String
    public var userName: String
    public var now: Date
    /// Days after today (UTC) a date may still be, to allow for facilities west of UTC.
    public var futureToleranceDays: Int

    public init(license: String, userName: String, now: Date, futureToleranceDays: Int = 1) {
        self.license = license
        self.userName = userName
        self.now = now
        self.futureToleranceDays = futureToleranceDays
    }

    var latestAllowedDay: MetrcDay { MetrcDay(now).adding(days: futureToleranceDays) }
}

extension SandboxState {
    /// Validates every object and, only if all are valid, applies them in order (all or nothing).
    /// Objects are validated against the state as the earlier objects of the same request leave it,
    /// so the same plant twice in one harvest is an error and two adjustments of one package add up.
    /// Applied in place (the objects of a valid row change the state at once) and undone if any row is invalid:
    /// the undo log holds only the records the request touched, so a write costs the same with a million records.
    public mutating func apply(_ action: SandboxAction, objects: [JSONValue], context: WriteContext) -> WriteOutcome {
        records.begin()
        var errors: [RowError] = []
        var ids: [Int] = []
        for (row, object) in objects.enumerated() {
            var check = RowCheck(object: object)
            guard object.objectValue != nil else {
                errors.append(RowError(row: row, message: "The object at row \(row) is not a JSON object."))
                continue
            }
            let id: Int?
            switch action {
            case .harvestPlants: id = harvest(&check, context)
            case .movePlants: id = movePlant(&check, context)
            case .destroyPlants: id = destroyPlant(&check, context)
            case .movePackages: id = movePackage(&check, context)
            case .adjustPackages: id = adjustPackage(&check, context)
            case .manicurePlants: id = manicurePlant(&check, context)
            case .wastePlants: id = recordPlantWaste(&check, context)
            }
            if check.messages.isEmpty, let id {
                ids.append(id)
            } else {
                errors += check.messages.map { RowError(row: row, message: $0) }
            }
        }
        guard errors.isEmpty else {
            records.rollBack()
            return .rejected(errors)
        }
        records.commit()
        return .applied(ids: ids)
    }
}

/// Reads the fields of one write object, collecting every problem as a message.
/// Field names match case-insensitively; values must have the right JSON type (no strings for numbers).
struct RowCheck {
    let object: JSONValue
    var messages: [String] = []

    init(object: JSONValue) { self.object = object }

    mutating func fail(_ message: String) { messages.append(message) }

    /// A non-empty string; `nil` (and a message) when missing, null, empty or not a string.
    mutating func requiredString(_ field: String) -> String? {
        switch object[field: field] {
        case .string(let value) where !value.trimmingCharacters(in: .whitespaces).isEmpty:
            return value
        case nil, .null?, .string?:
            fail("\(field) is required.")
        default:
            fail("\(field) must be a string.")
        }
        return nil
    }

    /// A string, or `nil` when missing, null or empty.
    mutating func optionalString(_ field: String) -> String? {
        switch object[field: field] {
        case .string(let value): return value.trimmingCharacters(in: .whitespaces).isEmpty ? nil : value
        case nil, .null?: return nil
        default:
            fail("\(field) must be a string.")
            return nil
        }
    }

    mutating func requiredNumber(_ field: String) -> Double? {
        switch object[field: field] {
        case .number(let value): return value
        case nil, .null?: fail("\(field) is required.")
        default: fail("\(field) must be a number.")
        }
        return nil
    }

    mutating func optionalNumber(_ field: String) -> Double? {
        switch object[field: field] {
        case .number(let value): return value
        case nil, .null?: return nil
        default:
            fail("\(field) must be a number.")
            return nil
        }
    }

    mutating func optionalInt(_ field: String) -> Int? {
        guard let value = optionalNumber(field) else { return nil }
        guard let int = JSONValue.number(value).intValue else {
            fail("\(field) must be a whole number.")
            return nil
        }
        return int
    }

    /// The strings of an array field; `[]` when it is missing or null, `nil` (and a message) when it is not an
    /// array of strings.
    mutating func stringArray(_ field: String) -> [String]? {
        switch object[field: field] {
        case nil, .null?:
            return []
        case .array(let items)?:
            var values: [String] = []
            for item in items {
                guard case .string(let value) = item else {
                    fail("\(field) must be an array of strings.")
                    return nil
                }
                values.append(value)
            }
            return values
        default:
            fail("\(field) must be an array of strings.")
            return nil
        }
    }

    /// A `YYYY-MM-DD` day, not later than the context allows.
    mutating func requiredDay(_ field: String, _ context: WriteContext) -> MetrcDay? {
        guard let text = requiredString(field) else { return nil }
        guard let day = MetrcDay(text) else {
            fail("\(field) \(text) is not a valid date (expected YYYY-MM-DD).")
            return nil
        }
        if day > context.latestAllowedDay {
            fail("\(field) \(text) cannot be in the future.")
            return nil
        }
        return day
    }
}

/// Metrc tags are 24 characters of `A-Z` and `0-9`.
public func isWellFormedTag(_ label: String) -> Bool {
    label.utf8.count == 24 && label.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) }
}

extension SandboxState {
    /// Checks a location (and optional sublocation) name for `license`; returns the canonical names.
    func checkLocation(_ name: String?, sublocation: String?, field: String, subfield: String, license: String,
                       purpose: KeyPath<SandboxLocation, Bool?>, purposeText: String,
                       _ check: inout RowCheck) -> (String, String?)? {
        guard let name else { return nil }
        guard let location = location(name, license: license) else {
            check.fail("\(field) \(name) is not a location of facility \(license).")
            return nil
        }
        if location[keyPath: purpose] == false {
            check.fail("Location \(location.name) cannot hold \(purposeText).")
        }
        var canonicalSub: String?
        if let sublocation {
            if let sub = self.sublocation(sublocation, license: license) {
                canonicalSub = sub.name
            } else {
                check.fail("\(subfield) \(sublocation) is not a sublocation of facility \(license).")
                return nil
            }
        }
        return (location.name, canonicalSub)
    }

    /// Finds the plant named by `Id` or `Label` (or `Plant`, for harvests) that is still active at the facility.
    func findActivePlant(_ check: inout RowCheck, labelField: String, allowId: Bool, license: String) -> Int? {
        let label = check.optionalString(labelField)
        let id = allowId ? check.optionalInt("Id") : nil
        let index: Int?
        if let label {
            guard isWellFormedTag(label) else {
                check.fail("Tag \(label) is not valid.")
                return nil
            }
            index = records.plantPosition(label: label, license: license)
            if index == nil { check.fail("Plant \(label) was not found at facility \(license).") }
            if let id, let index, plants[index].id != id {
                check.fail("Id \(id) does not match plant \(label).")
                return nil
            }
        } else if let id {
            index = records.plantPosition(id: id, license: license)
            if index == nil { check.fail("Plant Id \(id) was not found at facility \(license).") }
        } else {
            check.fail(allowId ? "Id or Label is required." : "\(labelField) is required.")
            return nil
        }
        guard let index else { return nil }
        return requireTracked(index, &check)
    }

    /// Finds the plant tagged `label` at the facility, still tracked (for lists of tags, e.g. `PlantLabels`).
    func findTrackedPlant(label: String, license: String, _ check: inout RowCheck) -> Int? {
        guard isWellFormedTag(label) else {
            check.fail("Tag \(label) is not valid.")
            return nil
        }
        guard let index = records.plantPosition(label: label, license: license) else {
            check.fail("Plant \(label) was not found at facility \(license).")
            return nil
        }
        return requireTracked(index, &check)
    }

    /// `index` if that plant is still tracked; otherwise a message saying what became of it.
    private func requireTracked(_ index: Int, _ check: inout RowCheck) -> Int? {
        switch plants[index].state {
        case .tracked: return index
        case .harvested: check.fail("Plant \(plants[index].label) has already been harvested.")
        case .destroyed: check.fail("Plant \(plants[index].label) has been destroyed.")
        }
        return nil
    }

    func findActivePackage(_ check: inout RowCheck, license: String) -> Int? {
        guard let label = check.requiredString("Label") else { return nil }
        guard isWellFormedTag(label) else {
            check.fail("Tag \(label) is not valid.")
            return nil
        }
        guard let index = records.packagePosition(label: label, license: license) else {
            check.fail("Package \(label) was not found at facility \(license).")
            return nil
        }
        guard packages[index].isActive else {
            check.fail("Package \(label) is finished and cannot be changed.")
            return nil
        }
        return index
    }

    /// A known unit of the given kind (weight for plants).
    func checkUnit(_ name: String?, field: String, kind: QuantityType?, _ check: inout RowCheck) -> SandboxUnitOfMeasure? {
        guard let name else { return nil }
        guard let unit = unit(name) else {
            check.fail("\(field) \(name) is not a known unit of measure.")
            return nil
        }
        if let kind, unit.quantityType != kind {
            check.fail("\(field) \(unit.name) is not a \(kind == .weightBased ? "weight" : kind.rawValue) unit.")
            return nil
        }
        return unit
    }
}

func roundQuantity(_ value: Double) -> Double {
    (value * 1_000_000).rounded() / 1_000_000
}
