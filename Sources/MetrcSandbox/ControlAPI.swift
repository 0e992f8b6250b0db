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

    private func faultsJSON(_ faults: [SandboxFault]) -> JSONValue {
        let encoder = JSONEncoder()
        return .array(faults.compactMap { fault in
            (try? encoder.encode(fault)).flatMap { JSONValue.parse(Array($0)) }
        })
    }
}
