import Foundation

/// The demo facility's deterministic data: licenses, keys, tags and names (documented in docs/metrc-sandbox.md).
public enum SandboxDemo {
    /// The main demo facility (a cultivation license).
    public static let license = "LIC-0001"
    /// A second facility, for multi-license setups.
    public static let secondLicense = "LIC-0002"

    /// The software (vendor) API key: the Basic user name.
    public static let vendorKey = "sandbox-vendor-key"

    /// User `owner`: the facilities' Default key; every permission on both licenses.
    public static let ownerUserName = "owner"
    public static let ownerKey = "sandbox-owner-key"
    /// User `jane`: every permission on both licenses.
    public static let janeUserName = "jane"
    public static let janeKey = "sandbox-jane-key"
    /// User `john`: every permission on LIC-0001, no access to LIC-0002.
    public static let johnUserName = "john"
    public static let johnKey = "sandbox-john-key"
    /// User `viewer`: only `view` on LIC-0001 (writes answer 401).
    public static let viewerUserName = "viewer"
    public static let viewerKey = "sandbox-viewer-key"

    public static let vegetativePlantCount = 150
    public static let floweringPlantCount = 150
    public static let packageCount = 300
    public static let secondLicensePlantCount = 50
    public static let secondLicensePackageCount = 50

    public static let locations = ["Veg Room", "Flower Room 1", "Flower Room 2", "Drying Room", "Vault", "Processing Room", "Quarantine"]
    public static let sublocations = ["Bench 1", "Bench 2", "Bench 3", "Bench 4", "Shelf A", "Shelf B", "Rack 1"]
    public static let strains = ["Blue Dream", "OG Kush", "Sour Diesel", "Girl Scout Cookies", "Northern Lights"]

    /// LIC-0001 plant `n` (1...300): `1A4FF01000000220000` + five digits. 1...150 vegetative, 151...300 flowering.
    public static func plantTag(_ n: Int) -> String { tag(prefix: "1A4FF01000000220000", n) }
    /// LIC-0001 package `n` (1...300): `1A4FF03000000220000` + five digits.
    public static func packageTag(_ n: Int) -> String { tag(prefix: "1A4FF03000000220000", n) }
    /// LIC-0002 plant `n` (1...50): 1...25 vegetative, 26...50 flowering.
    public static func secondLicensePlantTag(_ n: Int) -> String { tag(prefix: "1A4FF02000000220000", n) }
    /// LIC-0002 package `n` (1...50).
    public static func secondLicensePackageTag(_ n: Int) -> String { tag(prefix: "1A4FF04000000220000", n) }

    /// A vegetative LIC-0001 plant (in "Veg Room").
    public static func vegetativePlantTag(_ n: Int) -> String { plantTag(n) }
    /// The `n`th flowering LIC-0001 plant (1...150; 1...75 in "Flower Room 1", the rest in "Flower Room 2").
    public static func floweringPlantTag(_ n: Int) -> String { plantTag(vegetativePlantCount + n) }

    /// `LastModified` of every demo record is at or after this instant (2025-06-01T00:00:00Z); plant and
    /// package `n` were last modified `n` hours after it.
    public static let baseDate = MetrcTimestamp.parse("2025-06-01T00:00:00Z")!

    static func tag(prefix: String, _ n: Int) -> String {
        let digits = String(n)
        return prefix + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    static func day(_ text: String) -> MetrcDay { MetrcDay(text)! }

    /// The item of package `n` (cycles through the six demo items) with its quantity.
    static let itemSpecs: [(name: String, category: String, unit: String, strain: String?)] = [
        ("Blue Dream Buds", "Buds", "Grams", "Blue Dream"),
        ("OG Kush Buds", "Buds", "Grams", "OG Kush"),
        ("Sour Diesel Shake", "Shake/Trim", "Grams", "Sour Diesel"),
        ("Northern Lights Buds", "Buds", "Ounces", "Northern Lights"),
        ("Pre-Roll 1g", "Pre-Roll Flower", "Each", "Girl Scout Cookies"),
        ("Gummies 10mg", "Infused Edible", "Each", nil),
    ]
}

extension SandboxState {
    /// The demo with 25 more of every list a sync reads by pages (more than one page of 20), changed a day ago.
    public static func pagedDemo() -> SandboxState {
        var state = SandboxState.demo()
        let license = SandboxDemo.license
        let stamp = Date().addingTimeInterval(-86_400)
        for i in 1...25 {
            state.locations.append(SandboxLocation(id: 5000 + i, license: license, name: "Room \(i)", lastModified: stamp))
            state.sublocations.append(SandboxSublocation(id: 5100 + i, license: license, name: "Table \(i)", lastModified: stamp))
            state.strains.append(SandboxStrain(id: 5200 + i, license: license, name: "Strain \(i)", lastModified: stamp))
            state.items.append(SandboxItem(id: 5300 + i, license: license, name: "Item \(i)", category: "Buds", unitOfMeasure: "Grams",
                                           lastModified: stamp))
            state.unitsOfMeasure.append(SandboxUnitOfMeasure(name: "Unit \(i)", abbreviation: "u\(i)", quantityType: .countBased, toBase: 1))
            state.wasteMethods.append(SandboxWasteMethod(name: "Method \(i)"))
            state.wasteReasons.append(SandboxReason(name: "Waste reason \(i)", requiresNote: i % 2 == 0))
            state.adjustmentReasons.append(SandboxReason(name: "Adjust reason \(i)", requiresNote: false))
        }
        return state
    }

    /// The demo: facilities LIC-0001 (300 plants, 300 packages) and LIC-0002 (50 and 50), users owner, jane,
    /// john and viewer, and the reference lists. Same every time.
    public static func demo() -> SandboxState {
        var state = SandboxState()
        let base = SandboxDemo.baseDate
        let all = SandboxPermission.allCases
        state.vendorKeys = [SandboxDemo.vendorKey]
        state.facilities = [
            SandboxFacility(id: 1, license: SandboxDemo.license, name: "Outlaw Farms Cultivation",
                            licenseType: "Adult-Use Cultivation", ownerUserName: SandboxDemo.ownerUserName),
            SandboxFacility(id: 2, license: SandboxDemo.secondLicense, name: "Outlaw Farms North",
                            licenseType: "Adult-Use Cultivation", ownerUserName: SandboxDemo.ownerUserName),
        ]
        state.users = [
            SandboxUser(name: SandboxDemo.ownerUserName, key: SandboxDemo.ownerKey,
                        facilities: [SandboxDemo.license: all, SandboxDemo.secondLicense: all]),
            SandboxUser(name: SandboxDemo.janeUserName, key: SandboxDemo.janeKey,
                        facilities: [SandboxDemo.license: all, SandboxDemo.secondLicense: all]),
            SandboxUser(name: SandboxDemo.johnUserName, key: SandboxDemo.johnKey,
                        facilities: [SandboxDemo.license: all]),
            SandboxUser(name: SandboxDemo.viewerUserName, key: SandboxDemo.viewerKey,
                        facilities: [SandboxDemo.license: [.view]]),
        ]
        state.unitsOfMeasure = [
            SandboxUnitOfMeasure(name: "Each", abbreviation: "ea", quantityType: .countBased, toBase: 1),
            SandboxUnitOfMeasure(name: "Fluid Ounces", abbreviation: "fl oz", quantityType: .volumeBased, toBase: 29.5735295625),
            SandboxUnitOfMeasure(name: "Gallons", abbreviation: "gal", quantityType: .volumeBased, toBase: 3785.411784),
            SandboxUnitOfMeasure(name: "Grams", abbreviation: "g", quantityType: .weightBased, toBase: 1),
            SandboxUnitOfMeasure(name: "Kilograms", abbreviation: "kg", quantityType: .weightBased, toBase: 1000),
            SandboxUnitOfMeasure(name: "Liters", abbreviation: "l", quantityType: .volumeBased, toBase: 1000),
            SandboxUnitOfMeasure(name: "Milligrams", abbreviation: "mg", quantityType: .weightBased, toBase: 0.001),
            SandboxUnitOfMeasure(name: "Milliliters", abbreviation: "ml", quantityType: .volumeBased, toBase: 1),
            SandboxUnitOfMeasure(name: "Ounces", abbreviation: "oz", quantityType: .weightBased, toBase: 28.349523125),
            SandboxUnitOfMeasure(name: "Pints", abbreviation: "pt", quantityType: .volumeBased, toBase: 473.176473),
            SandboxUnitOfMeasure(name: "Pounds", abbreviation: "lb", quantityType: .weightBased, toBase: 453.59237),
            SandboxUnitOfMeasure(name: "Quarts", abbreviation: "qt", quantityType: .volumeBased, toBase: 946.352946),
        ]
        state.wasteMethods = ["Compost", "Grinder", "Incinerator", "Mix with Soil"].map(SandboxWasteMethod.init)
        state.wasteReasons = [
            SandboxReason(name: "Contamination", requiresNote: false, requiresWasteWeight: true),
            SandboxReason(name: "Damage", requiresNote: true, requiresWasteWeight: false),
            SandboxReason(name: "Male Plants", requiresNote: false, requiresWasteWeight: false),
            SandboxReason(name: "Mold", requiresNote: false, requiresWasteWeight: true),
            SandboxReason(name: "Other", requiresNote: true, requiresWasteWeight: false),
            SandboxReason(name: "Pests", requiresNote: false, requiresWasteWeight: false),
        ]
        state.adjustmentReasons = [
            SandboxReason(name: "Drying", requiresNote: false),
            SandboxReason(name: "Entry Error", requiresNote: true),
            SandboxReason(name: "Incorrect Quantity", requiresNote: true),
            SandboxReason(name: "Scale Variance", requiresNote: true),
            SandboxReason(name: "Spoilage", requiresNote: false),
            SandboxReason(name: "Theft", requiresNote: true),
            SandboxReason(name: "Waste", requiresNote: false),
        ]

        for (facilityIndex, license) in [SandboxDemo.license, SandboxDemo.secondLicense].enumerated() {
            let offset = facilityIndex * 1000
            for (i, name) in SandboxDemo.locations.enumerated() {
                state.locations.append(SandboxLocation(id: 101 + offset + i, license: license, name: name, lastModified: base))
            }
            for (i, name) in SandboxDemo.sublocations.enumerated() {
                state.sublocations.append(SandboxSublocation(id: 201 + offset + i, license: license, name: name, lastModified: base))
            }
            for (i, name) in SandboxDemo.strains.enumerated() {
                state.strains.append(SandboxStrain(id: 301 + offset + i, license: license, name: name,
                                                   indicaPercentage: Double(40 + 10 * (i % 3)),
                                                   sativaPercentage: Double(60 - 10 * (i % 3)), lastModified: base))
            }
            for (i, spec) in SandboxDemo.itemSpecs.enumerated() {
                state.items.append(SandboxItem(id: 401 + offset + i, license: license, name: spec.name,
                                               category: spec.category, unitOfMeasure: spec.unit, strain: spec.strain,
                                               lastModified: base))
            }
        }

        func addPlant(id: Int, license: String, tag: String, n: Int, flowering: Bool, location: String) {
            state.records.appendPlant(SandboxPlant(
                id: id, license: license, label: tag, strain: SandboxDemo.strains[(n - 1) % SandboxDemo.strains.count],
                location: location, sublocation: "Bench \((n - 1) % 4 + 1)",
                growthPhase: flowering ? .flowering : .vegetative,
                plantBatchName: "Batch \(flowering ? "F" : "V")-\((n - 1) / 50 + 1)",
                plantedDate: SandboxDemo.day("2025-03-01"), vegetativeDate: SandboxDemo.day("2025-03-15"),
                floweringDate: flowering ? SandboxDemo.day("2025-05-01") : nil,
                lastModified: base.addingTimeInterval(Double(n) * 3600)))
        }
        func addPackage(id: Int, license: String, tag: String, n: Int, location: String, sublocation: String?) {
            let spec = SandboxDemo.itemSpecs[(n - 1) % SandboxDemo.itemSpecs.count]
            let quantity: Double = switch spec.unit {
            case "Grams": Double(100 + n)
            case "Ounces": 16
            default: 20
            }
            state.records.appendPackage(SandboxPackage(
                id: id, license: license, label: tag, item: spec.name, quantity: quantity, unitOfMeasure: spec.unit,
                location: location, sublocation: sublocation, packagedDate: SandboxDemo.day("2025-06-01"),
                lastModified: base.addingTimeInterval(Double(n) * 3600)))
        }

        for n in 1...(SandboxDemo.vegetativePlantCount + SandboxDemo.floweringPlantCount) {
            let flowering = n > SandboxDemo.vegetativePlantCount
            let location = !flowering ? "Veg Room" : (n <= SandboxDemo.vegetativePlantCount + 75 ? "Flower Room 1" : "Flower Room 2")
            addPlant(id: 10_000 + n, license: SandboxDemo.license, tag: SandboxDemo.plantTag(n), n: n,
                     flowering: flowering, location: location)
        }
        for n in 1...SandboxDemo.packageCount {
            addPackage(id: 30_000 + n, license: SandboxDemo.license, tag: SandboxDemo.packageTag(n), n: n,
                       location: n <= 200 ? "Vault" : "Processing Room",
                       sublocation: n <= 200 ? (n % 2 == 1 ? "Shelf A" : "Shelf B") : nil)
        }
        for n in 1...SandboxDemo.secondLicensePlantCount {
            let flowering = n > SandboxDemo.secondLicensePlantCount / 2
            addPlant(id: 20_000 + n, license: SandboxDemo.secondLicense, tag: SandboxDemo.secondLicensePlantTag(n), n: n,
                     flowering: flowering, location: flowering ? "Flower Room 1" : "Veg Room")
        }
        for n in 1...SandboxDemo.secondLicensePackageCount {
            addPackage(id: 40_000 + n, license: SandboxDemo.secondLicense, tag: SandboxDemo.secondLicensePackageTag(n),
                       n: n, location: "Vault", sublocation: nil)
        }
        return state
    }
}
