import AsyncHTTPClient
import Foundation
import MetrcSandbox
import NIOCore
import NIOHTTP1

/// A clock tests move by hand (the rate limiter's windows, `LastModified`, key expiry).
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var instant: Date

    init(_ start: Date = Date()) { instant = start }

    var now: Date {
        lock.lock()
        defer { lock.unlock() }
        return instant
    }

    func advance(seconds: Double) {
        lock.lock()
        instant = instant.addingTimeInterval(seconds)
        lock.unlock()
    }
}

struct HTTPResult: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue? { JSONValue.parse(body) }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A demo sandbox on a free loopback port and an HTTP client pointed at it.
struct Harness: Sendable {
    let server: MetrcSandboxServer
    let client: HTTPClient

    var base: String { server.baseURL }

    static func credentials(_ userKey: String, vendor: String = SandboxDemo.vendorKey) -> String {
        "Basic " + Data("\(vendor):\(userKey)".utf8).base64EncodedString()
    }

    /// Any request; `auth` nil sends no Authorization header.
    func request(_ method: HTTPMethod, _ pathAndQuery: String, auth: String?, body: [UInt8]? = nil,
                 timeout: TimeAmount = .seconds(20)) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: base + pathAndQuery)
        request.method = method
        if let auth { request.headers.add(name: "Authorization", value: auth) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: timeout)
        let collected = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return HTTPResult(status: Int(response.status.code), headers: response.headers,
                          body: Array(collected.readableBytesView))
    }

    /// A Metrc GET signed with `key` (jane by default).
    func get(_ path: String, license: String? = SandboxDemo.license, query: [String: String] = [:],
             key: String = SandboxDemo.janeKey, timeout: TimeAmount = .seconds(20)) async throws -> HTTPResult {
        var pairs = query
        if let license { pairs["licenseNumber"] = license }
        let queryText = pairs.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }
            .joined(separator: "&")
        return try await request(.GET, queryText.isEmpty ? path : path + "?" + queryText,
                                 auth: Harness.credentials(key), timeout: timeout)
    }

    /// A Metrc write of `objects` signed with `key`.
    func write(_ method: HTTPMethod, _ path: String, _ objects: [JSONValue], license: String = SandboxDemo.license,
               key: String = SandboxDemo.janeKey, timeout: TimeAmount = .seconds(20)) async throws -> HTTPResult {
        try await request(method, path + "?licenseNumber=\(license)", auth: Harness.credentials(key),
                          body: JSONValue.array(objects).bytes, timeout: timeout)
    }

    /// A control-API call (no auth).
    func control(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> HTTPResult {
        try await request(method, "/_sandbox/" + path, auth: nil, body: body?.bytes)
    }
}

/// Runs `body` against a fresh sandbox (demo state unless given) and always shuts it down.
func withSandbox(state: SandboxState = .demo(), configuration: SandboxConfiguration = .init(),
                 maxConnections: Int = 64, _ body: (Harness) async throws -> Void) async throws {
    let server = MetrcSandboxServer(state: state, configuration: configuration)
    _ = try await server.start()
    let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections)))
    var failure: (any Error)?
    do {
        try await body(Harness(server: server, client: client))
    } catch {
        failure = error
    }
    try? await client.shutdown()
    try await server.shutdown()
    if let failure { throw failure }
}

/// Today in UTC as Metrc writes dates.
var today: String { MetrcDay(Date()).description }

// Write objects as the daemon would send them.
func harvestObject(_ plant: String, weight: JSONValue = 120.5, unit: JSONValue = "Grams",
                   location: JSONValue = "Drying Room", date: JSONValue = .string(today)) -> JSONValue {
    ["Plant": .string(plant), "Weight": weight, "UnitOfWeight": unit, "DryingLocation": location,
     "DryingSublocation": nil, "HarvestName": nil, "PatientLicenseNumber": nil, "ActualDate": date]
}

func movePlantObject(_ label: String, location: JSONValue = "Flower Room 2", sublocation: JSONValue = nil,
                     date: JSONValue = .string(today)) -> JSONValue {
    ["Id": nil, "Label": .string(label), "Location": location, "Sublocation": sublocation, "ActualDate": date]
}

func destroyObject(_ label: String, method: JSONValue = "Compost", reason: JSONValue = "Male Plants",
                   weight: JSONValue = 12.5, unit: JSONValue = "Grams", note: JSONValue = nil,
                   date: JSONValue = .string(today)) -> JSONValue {
    ["Id": nil, "Label": .string(label), "WasteMethodName": method, "WasteMaterialMixed": "Soil",
     "WasteWeight": weight, "WasteUnitOfMeasureName": unit, "WasteReasonName": reason, "Count": 1,
     "ReasonNote": note, "ActualDate": date]
}

func movePackageObject(_ label: String, location: JSONValue = "Quarantine", sublocation: JSONValue = "Rack 1",
                       date: JSONValue = .string(today)) -> JSONValue {
    ["Label": .string(label), "Location": location, "Sublocation": sublocation, "MoveDate": date]
}

func adjustObject(_ label: String, quantity: JSONValue = -2, unit: JSONValue = "Grams", reason: JSONValue = "Drying",
                  note: JSONValue = nil, date: JSONValue = .string(today)) -> JSONValue {
    ["Label": .string(label), "Quantity": quantity, "UnitOfMeasure": unit, "AdjustmentReason": reason,
     "AdjustmentDate": date, "ReasonNote": note]
}

func manicureObject(_ plant: String, weight: JSONValue = 35.5, unit: JSONValue = "Grams",
                    location: JSONValue = "Drying Room", sublocation: JSONValue = nil, harvestName: JSONValue = nil,
                    plantCount: JSONValue = 1, date: JSONValue = .string(today)) -> JSONValue {
    ["Plant": .string(plant), "Weight": weight, "UnitOfWeight": unit, "DryingLocation": location,
     "DryingSublocation": sublocation, "HarvestName": harvestName, "PlantCount": plantCount,
     "PatientLicenseNumber": nil, "ActualDate": date]
}

/// A plant waste object; no `plants` (and a `location`) is the waste of a whole room.
func wasteObject(_ plants: [String], location: JSONValue = nil, sublocation: JSONValue = nil,
                 method: JSONValue = "Compost", material: JSONValue = "Soil", weight: JSONValue = 12.5,
                 unit: JSONValue = "Grams", reason: JSONValue = "Male Plants", note: JSONValue = nil,
                 date: JSONValue = .string(today)) -> JSONValue {
    ["PlantLabels": .array(plants.map(JSONValue.string)), "LocationName": location, "SublocationName": sublocation,
     "WasteMethodName": method, "MixedMaterial": material, "WasteWeight": weight, "UnitOfMeasureName": unit,
     "ReasonName": reason, "Note": note, "WasteDate": date]
}

extension JSONValue {
    /// The `Data` array of a page envelope.
    var data: [JSONValue] { self[field: "Data"]?.arrayValue ?? [] }
    var labels: [String] { data.compactMap { $0[field: "Label"]?.stringValue } }
}

extension HTTPResult {
    /// The rows of a 400 validation array.
    var rows: [(row: Int, message: String)] {
        (json?.arrayValue ?? []).compactMap { entry in
            guard let row = entry[field: "row"]?.intValue, let message = entry[field: "message"]?.stringValue else { return nil }
            return (row, message)
        }
    }
}
