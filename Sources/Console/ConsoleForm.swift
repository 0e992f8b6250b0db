import Foundation

/// A posted `application/x-www-form-urlencoded` body, bounded before anything reads it: the body's size, the
/// number of fields and each field's length. Pure.
public struct ConsoleForm: Sendable, Equatable {
    public static let maxBodyBytes = 16 * 1024
    public static let maxFields = 64
    public static let maxFieldBytes = 1024

    public let fields: [String: String]

    /// Why a body was refused, as a sentence.
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init(fields: [String: String]) {
        self.fields = fields
    }

    public init(body: [UInt8]) throws(Refusal) {
        guard body.count <= Self.maxBodyBytes else { throw Refusal(description: "The form was larger than this console takes.") }
        var fields: [String: String] = [:]
        var count = 0
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            count += 1
            guard count <= Self.maxFields else { throw Refusal(description: "The form had more fields than this console takes.") }
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]), let value = Self.decode(parts.count > 1 ? parts[1] : []) else {
                throw Refusal(description: "The form was not readable.")
            }
            guard name.utf8.count <= 64, value.utf8.count <= Self.maxFieldBytes else {
                throw Refusal(description: "A field of the form was longer than this console takes.")
            }
            // The first value of a repeated field wins: a later copy cannot override it.
            if fields[name] == nil { fields[name] = value }
        }
        self.fields = fields
    }

    public subscript(_ name: String) -> String? { fields[name] }

    /// A field trimmed of surrounding spaces, nil when missing or empty.
    public func text(_ name: String) -> String? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    /// Percent-decoding with `+` as a space; nil for bad escapes or text that is not UTF-8.
    static func decode<S: Collection>(_ bytes: S) -> String? where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%") {
                let h = bytes.index(after: i)
                guard h != bytes.endIndex, bytes.index(after: h) != bytes.endIndex,
                      let hi = hex(bytes[h]), let lo = hex(bytes[bytes.index(after: h)]) else { return nil }
                out.append(hi << 4 | lo)
                i = bytes.index(after: bytes.index(after: h))
                continue
            } else {
                out.append(b)
            }
            i = bytes.index(after: i)
        }
        return String(validating: out, as: UTF8.self)
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
}
