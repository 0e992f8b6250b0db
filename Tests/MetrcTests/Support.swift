import Foundation
import Metrc
import MetrcSandbox
import OutlawProtocol

/// The protocol's JSON (the sandbox library has its own `JSONValue`).
typealias JSON = OutlawProtocol.JSONValue

/// Today (UTC) as a Metrc date: the sandbox refuses dates in the future and before planting/packaging.
let today = MetrcDay(Date()).description

/// A running demo sandbox and a client pointed at it; both are shut down afterwards, even on failure.
func withSandbox(
    _ configuration: SandboxConfiguration = .init(),
    // A safety net for a hung sandbox, not a speed test: tests of timeouts pass their own.
    requestTimeout: Double = 30,
    rateLimitedRetries: Int = 4,
    _ body: (MetrcSandboxServer, MetrcClient) async throws -> Void
) async throws {
    let server = MetrcSandboxServer(state: .demo(), configuration: configuration)
    try await server.start()
    let client = MetrcClient(configuration: .init(
        baseURL: server.baseURL + "/", vendorKey: SandboxDemo.vendorKey, requestTimeout: requestTimeout,
        rateLimitedRetries: rateLimitedRetries))
    do {
        try await body(server, client)
    } catch {
        try? await client.shutdown()
        try? await server.shutdown()
        throw error
    }
    try await client.shutdown()
    try await server.shutdown()
}

/// Event objects as a handheld sends them (PROTOCOL.md, "Events").
enum Events {
    static func harvest(_ plant: String, weight: Double = 512.5, harvestName: String? = nil) -> [String: JSON] {
        var fields: [String: JSON] = [
            "seq": 1, "type": "plant.harvest", "at": "2026-11-28T14:03:11-08:00",
            "plant": .string(plant), "weight": .number(weight), "unit": "Grams", "drying_location": "Drying Room",
            "drying_sublocation": "Rack 1",
        ]
        if let harvestName { fields["harvest_name"] = .string(harvestName) }
        return fields
    }

    static func movePlant(_ plant: String, to location: String = "Quarantine", sublocation: String? = nil) -> [String: JSON] {
        var fields: [String: JSON] = ["seq": 2, "type": "plant.move", "at": "2026-11-28T09:00:00Z",
                                      "plant": .string(plant), "location": .string(location)]
        if let sublocation { fields["sublocation"] = .string(sublocation) }
        return fields
    }

    static func destroy(_ plant: String, note: String? = nil) -> [String: JSON] {
        var fields: [String: JSON] = [
            "seq": 3, "type": "plant.destroy", "at": "2026-11-28T09:00:00Z", "plant": .string(plant),
            "waste_weight": 42, "waste_unit": "Grams", "waste_method": "Compost", "waste_material": "Soil",
            "reason": "Mold",
        ]
        if let note { fields["note"] = .string(note) }
        return fields
    }

    static func movePackage(_ package: String, to location: String = "Quarantine", sublocation: String? = nil) -> [String: JSON] {
        var fields: [String: JSON] = ["seq": 4, "type": "package.move", "at": "2026-11-28T09:00:00Z",
                                      "package": .string(package), "location": .string(location)]
        if let sublocation { fields["sublocation"] = .string(sublocation) }
        return fields
    }

    static func adjust(_ package: String, quantity: Double = -2.5, reason: String = "Drying", note: String? = nil) -> [String: JSON] {
        var fields: [String: JSON] = ["seq": 5, "type": "package.adjust", "at": "2026-11-28T09:00:00Z",
                                      "package": .string(package), "quantity": .number(quantity), "unit": "Grams",
                                      "reason": .string(reason)]
        if let note { fields["note"] = .string(note) }
        return fields
    }
}

/// An event mapped for today.
func metrcObject(_ type: EventType, _ fields: [String: JSON]) -> JSON {
    MetrcBody.object(type: type, fields: fields, date: today)
}
