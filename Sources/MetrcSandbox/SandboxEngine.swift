import Foundation
import Logging
import NIOPosix

/// The threads every sandbox engine runs on, apart from Swift's cooperative pool: a sandbox in a test process
/// shares that pool (two threads on a 2-core machine) with every other test, and a big seed or list answered
/// there stalled them all long enough for the daemon under test to time out on requests the sandbox then applied.
private let engineThreads = MultiThreadedEventLoopGroup(numberOfThreads: 2)

/// The sandbox's brain: state, write log, rate limiter and faults behind one actor. No sockets here;
/// `MetrcSandboxServer` feeds it requests.
actor SandboxEngine {
    private let executor: any SerialExecutor = engineThreads.next().executor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    var state: SandboxState
    var writeLog: [SandboxWrite] = []
    var limiter: RateLimiter
    var faults: FaultInjector
    let configuration: SandboxConfiguration
    let logger: Logger

    init(state: SandboxState, configuration: SandboxConfiguration, logger: Logger) {
        self.state = state
        self.state.indexIfNeeded()
        self.configuration = configuration
        self.limiter = RateLimiter(limits: configuration.rateLimits)
        self.faults = FaultInjector(seed: configuration.faultSeed)
        self.logger = logger
    }

    var now: Date { configuration.now() }

    struct Admitted: Sendable {
        var route: MetrcRoute
        var user: SandboxUser
        var license: String?
        var ticket: RateLimiter.Ticket?
    }

    enum Admission: Sendable {
        case respond(SandboxResponse)
        case proceed(Admitted)
    }

    func planFaults(for request: SandboxRequest) -> FaultPlan {
        faults.plan(method: request.method, path: request.path, isWrite: request.method != "GET")
    }

    /// Route, keys, `licenseNumber`, permission and (for GETs) the rate limits.
    func admit(_ request: SandboxRequest) -> Admission {
        let route: MetrcRoute
        switch MetrcRoute.resolve(method: request.method, path: request.path) {
        case .success(let resolved): route = resolved
        case .failure(let error): return .respond(.error(error))
        }
        let credentials = BasicCredentials.parse(authorization: request.authorization)
        let now = self.now
        let keyCheck = state.authorize(credentials, license: nil, permission: nil, now: now)
        guard case .allowed = keyCheck else { return .respond(deny(keyCheck, request)) }
        var license: String?
        if route.requiresLicense {
            guard let given = request.query.nonEmpty("licenseNumber") else {
                return .respond(.message("The licenseNumber parameter is required.", status: 400))
            }
            license = given
        }
        let result = state.authorize(credentials, license: license, permission: route.permission, now: now)
        guard case .allowed(let user) = result, let credentials else { return .respond(deny(result, request)) }
        var ticket: RateLimiter.Ticket?
        if request.method == "GET" {
            switch limiter.admit(vendorKey: credentials.vendorKey, facility: license, now: now.timeIntervalSince1970) {
            case .admitted(let admitted):
                ticket = admitted
            case .limited(let retryAfter, let reason):
                logger.info("429 \(request.method) \(request.path): \(reason)")
                var response = SandboxResponse.message("Too many requests: \(reason).", status: 429)
                if configuration.sendRetryAfter { response.headers["Retry-After"] = String(retryAfter) }
                return .respond(response)
            }
        }
        return .proceed(Admitted(route: route, user: user, license: license, ticket: ticket))
    }

    private func deny(_ result: AuthResult, _ request: SandboxRequest) -> SandboxResponse {
        if case .unauthorized(let reason) = result {
            logger.info("401 \(request.method) \(request.path): \(reason)")
        }
        return .unauthorized
    }

    /// Answers an admitted request. `applied` is true when a write changed the state.
    func execute(_ admitted: Admitted, _ request: SandboxRequest) -> (response: SandboxResponse, applied: Bool) {
        guard case .write(let action) = admitted.route else {
            do {
                let value = try state.read(admitted.route, license: admitted.license, user: admitted.user,
                                           query: request.query, maxModifiedWindow: configuration.maxModifiedWindow)
                return (.json(value), false)
            } catch {
                return (.error(error), false)
            }
        }
        let objects: [JSONValue]
        do {
            objects = try parseWriteBody(request.body, objectLimit: configuration.objectLimit)
        } catch {
            return (.error(error), false)
        }
        let license = admitted.license ?? ""
        let now = self.now
        let context = WriteContext(license: license, userName: admitted.user.name, now: now,
                                   futureToleranceDays: configuration.futureToleranceDays)
        switch state.apply(action, objects: objects, context: context) {
        case .rejected(let errors):
            logger.info("400 \(request.method) \(request.path): \(errors.count) problem(s)")
            return (.rowErrors(errors), false)
        case .applied(let ids):
            writeLog.append(SandboxWrite(
                id: writeLog.count + 1, userName: admitted.user.name, license: license, action: action,
                method: request.method, path: request.path, objects: .array(objects), recordedAt: now))
            logger.info("200 \(request.method) \(request.path): \(action.rawValue) x\(objects.count) by \(admitted.user.name) at \(license)")
            return (.json(["Ids": .array(ids.map(JSONValue.int)), "Warnings": nil]), true)
        }
    }

    func release(_ ticket: RateLimiter.Ticket) {
        limiter.release(ticket)
    }

    // MARK: Control

    func addFaults(_ new: [SandboxFault]) {
        for fault in new { faults.add(fault) }
    }

    func clearFaults() { faults.clear() }

    func removeRefusingOutages() { faults.removeRefusingOutages() }

    func activeFaults() -> [SandboxFault] { faults.faults }

    func writes() -> [SandboxWrite] { writeLog }

    func clearWrites() { writeLog.removeAll() }

    func snapshot() -> SandboxState { state }

    func replaceState(_ newState: SandboxState) {
        state = newState
        state.indexIfNeeded()
    }

    enum KeyChange: Sendable {
        case revoke, expire, restore
        case set(String)
    }

    /// Changes the key of the user named `user`, or of the user holding `key`. False when no such user.
    func changeKey(user: String?, key: String?, _ change: KeyChange) -> Bool {
        guard let index = state.users.firstIndex(where: { ($0.name == user && user != nil) || ($0.key == key && key != nil) })
        else { return false }
        switch change {
        case .revoke: state.users[index].revoked = true
        case .expire: state.users[index].expiresAt = now.addingTimeInterval(-1)
        case .restore:
            state.users[index].revoked = nil
            state.users[index].expiresAt = nil
        case .set(let newKey):
            // A key generated anew in Metrc's console is a fresh, valid key.
            state.users[index].key = newKey
            state.users[index].revoked = nil
            state.users[index].expiresAt = nil
        }
        return true
    }

    func addLocation(license: String, name: String, sublocation: Bool, forPlants: Bool?, forHarvests: Bool?,
                     forPackages: Bool?) throws(MetrcError) -> JSONValue {
        guard state.facility(license) != nil else { throw .notFound("Unknown facility \(license).") }
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .badRequest("name is required.") }
        let id = state.nextId
        if sublocation {
            guard state.sublocation(trimmed, license: license) == nil else { throw .badRequest("Sublocation \(trimmed) exists.") }
            let record = SandboxSublocation(id: id, license: license, name: trimmed, lastModified: now)
            state.sublocations.append(record)
            return state.json(sublocation: record)
        }
        guard state.location(trimmed, license: license) == nil else { throw .badRequest("Location \(trimmed) exists.") }
        let record = SandboxLocation(id: id, license: license, name: trimmed, forPlants: forPlants,
                                     forHarvests: forHarvests, forPackages: forPackages, lastModified: now)
        state.locations.append(record)
        return state.json(location: record)
    }

    // MARK: Records added by hand

    /// Applies `body` to the state and takes back the records it added if it fails: a list of records is added all
    /// or nothing (without copying the state: with a million records a copy costs more than the change).
    private func change<T>(_ body: (inout SandboxState, Date) throws(MetrcError) -> T) throws(MetrcError) -> T {
        let now = self.now
        return try state.allOrNothing { (state: inout SandboxState) throws(MetrcError) -> T in try body(&state, now) }
    }

    func addPlants(_ specs: [PlantSpec]) throws(MetrcError) -> [SandboxPlant] {
        try change { state, now throws(MetrcError) in
            var added: [SandboxPlant] = []
            for spec in specs {
                added.append(try state.addPlant(
                    license: spec.license, label: spec.label, strain: spec.strain, location: spec.location,
                    sublocation: spec.sublocation, phase: spec.phase, plantedDate: spec.plantedDate, now: now))
            }
            return added
        }
    }

    func addPackages(_ specs: [PackageSpec]) throws(MetrcError) -> [SandboxPackage] {
        try change { state, now throws(MetrcError) in
            var added: [SandboxPackage] = []
            for spec in specs {
                added.append(try state.addPackage(
                    license: spec.license, label: spec.label, item: spec.item, quantity: spec.quantity,
                    unitOfMeasure: spec.unitOfMeasure, location: spec.location, sublocation: spec.sublocation,
                    packagedDate: spec.packagedDate, now: now))
            }
            return added
        }
    }

    // The single-record changes below check everything before changing anything, so they need no copy.

    func addStrain(license: String, name: String, indicaPercentage: Double?,
                   sativaPercentage: Double?) throws(MetrcError) -> SandboxStrain {
        try state.addStrain(license: license, name: name, indicaPercentage: indicaPercentage,
                            sativaPercentage: sativaPercentage, now: now)
    }

    func addItem(license: String, name: String, category: String, unitOfMeasure: String,
                 strain: String?) throws(MetrcError) -> SandboxItem {
        try state.addItem(license: license, name: name, category: category, unitOfMeasure: unitOfMeasure,
                          strain: strain, now: now)
    }

    func finishPackage(license: String, label: String, date: MetrcDay?) throws(MetrcError) -> SandboxPackage {
        try state.finishPackage(license: license, label: label, date: date, now: now)
    }

    func seed(license: String, plants: Int, packages: Int) throws(MetrcError) -> SandboxSeedResult {
        try state.seed(license: license, plants: plants, packages: packages, now: now)
    }
}

/// One plant to add by hand (`addPlant`, `POST /_sandbox/plants`).
struct PlantSpec: Sendable {
    var license: String
    var label: String
    var strain: String
    var location: String
    var sublocation: String?
    var phase: PlantGrowthPhase
    var plantedDate: MetrcDay?
}

/// One package to add by hand (`addPackage`, `POST /_sandbox/packages`).
struct PackageSpec: Sendable {
    var license: String
    var label: String
    var item: String
    var quantity: Double
    var unitOfMeasure: String?
    var location: String
    var sublocation: String?
    var packagedDate: MetrcDay?
}
