import Foundation
import Testing

@testable import OutlawProtocol

/// `MessageID`, packaging/outlawd.catalog and the log calls in Sources kept in step: one catalog entry per id, and
/// every log call at notice or worse carrying its own id (a scan of the source text).
@Suite("Journal message catalog")
struct MessageCatalogTests {
    /// The repository, found from this file (symlinks resolved: the tests may be built from a linked copy).
    static let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// One `-- ID` block of a catalog file: its header fields and its text.
    struct Entry {
        var id: String
        var header: [String: String] = [:]
        var body: [String] = []
    }

    static func catalog() throws -> [Entry] {
        let text = try String(contentsOf: root.appendingPathComponent("packaging/outlawd.catalog"), encoding: .utf8)
        var entries: [Entry] = []
        var inHeader = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("-- ") {
                entries.append(Entry(id: String(line.dropFirst(3))))
                inHeader = true
            } else if entries.isEmpty || line.hasPrefix("#") {
                continue  // the file's comments (journalctl skips '#' lines everywhere)
            } else if inHeader, let colon = line.firstIndex(of: ":"), !line.isEmpty {
                entries[entries.count - 1].header[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            } else {
                inHeader = false
                entries[entries.count - 1].body.append(line)
            }
        }
        return entries
    }

    /// A log call found in Sources: where, whether at notice or worse, and the `MessageID` cases its text names.
    struct Call: CustomStringConvertible {
        var file: String
        var line: Int
        var noticeOrWorse: Bool
        var ids: [String]
        var description: String { "\(file):\(line)" }
        /// The module's folder (Sources/NAME).
        var module: String { file.split(separator: "/").prefix(2).joined(separator: "/") }
    }

    /// Folders of Sources whose log lines are not outlawd's: the Metrc sandbox stands in for Metrc.
    static let exempt: Set<String> = ["MetrcSandbox", "metrc-sandbox"]

    static func sourceFiles() throws -> [(path: String, text: String)] {
        let sources = root.appendingPathComponent("Sources")
        let enumerator = try #require(FileManager.default.enumerator(atPath: sources.path))
        var files: [(String, String)] = []
        while let relative = enumerator.nextObject() as? String {
            guard relative.hasSuffix(".swift"), let top = relative.split(separator: "/").first,
                  !exempt.contains(String(top)) else { continue }
            let text = try String(contentsOf: sources.appendingPathComponent(relative), encoding: .utf8)
            files.append(("Sources/" + relative, text))
        }
        return files.sorted { $0.0 < $1.0 }
    }

    static func calls() throws -> [Call] {
        // `logger.warning(`, `self.logger.error(`, `auditLogger.info(`, `logger.log(level:`; below notice only when the
        // level is written out as trace, debug or info.
        let call = try Regex(#"[Ll]ogger\s*\.\s*(trace|debug|info|notice|warning|error|critical|log)\s*\(\s*(level:\s*\.\s*[a-z]+)?"#)
        let below = try Regex(#"\.(trace|debug|info)\s*\(|level:\s*\.\s*(trace|debug|info)$"#)
        let id = try Regex(#"MessageID\s*\.\s*([A-Za-z0-9_]+)"#)
        var found: [Call] = []
        for (path, text) in try sourceFiles() {
            for match in text.matches(of: call) {
                let lineStart = text[..<match.range.lowerBound].lastIndex(of: "\n").map { text.index(after: $0) } ?? text.startIndex
                if text[lineStart..<match.range.lowerBound].contains("//") { continue }  // a comment naming a call
                let open = text[match.range].lastIndex(of: "(")!
                let arguments = argumentText(text, from: text.index(after: open))
                let line = text[..<match.range.lowerBound].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
                var ids = arguments.matches(of: id).map { String($0.output[1].substring ?? "") }
                if ids.isEmpty {
                    ids = chosenIDs(text[..<match.range.lowerBound], arguments: arguments)
                }
                found.append(Call(file: path, line: line, noticeOrWorse: text[match.range].firstMatch(of: below) == nil, ids: ids))
            }
        }
        return found
    }

    /// The cases a call can log when its id is chosen first (`let id: MessageID = switch ... { case .a: .x ... }`, then
    /// `metadata: id.metadata()`): the case names written between that declaration and the call.
    static func chosenIDs(_ before: Substring, arguments: Substring) -> [String] {
        guard let variable = arguments.firstMatch(of: #/([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*metadata\s*\(/#)?.output.1,
              let declaration = before.matches(of: try! Regex("let\\s+\(variable)\\s*:\\s*MessageID\\s*=")).last
        else { return [] }
        let known = Set(names.values)
        return before[declaration.range.upperBound...].matches(of: #/\.([A-Za-z0-9_]+)\b/#)
            .map { String($0.output.1) }.filter { known.contains($0) }
    }

    /// The text of a call's arguments: from just after its `(` to the matching `)`, string literals (with their
    /// interpolations, which may hold strings and parentheses of their own) skipped as a whole.
    static func argumentText(_ text: String, from start: String.Index) -> Substring {
        enum Mode { case code(depth: Int), string(multiline: Bool) }
        var stack: [Mode] = [.code(depth: 1)]
        var i = start
        func next(_ s: String) -> Bool { text[i...].hasPrefix(s) }
        while i < text.endIndex {
            switch stack[stack.count - 1] {
            case .code(let depth):
                if next("\"\"\"") {
                    stack.append(.string(multiline: true))
                    i = text.index(i, offsetBy: 3)
                    continue
                } else if next("\"") {
                    stack.append(.string(multiline: false))
                } else if next("(") {
                    stack[stack.count - 1] = .code(depth: depth + 1)
                } else if next(")") {
                    if depth == 1 {
                        stack.removeLast()
                        if stack.isEmpty { return text[start..<i] }
                    } else {
                        stack[stack.count - 1] = .code(depth: depth - 1)
                    }
                }
            case .string(let multiline):
                if next("\\(") {
                    stack.append(.code(depth: 1))
                    i = text.index(i, offsetBy: 2)
                    continue
                } else if next("\\") {
                    i = text.index(i, offsetBy: 2, limitedBy: text.endIndex) ?? text.endIndex
                    continue
                } else if multiline, next("\"\"\"") {
                    stack.removeLast()
                    i = text.index(i, offsetBy: 3)
                    continue
                } else if !multiline, next("\"") {
                    stack.removeLast()
                }
            }
            i = text.index(after: i)
        }
        return text[start...]
    }

    /// Each case's name as the source spells it, read from MessageID.swift (`description` is the id itself).
    static let names: [MessageID: String] = {
        let source = (try? String(contentsOf: root.appendingPathComponent("Sources/OutlawProtocol/MessageID.swift"), encoding: .utf8)) ?? ""
        var names: [MessageID: String] = [:]
        for match in source.matches(of: #/case ([A-Za-z0-9_]+) = "([0-9a-f]+)"/#) {
            if let id = MessageID(rawValue: String(match.output.2)) { names[id] = String(match.output.1) }
        }
        return names
    }()

    static func name(_ id: MessageID) -> String { names[id] ?? id.rawValue }

    @Test func idsAreJournalIDs() {
        for id in MessageID.allCases {
            #expect(id.rawValue.count == 32 && id.rawValue.allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(id): \(id.rawValue)")
        }
        #expect(Set(MessageID.allCases.map(\.rawValue)).count == MessageID.allCases.count)
        #expect(Self.names.count == MessageID.allCases.count, "cases not found in MessageID.swift")
    }

    @Test func metadataCarriesTheID() {
        let metadata: [String: String] = MessageID.auditHead.metadata(["audit_head_id": "7"])
        #expect(metadata == ["audit_head_id": "7", "message_id": "ffd2551eae8448b1b1a9e2352bfbec9d"])
        #expect(MessageID.metadataKey == "message_id")
    }

    @Test func oneCatalogEntryPerID() throws {
        let entries = try Self.catalog()
        let ids = entries.map(\.id)
        #expect(Set(ids).count == ids.count, "an id with two entries: \(Dictionary(grouping: ids) { $0 }.filter { $1.count > 1 }.keys.sorted())")
        let known = Set(MessageID.allCases.map(\.rawValue))
        #expect(Set(ids).subtracting(known).sorted() == [], "catalog entries of no MessageID")
        #expect(known.subtracting(ids).sorted() == [], "MessageIDs without a catalog entry")
        for entry in entries {
            #expect(entry.header["Subject"]?.isEmpty == false, "\(entry.id): no Subject")
            #expect(entry.header["Defined-By"] == "outlawd", "\(entry.id)")
            #expect(entry.header["Support"]?.isEmpty == false, "\(entry.id): no Support")
            let text = entry.body.joined(separator: "\n")
            #expect(text.contains("outlawctl"), "\(entry.id): names no outlawctl command")
            #expect(entry.body.allSatisfy { !$0.hasPrefix("#") }, "\(entry.id): a text line journalctl would skip as a comment")
        }
    }

    @Test func everyNoticeOrWorseCallCarriesItsOwnID() throws {
        let calls = try Self.calls()
        #expect(calls.filter(\.noticeOrWorse).count >= 60, "the scan found \(calls.count) calls")
        for call in calls where call.noticeOrWorse {
            // Several only where one call logs distinct messages (`cond ? MessageID.a : MessageID.b`).
            #expect(!call.ids.isEmpty, "\(call): a log call at notice or worse needs its MessageID")
        }
        let uses = Dictionary(grouping: calls.flatMap { c in c.ids.map { ($0, c) } }) { $0.0 }
        for id in MessageID.allCases {
            let sites = uses[Self.name(id)]?.map(\.1) ?? []
            #expect(sites.count == 1, "MessageID.\(Self.name(id)) is used by \(sites.count) log calls (\(sites)): one message, one id")
        }
        let names = Set(MessageID.allCases.map(Self.name))
        #expect(Set(uses.keys).subtracting(names).sorted() == [])
    }

    /// Each @FIELD@ of an entry's text is a metadata key (lower-cased) its module writes, so journalctl -x never
    /// prints a bare field name where a value belongs.
    @Test func catalogFieldsAreWrittenByTheirModule() throws {
        let calls = try Self.calls()
        let files = try Self.sourceFiles()
        let field = try Regex(#"@([A-Z0-9_]+)@"#)
        for entry in try Self.catalog() {
            guard let id = MessageID(rawValue: entry.id) else { continue }  // oneCatalogEntryPerID names it
            guard let call = calls.first(where: { $0.ids.contains(Self.name(id)) }) else {
                Issue.record("MessageID.\(Self.name(id)): no log call uses it")
                continue
            }
            let module = files.filter { $0.path.hasPrefix(call.module + "/") }.map(\.text).joined()
            let text = ([entry.header["Subject"] ?? ""] + entry.body).joined(separator: "\n")
            for match in text.matches(of: field) {
                let name = String(match.output[1].substring ?? "")
                #expect(module.contains("\"\(name.lowercased())\""), "\(entry.id) (\(Self.name(id))) uses @\(name)@, which \(call.module) never sets")
            }
        }
    }
}
