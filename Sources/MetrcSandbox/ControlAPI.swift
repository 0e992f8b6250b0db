import Foundation

/// The sandbox-only control surface: in-process methods for tests, and the same over HTTP under `/_sandbox/`
/// (no Metrc auth). See docs/metrc-sandbox.md.
extension MetrcSandboxServer {
    // MARK: In-process

    /// Every accepted write, oldest first, with the user whose key signed it.
    public func writes() async -> [SandboxWrite] { await engine.writes() }

    public func clearWrites() async { await engine.clearWrites() }

    /// A copy of the whole state (the state-file format).
    public func state() async -> SandboxState { await engine.snapshot() }

    public func replaceState(_ state: SandboxState) async { await engine.replaceState(state) }

    /// Revokes the user key `key` (401 from now on). False when no user holds it.
    @discardableResult
    public func revokeUserKey(_ key: String) async -> Bool { await engine.changeKey(user: nil, key: key, .revoke) }

    /// Makes the user key `key` expired (401 from now on). False when no user holds it.
    @discardableResult
    public func expireUserKey(_ key: String) async -> Bool { await engine.changeKey(user: nil, key: key, .expire) }

    /// Undoes revocation and expiry of `key`.
    @discardableResult
    public func restoreUserKey(_ key: String) async -> Bool { await engine.changeKey(user: nil, key: key, .restore) }

    /// Gives user `user` the key `key` (the old key stops working).
    @discardableResult
    public func setUserKey(user: String, key: String) async -> Bool { await engine.changeKey(user: user, key: nil, .set(key)) }

    public func addLocation(license: String, name: String, forPlants: Bool? = nil, forHarvests: Bool? = nil,
                            forPackages: Bool? = nil) async throws {
        _ = try await engine.addLocation(license: license, name: name, sublocation: false, forPlants: forPlants,
                                         forHarvests: forHarvests, forPackages: forPackages)
    }

    public func addSublocation(license: String, name: String) async throws {
        _ = try await engine.addLocation(license: license, name: name, sublocation: true, forPlants: nil,
                                         forHarvests: nil, forPackages: nil)
    }

    /// Adds a tracked plant (`plantedDate` nil: 30 days before the sandbox's today), `LastModified` now.
    @discardableResult
    public func addPlant(license: String, label: String, strain: String, location: String, sublocation: String? = nil,
                         phase: PlantGrowthPhase = .vegetative,
                         plantedDate: MetrcDay? = nil) async throws(MetrcError) -> SandboxPlant {
        try await engine.addPlants([PlantSpec(license: license, label: label, strain: strain, location: location,
                                              sublocation: sublocation, phase: phase, plantedDate: plantedDate)])[0]
    }

    /// Adds an active package (`unitOfMeasure` nil: the item's; `packagedDate` nil: 30 days before today), `LastModified` now.
    @discardableResult
    public func addPackage(license: String, label: String, item: String, quantity: Double, unitOfMeasure: String? = nil,
                           location: String, sublocation: String? = nil,
                           packagedDate: MetrcDay? = nil) async throws(MetrcError) -> SandboxPackage {
        try await engine.addPackages([PackageSpec(
            license: license, label: label, item: item, quantity: quantity, unitOfMeasure: unitOfMeasure,
            location: location, sublocation: sublocation, packagedDate: packagedDate)])[0]
    }

    /// Adds a strain (its name new to the facility), `LastModified` now.
    @discardableResult
    public func addStrain(license: String, name: String, indicaPercentage: Double? = nil,
                          sativaPercentage: Double? = nil) async throws(MetrcError) -> SandboxStrain {
        try await engine.addStrain(license: license, name: name, indicaPercentage: indicaPercentage,
                                   sativaPercentage: sativaPercentage)
    }

    /// Adds an item in a known unit (of an existing strain, if given), `LastModified` now.
    @discardableResult
    public func addItem(license: String, name: String, category: String = "Buds", unitOfMeasure: String,
                        strain: String? = nil) async throws(MetrcError) -> SandboxItem {
        try await engine.addItem(license: license, name: name, category: category, unitOfMeasure: unitOfMeasure,
                                 strain: strain)
    }

    /// Finishes an active package (`date` nil: the sandbox's today): it leaves `/packages/v2/active` for `/inactive`.
    @discardableResult
    public func finishPackage(license: String, label: String,
                              date: MetrcDay? = nil) async throws(MetrcError) -> SandboxPackage {
        try await engine.finishPackage(license: license, label: label, date: date)
    }

    /// Adds `plants` tracked plants and `packages` active packages to `license` with fresh tags (see
    /// `SandboxState.seed`), all last modified now.
    @discardableResult
    public func seed(license: String, plants: Int, packages: Int) async throws(MetrcError) -> SandboxSeedResult {
        try await engine.seed(license: license, plants: plants, packages: packages)
    }

    /// Adds faults (after those already set). A refuse-mode outage closes the listener at once.
    public func setFaults(_ faults: SandboxFault...) async throws { try await setFaults(faults) }

    public func setFaults(_ faults: [SandboxFault]) async throws {
        for fault in faults { try fault.validate() }
        await engine.addFaults(faults)
        if let refusing = faults.first(where: { $0.kind == .outage && $0.mode == .refuse }) {
            await beginRefusing(durationMilliseconds: refusing.durationMilliseconds)
        }
    }

    /// Removes every fault and ends a refuse-mode outage.
    public func clearFaults() async {
        await engine.clearFaults()
        await endRefusing()
    }

    public func faults() async -> [SandboxFault] { await engine.activeFaults() }

    public func plants(license: String) async -> [SandboxPlant] {
        await engine.snapshot().plants.filter { $0.license == license }
    }

    public func plant(label: String, license: String = SandboxDemo.license) async -> SandboxPlant? {
        await engine.snapshot().plant(label: label, license: license)
    }

    public func packages(license: String) async -> [SandboxPackage] {
        await engine.snapshot().packages.filter { $0.license == license }
    }

    public func package(label: String, license: String = SandboxDemo.license) async -> SandboxPackage? {
        await engine.snapshot().package(label: label, license: license)
    }

    public func adjustments(license: String) async -> [SandboxAdjustment] {
        await engine.snapshot().adjustments.filter { $0.license == license }
    }

    public func harvests(license: String) async -> [SandboxHarvest] {
        await engine.snapshot().harvests.filter { $0.license == license }
    }

    /// The plant waste records of `license`, oldest first.
    public func plantWaste(license: String) async -> [SandboxPlantWaste] {
        await engine.snapshot().plantWaste.filter { $0.license == license }
    }

    // MARK: Over HTTP

    func control(_ request: SandboxRequest) async -> SandboxResponse {
        let segments = request.path.lowercased().split(separator: "/").map(String.init)
        let body = request.body.isEmpty ? JSONValue.null : JSONValue.parse(request.body)
        guard let body else { return .message("The request body is not valid JSON.", status: 400) }
        let route = segments.dropFirst().joined(separator: "/")
        let keyVerb = route.hasPrefix("keys/") ? String(route.dropFirst(5)) : nil
        switch (request.method, route) {
        case ("GET", "health"):
            return .json(["ok": true])
        case ("GET", "writes"):
            let license = request.query.nonEmpty("license")
            let user = request.query.nonEmpty("user")
            let list = await writes().filter {
                (license == nil || $0.license == license) && (user == nil || $0.userName == user)
            }
            return .json(.array(list.map(\.json)))
        case ("DELETE", "writes"):
            await clearWrites()
            return .json(["ok": true])
        case ("GET", "faults"):
            return .json(faultsJSON(await faults()))
        case ("POST", "faults"):
            let items = body.arrayValue ?? [body]
            var parsed: [SandboxFault] = []
            for item in items {
                guard let fault = try? JSONDecoder().decode(SandboxFault.self, from: Data(item.bytes)) else {
                    return .message("Not a fault: \(item.serialized)", status: 400)
                }
                if fault.kind == .outage, fault.mode == .refuse, fault.durationMilliseconds == nil {
                    return .message("A refuse-mode outage set over HTTP needs durationMilliseconds.", status: 400)
                }
                parsed.append(fault)
            }
            do {
                try await setFaults(parsed)
            } catch {
                return .error(error as? MetrcError ?? .badRequest("\(error)"))
            }
            return .json(faultsJSON(await faults()))
        case ("DELETE", "faults"):
            await clearFaults()
            return .json(["ok": true])
        case ("POST", _) where keyVerb != nil:
            let verb = keyVerb ?? ""
            let user = body[field: "user"]?.stringValue
            let key = body[field: "key"]?.stringValue
            let change: SandboxEngine.KeyChange
            switch verb {
            case "revoke": change = .revoke
            case "expire": change = .expire
            case "restore": change = .restore
            case "set":
                guard let key, user != nil else { return .message("set needs user and key.", status: 400) }
                change = .set(key)
            default: return .message("Unknown key action \(verb).", status: 404)
            }
            guard user != nil || key != nil else { return .message("Give user or key.", status: 400) }
            let found = verb == "set"
                ? await engine.changeKey(user: user, key: nil, change)
                : await engine.changeKey(user: user, key: key, change)
            return found ? .json(["ok": true]) : .message("No such user or key.", status: 404)
        case ("POST", "locations"), ("POST", "sublocations"):
            let kind = route
            guard let license = body[field: "license"]?.stringValue, let name = body[field: "name"]?.stringValue else {
                return .message("license and name are required.", status: 400)
            }
            do {
                let record = try await engine.addLocation(
                    license: license, name: name, sublocation: kind == "sublocations",
                    forPlants: body[field: "forPlants"]?.boolValue, forHarvests: body[field: "forHarvests"]?.boolValue,
                    forPackages: body[field: "forPackages"]?.boolValue)
                return .json(record, status: 201)
            } catch {
                return .error(error)
            }
        case ("POST", "plants"), ("POST", "packages"), ("POST", "packages/finish"), ("POST", "strains"),
             ("POST", "items"), ("POST", "seed"):
            do throws(MetrcError) {
                return try await changeRecords(route, body)
            } catch {
                return .error(error)
            }
        case ("GET", "state"):
            guard let data = try? await state().encodedJSON() else { return .message("Could not encode state.", status: 500) }
            return SandboxResponse(status: 200, headers: ["Content-Type": "application/json; charset=utf-8"], body: Array(data))
        case ("PUT", "state"):
            do {
                await replaceState(try SandboxState.decode(json: Data(request.body)))
                return .json(["ok": true])
            } catch {
                return .message("Not a sandbox state: \(error)", status: 400)
            }
        default:
            return .message("No sandbox control endpoint \(request.method) \(request.path).", status: 404)
        }
    }

    /// The control routes that add or change plants, packages, strains and items. Bodies are camelCase; plants and
    /// packages take one object (answered with one record) or an array (answered with an array, added all or nothing).
    private func changeRecords(_ route: String, _ body: JSONValue) async throws(MetrcError) -> SandboxResponse {
        switch route {
        case "plants":
            var specs: [PlantSpec] = []
            for object in try ControlFields.objects(body, of: "plant") {
                let f = ControlFields(object: object)
                let phaseText = try f.optionalString("phase") ?? "vegetative"
                let phase: PlantGrowthPhase
                switch phaseText.lowercased() {
                case "vegetative": phase = .vegetative
                case "flowering": phase = .flowering
                default: throw .badRequest("phase must be vegetative or flowering, not \(phaseText).")
                }
                specs.append(PlantSpec(
                    license: try f.string("license"), label: try f.string("label"), strain: try f.string("strain"),
                    location: try f.string("location"), sublocation: try f.optionalString("sublocation"), phase: phase,
                    plantedDate: try f.day("plantedDate")))
            }
            let added = try await engine.addPlants(specs)
            let state = await engine.snapshot()
            return .json(ControlFields.answer(added.map { state.json(plant: $0) }, like: body), status: 201)
        case "packages":
            var specs: [PackageSpec] = []
            for object in try ControlFields.objects(body, of: "package") {
                let f = ControlFields(object: object)
                // `unit` is accepted too; outside `??`, whose autoclosure would lose the typed throw.
                let alias = try f.optionalString("unit")
                specs.append(PackageSpec(
                    license: try f.string("license"), label: try f.string("label"), item: try f.string("item"),
                    quantity: try f.number("quantity"),
                    unitOfMeasure: try f.optionalString("unitOfMeasure") ?? alias,
                    location: try f.string("location"), sublocation: try f.optionalString("sublocation"),
                    packagedDate: try f.day("packagedDate")))
            }
            let added = try await engine.addPackages(specs)
            let state = await engine.snapshot()
            return .json(ControlFields.answer(added.map { state.json(package: $0) }, like: body), status: 201)
        case "packages/finish":
            let f = ControlFields(object: body)
            let package = try await engine.finishPackage(license: try f.string("license"), label: try f.string("label"),
                                                         date: try f.day("date"))
            return .json(await engine.snapshot().json(package: package))
        case "strains":
            let f = ControlFields(object: body)
            let strain = try await engine.addStrain(
                license: try f.string("license"), name: try f.string("name"),
                indicaPercentage: try f.optionalNumber("indicaPercentage"),
                sativaPercentage: try f.optionalNumber("sativaPercentage"))
            return .json(await engine.snapshot().json(strain: strain), status: 201)
        case "items":
            let f = ControlFields(object: body)
            let item = try await engine.addItem(
                license: try f.string("license"), name: try f.string("name"),
                category: try f.optionalString("category") ?? "Buds",
                unitOfMeasure: try f.string("unitOfMeasure"), strain: try f.optionalString("strain"))
            return .json(await engine.snapshot().json(item: item), status: 201)
        case "seed":
            let f = ControlFields(object: body)
            let result = try await engine.seed(license: try f.string("license"), plants: try f.count("plants"),
                                               packages: try f.count("packages"))
            return .json([
                "license": .string(result.license),
                "plants": .int(result.plantLabels.count),
                "packages": .int(result.packageLabels.count),
                "firstPlantLabel": .optional(result.plantLabels.first),
                "lastPlantLabel": .optional(result.plantLabels.last),
                "firstPackageLabel": .optional(result.packageLabels.first),
                "lastPackageLabel": .optional(result.packageLabels.last),
            ], status: 201)
        default:
            throw .notFound("No sandbox control endpoint POST /_sandbox/\(route).")
        }
    }

    private func faultsJSON(_ faults: [SandboxFault]) -> JSONValue {
        let encoder = JSONEncoder()
        return .array(faults.compactMap { fault in
            (try? encoder.encode(fault)).flatMap { JSONValue.parse(Array($0)) }
        })
    }
}

/// The fields of one control-API object (camelCase, matched case-insensitively). A missing or mistyped field is a
/// 400 naming it; blank strings count as missing.
struct ControlFields {
    let object: JSONValue

    /// The objects of a body that is one object or a non-empty array of them.
    static func objects(_ body: JSONValue, of what: String) throws(MetrcError) -> [JSONValue] {
        let objects = body.arrayValue ?? [body]
        guard !objects.isEmpty else { throw .badRequest("Give one \(what) object or a non-empty array of them.") }
        guard objects.allSatisfy({ $0.objectValue != nil }) else { throw .badRequest("Each \(what) must be a JSON object.") }
        return objects
    }

    /// One record for a one-object body, an array for an array body.
    static func answer(_ records: [JSONValue], like body: JSONValue) -> JSONValue {
        body.arrayValue == nil && records.count == 1 ? records[0] : .array(records)
    }

    func string(_ name: String) throws(MetrcError) -> String {
        guard let value = try optionalString(name) else { throw .badRequest("\(name) is required.") }
        return value
    }

    func optionalString(_ name: String) throws(MetrcError) -> String? {
        switch object[field: name] {
        case nil, .null?: return nil
        case .string(let value)?: return value.trimmingCharacters(in: .whitespaces).isEmpty ? nil : value
        default: throw .badRequest("\(name) must be a string.")
        }
    }

    func number(_ name: String) throws(MetrcError) -> Double {
        guard let value = try optionalNumber(name) else { throw .badRequest("\(name) is required.") }
        return value
    }

    func optionalNumber(_ name: String) throws(MetrcError) -> Double? {
        switch object[field: name] {
        case nil, .null?: return nil
        case .number(let value)?: return value
        default: throw .badRequest("\(name) must be a number.")
        }
    }

    /// A whole number of at least 0; missing is 0.
    func count(_ name: String) throws(MetrcError) -> Int {
        guard let value = try optionalNumber(name) else { return 0 }
        guard let int = JSONValue.number(value).intValue, int >= 0 else {
            throw .badRequest("\(name) must be a whole number of at least 0.")
        }
        return int
    }

    /// A `YYYY-MM-DD` day, or nil when missing.
    func day(_ name: String) throws(MetrcError) -> MetrcDay? {
        guard let text = try optionalString(name) else { return nil }
        guard let day = MetrcDay(text) else { throw .badRequest("\(name) \(text) is not a valid date (expected YYYY-MM-DD).") }
        return day
    }
}
