import Foundation

/// A TOML value of the kinds outlawd's configuration uses.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table([String: TOMLValue])
}

/// A TOML syntax error at a line.
public struct TOMLError: Error, Equatable, Sendable {
    public let line: Int
    public let message: String
}

/// Parses the TOML subset outlawd needs: tables, dotted table headers, strings, numbers, booleans and arrays.
///
/// No TOML library is in the package mirror (TOMLKit needs a package the mirror lacks), so this is kept small and strict:
/// anything outside the subset is an error with its line number, never a silent misread.
public enum TOMLParser {
    public static func parse(_ text: String) throws(TOMLError) -> [String: TOMLValue] {
        var root: [String: TOMLValue] = [:]
        var currentPath: [String] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        while index < lines.count {
            let lineNumber = index + 1
            var line = stripComment(lines[index]).trimmingCharacters(in: .whitespaces)
            index += 1
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), !line.hasPrefix("[[") else {
                    throw TOMLError(line: lineNumber, message: "a table header must look like [name]")
                }
                let inner = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                let path = try parseKey(inner, line: lineNumber)
                try ensureTable(&root, path: path, line: lineNumber)
                currentPath = path
                continue
            }
            guard let eq = indexOfEquals(line) else {
                throw TOMLError(line: lineNumber, message: "expected key = value")
            }
            let keyText = String(line[..<eq]).trimmingCharacters(in: .whitespaces)
            var valueText = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            // Multi-line arrays: keep reading until the brackets balance, scanning each line once (rescanning the
            // whole value at every line took minutes for an array of 100 KB).
            if valueText.hasPrefix("[") {
                var balance = BracketBalance()
                balance.scan(valueText)
                while !balance.isBalanced, index < lines.count {
                    let more = " " + stripComment(lines[index]).trimmingCharacters(in: .whitespaces)
                    balance.scan(more)
                    valueText += more
                    index += 1
                }
            }
            line = valueText
            let key = try parseKey(keyText, line: lineNumber)
            var scanner = Scanner(text: Array(line), line: lineNumber)
            let value = try scanner.value()
            scanner.skipSpaces()
            guard scanner.atEnd else { throw TOMLError(line: lineNumber, message: "unexpected text after the value") }
            try insert(&root, path: currentPath + key, value: value, line: lineNumber)
        }
        return root
    }

    static func stripComment(_ line: String) -> String {
        var inString: Character?
        var escaped = false
        for (i, c) in line.enumerated() {
            if let q = inString {
                if escaped { escaped = false } else if c == "\\" && q == "\"" { escaped = true } else if c == q { inString = nil }
            } else if c == "\"" || c == "'" {
                inString = c
            } else if c == "#" {
                return String(line.prefix(i))
            }
        }
        return line
    }

    static func indexOfEquals(_ line: String) -> String.Index? {
        var inString: Character?
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            if let q = inString { if c == q { inString = nil } } else if c == "\"" || c == "'" { inString = c } else if c == "=" { return i }
            i = line.index(after: i)
        }
        return nil
    }

    static func bracketsBalanced(_ text: String) -> Bool {
        var balance = BracketBalance()
        balance.scan(text)
        return balance.isBalanced
    }

    /// The bracket depth of a value read so far, outside quotes; fed piece by piece.
    struct BracketBalance {
        var depth = 0
        var inString: Character?

        var isBalanced: Bool { depth <= 0 }

        mutating func scan(_ text: String) {
            for c in text {
                if let q = inString { if c == q { inString = nil } } else if c == "\"" || c == "'" { inString = c } else if c == "[" { depth += 1 } else if c == "]" { depth -= 1 }
            }
        }
    }

    /// Keys and table names of more parts than this are refused: inserting copies the rest of the path at each
    /// part, so a key of 60,000 parts took 24 GB.
    static let maximumKeyParts = 64

    static func parseKey(_ text: String, line: Int) throws(TOMLError) -> [String] {
        var parts: [String] = []
        let raws = text.split(separator: ".", omittingEmptySubsequences: false)
        guard raws.count <= maximumKeyParts else {
            throw TOMLError(line: line, message: "a key has more than \(maximumKeyParts) parts")
        }
        for raw in raws {
            let part = raw.trimmingCharacters(in: .whitespaces)
            if part.count >= 2, part.hasPrefix("\""), part.hasSuffix("\"") {
                parts.append(String(part.dropFirst().dropLast()))
            } else if !part.isEmpty, part.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) {
                parts.append(part)
            } else {
                throw TOMLError(line: line, message: "\"\(text)\" is not a valid key")
            }
        }
        return parts
    }

    static func ensureTable(_ root: inout [String: TOMLValue], path: [String], line: Int) throws(TOMLError) {
        guard let first = path.first else { return }
        var child: [String: TOMLValue]
        switch root[first] {
        case nil: child = [:]
        case .table(let t): child = t
        default: throw TOMLError(line: line, message: "\(first) is already a value, not a table")
        }
        try ensureTable(&child, path: Array(path.dropFirst()), line: line)
        root[first] = .table(child)
    }

    static func insert(_ root: inout [String: TOMLValue], path: [String], value: TOMLValue, line: Int) throws(TOMLError) {
        guard let first = path.first else { return }
        if path.count == 1 {
            guard root[first] == nil else { throw TOMLError(line: line, message: "\(first) is set twice") }
            root[first] = value
            return
        }
        var child: [String: TOMLValue]
        switch root[first] {
        case nil: child = [:]
        case .table(let t): child = t
        default: throw TOMLError(line: line, message: "\(first) is already a value, not a table")
        }
        try insert(&child, path: Array(path.dropFirst()), value: value, line: line)
        root[first] = .table(child)
    }

    struct Scanner {
        /// Arrays nested deeper than this are refused: each level is a recursion, and tens of thousands of `[`
        /// overflowed the stack (found by Fuzz/TOML); a configuration needs one level.
        static let maximumArrayDepth = 64

        let text: [Character]
        let line: Int
        var i = 0
        var arrayDepth = 0

        init(text: [Character], line: Int) {
            self.text = text
            self.line = line
        }

        var atEnd: Bool { i >= text.count }

        mutating func skipSpaces() {
            while i < text.count, text[i] == " " || text[i] == "\t" { i += 1 }
        }

        func fail(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }

        mutating func value() throws(TOMLError) -> TOMLValue {
            skipSpaces()
            guard i < text.count else { throw fail("a value is missing") }
            switch text[i] {
            case "\"": return .string(try basicString())
            case "'": return .string(try literalString())
            case "[": return try array()
            case "t", "f": return try boolean()
            default: return try number()
            }
        }

        mutating func basicString() throws(TOMLError) -> String {
            i += 1
            var out = ""
            while i < text.count {
                let c = text[i]
                i += 1
                if c == "\"" { return out }
                if c == "\\" {
                    guard i < text.count else { break }
                    let e = text[i]
                    i += 1
                    switch e {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    case "\\": out.append("\\")
                    case "\"": out.append("\"")
                    case "u", "U":
                        let n = e == "u" ? 4 : 8
                        guard i + n <= text.count, let v = UInt32(String(text[i..<(i + n)]), radix: 16),
                              let scalar = Unicode.Scalar(v) else { throw fail("bad \\\(e) escape") }
                        out.unicodeScalars.append(scalar)
                        i += n
                    default: throw fail("unknown escape \\\(e)")
                    }
                } else {
                    out.append(c)
                }
            }
            throw fail("a string is not closed")
        }

        mutating func literalString() throws(TOMLError) -> String {
            i += 1
            var out = ""
            while i < text.count {
                let c = text[i]
                i += 1
                if c == "'" { return out }
                out.append(c)
            }
            throw fail("a string is not closed")
        }

        mutating func array() throws(TOMLError) -> TOMLValue {
            guard arrayDepth < Self.maximumArrayDepth else { throw fail("arrays are nested more than \(Self.maximumArrayDepth) deep") }
            arrayDepth += 1
            defer { arrayDepth -= 1 }
            i += 1
            var items: [TOMLValue] = []
            while true {
                skipSpaces()
                guard i < text.count else { throw fail("an array is not closed") }
                if text[i] == "]" {
                    i += 1
                    return .array(items)
                }
                items.append(try value())
                skipSpaces()
                guard i < text.count else { throw fail("an array is not closed") }
                if text[i] == "," { i += 1 } else if text[i] != "]" { throw fail("expected , or ] in an array") }
            }
        }

        mutating func boolean() throws(TOMLError) -> TOMLValue {
            // Not a copy of the rest of the line: that made an array of booleans quadratic (45 s for 16 KB).
            let rest = text[i...]
            if rest.starts(with: "true") { i += 4; return .boolean(true) }
            if rest.starts(with: "false") { i += 5; return .boolean(false) }
            throw fail("expected true or false (strings need quotes)")
        }

        mutating func number() throws(TOMLError) -> TOMLValue {
            let start = i
            while i < text.count, !" \t,]".contains(text[i]) { i += 1 }
            let raw = String(text[start..<i]).replacingOccurrences(of: "_", with: "")
            if let n = Int(raw) { return .integer(n) }
            if raw.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let d = Double(raw), d.isFinite { return .float(d) }
            throw fail("\"\(String(text[start..<i]))\" is not a value (strings need quotes)")
        }
    }
}
