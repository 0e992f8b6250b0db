import Foundation
import OutlawTestSupport

/// Any JSON value: the write log carries Metrc's request objects as they were sent.
enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// A field of an object, by Metrc's field name (Metrc matches names case-insensitively).
    subscript(field name: String) -> JSONValue? {
        guard case .object(let fields) = self else { return nil }
        return fields[name] ?? fields.first { $0.key.lowercased() == name.lowercased() }?.value
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var number: Double? { if case .number(let n) = self { n } else { nil } }
}

/// One accepted write in the sandbox's write log (`GET /_sandbox/writes`, docs/metrc-sandbox.md).
struct WriteLogEntry: Decodable, Sendable {
    let id: Int
    /// The Metrc user whose key signed the request.
    let userName: String
    let license: String
    let action: String
    let method: String
    let path: String
    let objects: JSONValue
    let recordedAt: String

    /// `recordedAt` (`2026-11-28T22:03:11.123456+00:00`) as a date.
    var recorded: Date? { Timestamp.parse(recordedAt) }
}

/// What the shift can use at the sandbox's facility right now: plants still growing, packages still active,
/// the locations that exist, and whose key is the Default key.
struct SandboxStock: Sendable {
    /// A plant that Metrc still tracks.
    struct Plant: Sendable, Decodable {
        let label: String
        let license: String
        let strain: String
        let growthPhase: String
        let state: String
    }

    /// A package that Metrc still lists as active.
    struct Package: Sendable, Decodable {
        let label: String
        let license: String
        let item: String
        let quantity: Double
        let unitOfMeasure: String
        let location: String
        let finishedDate: String?
    }

    var vegetative: [Plant]
    var flowering: [Plant]
    var packages: [Package]
    /// Location names of the facility, lowercased (Metrc matches names case-insensitively).
    var locations: Set<String>
    /// The facility's owner: the Metrc user behind the Default key.
    var owner: String?
}

/// The sandbox's control API (`/_sandbox/...`), which only the demo reads: never part of a real Metrc.
struct SandboxControl: Sendable {
    let baseURL: String

    /// Plants and packages the shift may still act on; read from the whole state so a re-run never picks a plant
    /// an earlier run harvested or destroyed.
    func stock(license: String) async throws -> SandboxStock {
        struct Facility: Decodable { let license: String; let ownerUserName: String? }
        struct Location: Decodable { let license: String; let name: String }
        struct State: Decodable {
            let facilities: [Facility]?
            let locations: [Location]?
            let plants: [SandboxStock.Plant]?
            let packages: [SandboxStock.Package]?
        }
        let state = try JSONDecoder().decode(State.self, from: try await get("/_sandbox/state"))
        let plants = (state.plants ?? []).filter { $0.license == license && $0.state == "Tracked" }.sorted { $0.label < $1.label }
        return SandboxStock(
            vegetative: plants.filter { $0.growthPhase == "Vegetative" },
            flowering: plants.filter { $0.growthPhase == "Flowering" },
            packages: (state.packages ?? []).filter { $0.license == license && $0.finishedDate == nil }.sorted { $0.label < $1.label },
            locations: Set((state.locations ?? []).filter { $0.license == license }.map { $0.name.lowercased() }),
            owner: state.facilities?.first { $0.license == license }?.ownerUserName)
    }

    /// The write log of one facility, oldest first.
    func writes(license: String) async throws -> [WriteLogEntry] {
        let query = license.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? license
        return try JSONDecoder().decode([WriteLogEntry].self, from: try await get("/_sandbox/writes?license=\(query)"))
    }

    private func get(_ path: String) async throws -> Data {
        let url = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) + path : baseURL + path
        let response = try await offload { try SandboxHTTP.request("GET", url) }
        guard response.status == 200 else {
            throw HandheldError.setup("GET \(url) answered \(response.status): the demo needs the Metrc sandbox of `outlawd --dev`")
        }
        return response.body
    }
}

/// RFC 3339 stamps, written with the device's offset and read back from the sandbox, without a date formatter
/// (the sandbox writes microseconds, which formatters do not all read).
enum Timestamp {
    /// `2026-11-28T14:03:11-08:00`: the protocol's `at`, in the offset of `timeZone` at that instant.
    static func format(_ date: Date, timeZone: TimeZone) -> String {
        let offset = timeZone.secondsFromGMT(for: date)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: offset) ?? TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func pad(_ value: Int?, _ width: Int = 2) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let sign = offset < 0 ? "-" : "+"
        let zone = "\(sign)\(pad(abs(offset) / 3600)):\(pad(abs(offset) % 3600 / 60))"
        return "\(pad(c.year, 4))-\(pad(c.month))-\(pad(c.day))T\(pad(c.hour)):\(pad(c.minute)):\(pad(c.second))\(zone)"
    }

    /// Reads `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`.
    static func parse(_ text: String) -> Date? {
        let chars = Array(text.utf8)
        guard chars.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= chars.count else { return nil }
            return Int(String(decoding: chars[range], as: UTF8.self))
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < chars.count, chars[index] == UInt8(ascii: ".") {
            let start = index + 1
            index = start
            while index < chars.count, (48...57).contains(chars[index]) { index += 1 }
            fraction = Double("0." + String(decoding: chars[start..<index], as: UTF8.self)) ?? 0
        }
        var offset = 0
        guard index < chars.count else { return nil }
        if chars[index] != UInt8(ascii: "Z") {
            guard let hours = number((index + 1)..<(index + 3)), let minutes = number((index + 4)..<(index + 6)) else { return nil }
            offset = (hours * 3600 + minutes * 60) * (chars[index] == UInt8(ascii: "-") ? -1 : 1)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let base = calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))
        else { return nil }
        return base.addingTimeInterval(fraction - Double(offset))
    }
}
