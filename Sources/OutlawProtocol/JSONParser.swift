import Foundation

/// A strict RFC 8259 parser straight from the line's bytes to `JSONValue`: the ingest hot path parses every batch
/// line once, without Foundation's decoder and its value-by-value `try?` unwrapping. Whatever it accepts, Foundation's
/// decoder accepted with the same value; it is stricter in two places, as RFC 8259 is: no trailing comma, and
/// nothing after the value (a test compares the two on valid and broken lines).
struct JSONParser {
    /// Deeper nesting than this is refused, as Foundation's decoder refuses it.
    static let maximumDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The value of a whole text, nil when it is not exactly one JSON value (with surrounding whitespace).
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        guard let value = parser.value(depth: 0) else { return nil }
        parser.skipWhitespace()
        // (Not a ternary: `nil` there would become JSONValue.null through its nil literal.)
        guard parser.index == bytes.count else { return nil }
        return value
    }

    /// A protocol line whose value is an object: its members, except that a top-level `events` array is parsed
    /// straight into `BatchEventElement`s (each event's members into `EventFields`, no dictionary per event) and
    /// returned apart. nil when the text is not exactly one JSON object; whatever `parse` refuses, this refuses.
    static func parseMessage(_ bytes: UnsafeBufferPointer<UInt8>) -> (members: [String: JSONValue], events: [BatchEventElement]?)? {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        guard parser.index < bytes.count, bytes[parser.index] == UInt8(ascii: "{"),
              let message = parser.messageObject() else { return nil }
        parser.skipWhitespace()
        guard parser.index == bytes.count else { return nil }
        return message
    }

    /// `object(depth: 1)`, with `events` as `parseMessage` says.
    private mutating func messageObject() -> (members: [String: JSONValue], events: [BatchEventElement]?)? {
        var fields: [String: JSONValue] = [:]
        var events: [BatchEventElement]?
        let read = members { parser, key in
            let firstOfName = fields[key] == nil && !(key == "events" && events != nil)
            if key == "events", firstOfName, parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "[") {
                events = parser.eventArray()
                return events != nil
            }
            guard let value = parser.value(depth: 1) else { return false }
            // A repeated name keeps its first value, as Foundation's decoder did (stored content must not change).
            if firstOfName { fields[key] = value }
            return true
        }
        return read ? (fields, events) : nil
    }

    /// `array(depth: 2)` of the top-level `events`, each object element straight into `EventFields`.
    private mutating func eventArray() -> [BatchEventElement]? {
        var list: [BatchEventElement] = []
        let read = elements { parser in
            if parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "{") {
                guard let fields = parser.eventObject() else { return false }
                list.append(.object(fields))
            } else {
                guard let value = parser.value(depth: 2) else { return false }
                list.append(.other(value))
            }
            return true
        }
        return read ? list : nil
    }

    /// `object(depth: 3)` of one event, into members rather than a dictionary.
    private mutating func eventObject() -> EventFields? {
        var received: [EventFields.Member] = []
        let read = members { parser, key in
            guard let value = parser.value(depth: 3) else { return false }
            received.append(EventFields.Member(name: key, value: value))
            return true
        }
        return read ? EventFields(received: received) : nil
    }

    /// Walks an object from its `{` to its `}`: reads each member's name and colon and lets `member` read the
    /// value. False for anything that is not an object, or when `member` refuses.
    private mutating func members(_ member: (inout JSONParser, String) -> Bool) -> Bool {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return true
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let key = string() else { return false }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            index += 1
            skipWhitespace()
            guard member(&self, key) else { return false }
            skipWhitespace()
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return true
            default: return false
            }
        }
    }

    /// Walks an array from its `[` to its `]`, letting `element` read each element.
    private mutating func elements(_ element: (inout JSONParser) -> Bool) -> Bool {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return true
        }
        while true {
            skipWhitespace()
            guard element(&self) else { return false }
            skipWhitespace()
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return true
            default: return false
            }
        }
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) -> JSONValue? {
        guard index < bytes.count, depth < Self.maximumDepth else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"): return object(depth: depth + 1)
        case UInt8(ascii: "["): return array(depth: depth + 1)
        case UInt8(ascii: "\""): return string().map(JSONValue.string)
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
        default: return nil
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) -> JSONValue? {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return nil }
        let start = word.utf8Start
        for i in 0..<count where bytes[index + i] != start[i] { return nil }
        index += count
        return value
    }

    private mutating func object(depth: Int) -> JSONValue? {
        var fields: [String: JSONValue] = [:]
        let read = members { parser, key in
            guard let value = parser.value(depth: depth) else { return false }
            // A repeated name keeps its first value, as Foundation's decoder did (stored content must not change).
            if fields[key] == nil { fields[key] = value }
            return true
        }
        return read ? .object(fields) : nil
    }

    private mutating func array(depth: Int) -> JSONValue? {
        var list: [JSONValue] = []
        let read = elements { parser in
            guard let value = parser.value(depth: depth) else { return false }
            list.append(value)
            return true
        }
        return read ? .array(list) : nil
    }

    /// A string from the opening quote; the bytes are already known to be valid UTF-8.
    private mutating func string() -> String? {
        index += 1
        let start = index
        // The common case: no escapes, one copy.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { return nil }
            index += 1
        }
        guard index < bytes.count else { return nil }
        var scratch = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: scratch, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scratch.append(0x22)
                case UInt8(ascii: "\\"): scratch.append(0x5C)
                case UInt8(ascii: "/"): scratch.append(0x2F)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    scratch.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: return nil
                }
            case 0..<0x20:
                return nil
            default:
                scratch.append(byte)
                index += 1
            }
        }
        return nil
    }

    /// The scalar of `\uXXXX` (after the `u`), joining a surrogate pair; a lone surrogate is refused.
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let high = hex4() else { return nil }
        if (0xD800...0xDBFF).contains(high) {
            guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { return nil }
            index += 2
            guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
            return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        }
        if (0xDC00...0xDFFF).contains(high) { return nil }
        return Unicode.Scalar(high)
    }

    private mutating func hex4() -> UInt32? {
        guard bytes.count - index >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// A number by JSON's grammar; one that does not fit a Double (e.g. 1e400) is refused, as the decoder does.
    private mutating func number() -> JSONValue? {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < bytes.count else { return nil }
        var integer: UInt64 = 0
        var digits = 0
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            digits = 1
        } else {
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                if digits < 18 { integer = integer * 10 + UInt64(bytes[index] - UInt8(ascii: "0")) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
        }
        var simple = digits <= 15
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            simple = false
            index += 1
            let fractionStart = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > fractionStart else { return nil }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            simple = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let exponentStart = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > exponentStart else { return nil }
        }
        if simple {
            // Up to 15 digits: exact in a Double.
            let magnitude = Double(integer)
            return .number(negative ? -magnitude : magnitude)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let parsed = Double(text), parsed.isFinite else { return nil }
        // Too small for a Double (e.g. 2.5e-707) is refused too, as the decoder refuses it, not read as 0.
        if parsed == 0, text.prefix(while: { $0 != "e" && $0 != "E" }).contains(where: { ("1"..."9").contains($0) }) { return nil }
        return .number(parsed)
    }
}
