import Foundation

/// Positions of records in one array by a key, for lookups in O(1) however many records there are.
/// Appends only: a record's key never changes in place (a change that could move keys rebuilds the whole index).
struct PositionIndex<Key: Hashable & Sendable>: Sendable {
    /// Key → the lowest position holding it.
    private var first: [Key: Int] = [:]
    /// Key → the further positions holding it, ascending. Only keys held more than once: a state file may give one
    /// tag to records of two facilities, and a lookup must then find what a scan from the start would find.
    private var others: [Key: [Int]] = [:]

    init(capacity: Int = 0) {
        first = Dictionary(minimumCapacity: capacity)
    }

    /// Records `key` at `position`, which must be above every position recorded so far.
    mutating func append(_ key: Key, at position: Int) {
        // One hash for the usual, unique key.
        if let earlier = first.updateValue(position, forKey: key) {
            first[key] = earlier
            others[key, default: []].append(position)
        }
    }

    /// Undoes the latest `append(key, at: position)`.
    mutating func removeLast(_ key: Key, at position: Int) {
        if var more = others[key], more.last == position {
            more.removeLast()
            others[key] = more.isEmpty ? nil : more
        } else if first[key] == position {
            first[key] = nil
        }
    }

    /// The lowest position holding `key` that `matches`.
    func first(_ key: Key, where matches: (Int) -> Bool) -> Int? {
        guard let position = first[key] else { return nil }
        if matches(position) { return position }
        return others[key]?.first(where: matches)
    }

    func contains(_ key: Key) -> Bool { first[key] != nil }
}

/// The records a write may add or change (plants, packages, harvests, adjustments, plant waste records) with
/// their indexes: plants and packages by tag and by id, harvests by name (each lookup then checks the license,
/// so it finds exactly the record `firstIndex { $0.license == license && ... }` would), and the highest id.
///
/// Code outside this file changes records only through `append…` and `change…`, which keep the indexes right and,
/// inside a transaction, remember what to undo. Anything else that changes an array (the public `plants`
/// accessors of `SandboxState`) calls `invalidate()`: lookups then scan until `indexIfNeeded()` rebuilds.
/// The indexes and the journal are derived: `SandboxState` neither encodes nor compares them.
struct SandboxRecords: Sendable {
    private(set) var plants: [SandboxPlant]
    private(set) var packages: [SandboxPackage]
    private(set) var harvests: [SandboxHarvest]
    private(set) var adjustments: [SandboxAdjustment]
    private(set) var plantWaste: [SandboxPlantWaste]

    /// Whether the indexes below describe the arrays.
    private(set) var isIndexed = false
    private var plantsByLabel = PositionIndex<String>()
    private var plantsById = PositionIndex<Int>()
    private var packagesByLabel = PositionIndex<String>()
    private var packagesById = PositionIndex<Int>()
    private var harvestsByName = PositionIndex<String>()
    /// The highest id over the five lists (nil when they are empty).
    private var highestId: Int?
    private var journal: Journal?

    /// What a transaction changed, to put back if it fails: the lengths before it and the first old value of
    /// every record it changed.
    private struct Journal: Sendable {
        var plantCount: Int
        var packageCount: Int
        var harvestCount: Int
        var adjustmentCount: Int
        var plantWasteCount: Int
        var highestId: Int?
        var plants: [Int: SandboxPlant] = [:]
        var packages: [Int: SandboxPackage] = [:]
        var harvests: [Int: SandboxHarvest] = [:]
    }

    init(plants: [SandboxPlant], packages: [SandboxPackage], harvests: [SandboxHarvest],
         adjustments: [SandboxAdjustment], plantWaste: [SandboxPlantWaste]) {
        self.plants = plants
        self.packages = packages
        self.harvests = harvests
        self.adjustments = adjustments
        self.plantWaste = plantWaste
        reindex()
    }

    // MARK: Whole arrays (the public accessors)

    // In-place access for code that may change anything in an array (no copy); the indexes are dropped afterwards.
    var anyChangePlants: [SandboxPlant] {
        get { plants }
        _modify {
            defer { invalidate() }
            yield &plants
        }
    }

    var anyChangePackages: [SandboxPackage] {
        get { packages }
        _modify {
            defer { invalidate() }
            yield &packages
        }
    }

    var anyChangeHarvests: [SandboxHarvest] {
        get { harvests }
        _modify {
            defer { invalidate() }
            yield &harvests
        }
    }

    var anyChangeAdjustments: [SandboxAdjustment] {
        get { adjustments }
        _modify {
            defer { invalidate() }
            yield &adjustments
        }
    }

    var anyChangePlantWaste: [SandboxPlantWaste] {
        get { plantWaste }
        _modify {
            defer { invalidate() }
            yield &plantWaste
        }
    }

    /// Drops the indexes (and frees their memory); lookups scan until `indexIfNeeded()`.
    mutating func invalidate() {
        guard isIndexed else { return }
        isIndexed = false
        plantsByLabel = PositionIndex()
        plantsById = PositionIndex()
        packagesByLabel = PositionIndex()
        packagesById = PositionIndex()
        harvestsByName = PositionIndex()
    }

    mutating func indexIfNeeded() {
        if !isIndexed { reindex() }
    }

    private mutating func reindex() {
        plantsByLabel = PositionIndex(capacity: plants.count)
        plantsById = PositionIndex(capacity: plants.count)
        packagesByLabel = PositionIndex(capacity: packages.count)
        packagesById = PositionIndex(capacity: packages.count)
        harvestsByName = PositionIndex(capacity: harvests.count)
        for i in plants.indices {
            plantsByLabel.append(plants[i].label, at: i)
            plantsById.append(plants[i].id, at: i)
        }
        for i in packages.indices {
            packagesByLabel.append(packages[i].label, at: i)
            packagesById.append(packages[i].id, at: i)
        }
        for i in harvests.indices {
            harvestsByName.append(harvests[i].name, at: i)
        }
        highestId = scanHighestId()
        isIndexed = true
    }

    // MARK: Lookups (a scan while not indexed, so they are right either way)

    func plantPosition(label: String, license: String) -> Int? {
        guard isIndexed else { return plants.firstIndex { $0.license == license && $0.label == label } }
        return plantsByLabel.first(label) { plants[$0].license == license }
    }

    func plantPosition(id: Int, license: String) -> Int? {
        guard isIndexed else { return plants.firstIndex { $0.license == license && $0.id == id } }
        return plantsById.first(id) { plants[$0].license == license }
    }

    func packagePosition(label: String, license: String) -> Int? {
        guard isIndexed else { return packages.firstIndex { $0.license == license && $0.label == label } }
        return packagesByLabel.first(label) { packages[$0].license == license }
    }

    func packagePosition(id: Int, license: String) -> Int? {
        guard isIndexed else { return packages.firstIndex { $0.license == license && $0.id == id } }
        return packagesById.first(id) { packages[$0].license == license }
    }

    func harvestPosition(name: String, license: String) -> Int? {
        guard isIndexed else { return harvests.firstIndex { $0.license == license && $0.name == name } }
        return harvestsByName.first(name) { harvests[$0].license == license }
    }

    /// Whether any plant or package, of any facility, carries `label`.
    func holdsTag(_ label: String) -> Bool {
        guard isIndexed else { return plants.contains { $0.label == label } || packages.contains { $0.label == label } }
        return plantsByLabel.contains(label) || packagesByLabel.contains(label)
    }

    /// The highest id of the five lists, nil when they are empty.
    var highestRecordId: Int? {
        isIndexed ? highestId : scanHighestId()
    }

    private func scanHighestId() -> Int? {
        var highest: Int?
        func note(_ id: Int) { highest = max(highest ?? id, id) }
        for i in plants.indices { note(plants[i].id) }
        for i in packages.indices { note(packages[i].id) }
        for i in harvests.indices { note(harvests[i].id) }
        for i in adjustments.indices { note(adjustments[i].id) }
        for i in plantWaste.indices { note(plantWaste[i].id) }
        return highest
    }

    private mutating func noteId(_ id: Int) {
        highestId = max(highestId ?? id, id)
    }

    // MARK: Changes

    mutating func reserveCapacity(plants plantCount: Int, packages packageCount: Int) {
        plants.reserveCapacity(plants.count + plantCount)
        packages.reserveCapacity(packages.count + packageCount)
    }

    mutating func appendPlant(_ plant: SandboxPlant) {
        plants.append(plant)
        guard isIndexed else { return }
        plantsByLabel.append(plant.label, at: plants.count - 1)
        plantsById.append(plant.id, at: plants.count - 1)
        noteId(plant.id)
    }

    mutating func appendPackage(_ package: SandboxPackage) {
        packages.append(package)
        guard isIndexed else { return }
        packagesByLabel.append(package.label, at: packages.count - 1)
        packagesById.append(package.id, at: packages.count - 1)
        noteId(package.id)
    }

    mutating func appendHarvest(_ harvest: SandboxHarvest) {
        harvests.append(harvest)
        guard isIndexed else { return }
        harvestsByName.append(harvest.name, at: harvests.count - 1)
        noteId(harvest.id)
    }

    mutating func appendAdjustment(_ adjustment: SandboxAdjustment) {
        adjustments.append(adjustment)
        if isIndexed { noteId(adjustment.id) }
    }

    mutating func appendPlantWaste(_ waste: SandboxPlantWaste) {
        plantWaste.append(waste)
        if isIndexed { noteId(waste.id) }
    }

    /// Changes the plant at `position` in place. `body` may not look at the state (it is being changed): work
    /// out what it needs first.
    mutating func changePlant(at position: Int, _ body: (inout SandboxPlant) -> Void) {
        if journal != nil, journal?.plants[position] == nil { journal?.plants[position] = plants[position] }
        let (label, id, license) = (plants[position].label, plants[position].id, plants[position].license)
        body(&plants[position])
        if plants[position].label != label || plants[position].id != id || plants[position].license != license {
            invalidate()
        }
    }

    mutating func changePackage(at position: Int, _ body: (inout SandboxPackage) -> Void) {
        if journal != nil, journal?.packages[position] == nil { journal?.packages[position] = packages[position] }
        let (label, id, license) = (packages[position].label, packages[position].id, packages[position].license)
        body(&packages[position])
        if packages[position].label != label || packages[position].id != id || packages[position].license != license {
            invalidate()
        }
    }

    mutating func changeHarvest(at position: Int, _ body: (inout SandboxHarvest) -> Void) {
        if journal != nil, journal?.harvests[position] == nil { journal?.harvests[position] = harvests[position] }
        let (name, id, license) = (harvests[position].name, harvests[position].id, harvests[position].license)
        body(&harvests[position])
        if harvests[position].name != name || harvests[position].id != id || harvests[position].license != license {
            invalidate()
        }
    }

    // MARK: Transactions

    /// Starts remembering what changes, so `rollBack()` can undo it. Indexes first, so lookups inside are fast.
    mutating func begin() {
        precondition(journal == nil, "sandbox transactions do not nest")
        indexIfNeeded()
        journal = Journal(plantCount: plants.count, packageCount: packages.count, harvestCount: harvests.count,
                          adjustmentCount: adjustments.count, plantWasteCount: plantWaste.count, highestId: highestId)
    }

    mutating func commit() {
        journal = nil
    }

    /// Puts back every record as it was at `begin()` and drops what was added since, indexes included.
    mutating func rollBack() {
        guard let journal else { return }
        self.journal = nil
        for (position, plant) in journal.plants { plants[position] = plant }
        for (position, package) in journal.packages { packages[position] = package }
        for (position, harvest) in journal.harvests { harvests[position] = harvest }
        while plants.count > journal.plantCount {
            let plant = plants.removeLast()
            if isIndexed {
                plantsByLabel.removeLast(plant.label, at: plants.count)
                plantsById.removeLast(plant.id, at: plants.count)
            }
        }
        while packages.count > journal.packageCount {
            let package = packages.removeLast()
            if isIndexed {
                packagesByLabel.removeLast(package.label, at: packages.count)
                packagesById.removeLast(package.id, at: packages.count)
            }
        }
        while harvests.count > journal.harvestCount {
            let harvest = harvests.removeLast()
            if isIndexed { harvestsByName.removeLast(harvest.name, at: harvests.count) }
        }
        adjustments.removeLast(adjustments.count - journal.adjustmentCount)
        plantWaste.removeLast(plantWaste.count - journal.plantWasteCount)
        highestId = journal.highestId
    }
}
