import Foundation

/// A JSON value as it arrived on the wire, kept exact enough to validate, store and hash.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var numberValue: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    /// The value as an integer, when it is a number with no fractional part.
    public var integerValue: Int? {
        guard case .number(let n) = self, n.isFinite, n.rounded() == n,
              n >= Double(Int.min), n < Double(Int.max) else { return nil }
        return Int(n)
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n): try container.encode(n)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    /// Parses one protocol line. Returns nil for anything that is not valid UTF-8 JSON.
    public static func parse(_ bytes: some Collection<UInt8>) -> JSONValue? {
        parsingValidUTF8(bytes, with: JSONParser.parse)
    }

    /// Parses one protocol line that must be an object, a top-level `events` array apart (`JSONParser.parseMessage`).
    static func parseMessage(_ bytes: some Collection<UInt8>) -> (members: [String: JSONValue], events: [BatchEventElement]?)? {
        parsingValidUTF8(bytes, with: JSONParser.parseMessage)
    }

    /// Runs `parse` on the bytes, contiguous; nil for invalid UTF-8, which Foundation's decoder accepted by
    /// replacing it (the contract says such a line is bad_json).
    private static func parsingValidUTF8<T>(_ bytes: some Collection<UInt8>, with parse: (UnsafeBufferPointer<UInt8>) -> T?) -> T? {
        guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
        if let parsed = bytes.withContiguousStorageIfAvailable(parse) { return parsed }
        return Array(bytes).withUnsafeBufferPointer(parse)
    }

    /// What Foundation's decoder makes of the same bytes: the reference the parser is tested against.
    static func parseWithFoundation(_ bytes: some Collection<UInt8>) -> JSONValue? {
        guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
        return try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// Compact JSON text; `sortedKeys` gives the canonical form used for content hashes.
    public func serialized(sortedKeys: Bool = false) -> String {
        var out = ""
        write(to: &out, sortedKeys: sortedKeys)
        return out
    }

    func write(to out: inout String, sortedKeys: Bool) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += JSONValue.format(n)
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.write(to: &out, sortedKeys: sortedKeys)
            }
            out += "]"
        case .object(let o):
            out += "{"
            let keys = sortedKeys ? o.keys.sorted() : Array(o.keys)
            for (i, k) in keys.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(k, to: &out)
                out += ":"
                o[k]!.write(to: &out, sortedKeys: sortedKeys)
            }
            out += "}"
        }
    }

    static func format(_ n: Double) -> String {
        guard n.isFinite else { return "null" }
        if n.rounded() == n, abs(n) < 1e15 { return String(Int64(n)) }
        return "\(n)"
    }

    public static func writeString(_ s: String, to out: inout String) {
        out += "\""
        var s = s
        s.withUTF8 { utf8 in
            // Runs that need no escape are appended whole: the canonical content of every batch goes through here.
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte == 0x22 || byte == 0x5C || byte < 0x20 else { continue }
                if runStart < i { out += String(decoding: UnsafeBufferPointer(rebasing: utf8[runStart..<i]), as: UTF8.self) }
                runStart = i + 1
                switch byte {
                case 0x22: out += "\\\""
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                case 0x09: out += "\\t"
                default:
                    let hex = String(byte, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            }
            if runStart < utf8.count {
                out += String(decoding: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]), as: UTF8.self)
            }
        }
        out += "\""
    }

    /// The escaping `writeString` did before it worked on bytes: its output must never change, since stored
    /// content hashes depend on it (a test compares the two).
    static func writeStringScalarByScalar(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
