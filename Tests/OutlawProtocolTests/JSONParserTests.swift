import Foundation
@testable import OutlawProtocol
import Testing

/// The byte parser on the ingest path must accept and refuse exactly what Foundation's decoder did, and the
/// byte-wise string writer must write exactly what the scalar-wise one did (stored content hashes depend on it).
@Suite("JSON parser and writer against Foundation")
struct JSONParserTests {
    static let corpus: [String] = [
        #"{"op":"batch","id":"b-1","user":"jane","events":[{"seq":1,"type":"plant.move","at":"2026-11-28T14:03:11-08:00","plant":"1A4000000000000000000001","location":"Veg Room"}]}"#,
        #"{}"#, #"[]"#, #" { "a" : [ 1 , 2.5 , -3e2 , 0 , -0 , 1E+2 , 1e-2 , true , false , null ] } "#,
        #"{"s":"quote \" backslash \\ slash \/ \b \f \n \r \t \u0041 \u00e9 \u4e2d \ud83d\ude00"}"#,
        #"{"deep":[[[[[[[[[[{"x":[{}]}]]]]]]]]]]}"#, #"{"dup":1,"dup":2}"#, #"{"":""}"#,
        #"{"n":123456789012345678901234567890}"#, #"{"n":0.1}"#, #"{"n":1.7976931348623157e308}"#, #"{"n":5e-324}"#,
        #"{"emoji":"🌿","accent":"é"}"#, "\t\n\r {\"a\":1}\n",
        // Refused:
        "", " ", "{", "}", "[", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, #"[1,]"#, #"{a:1}"#, #"{'a':1}"#, #"{"a":01}"#,
        #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":-}"#, #"{"a":1e}"#, #"{"a":+1}"#, #"{"a":1e400}"#, #"{"a":-1e400}"#,
        #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":TRUE}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#, #"{"a":"\ud800"}"#,
        #"{"a":"\udc00"}"#, #"{"a":"\ud800\u0041"}"#, "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}", #"{"a":1} x"#,
        #"{"a":1}{"b":2}"#, #"{"a":NaN}"#, #"{"a":Infinity}"#, #"[1 2]"#, #"{"a" 1}"#, #"{"a":1 "b":2}"#, #"{"a":"unterminated}"#,
        "{\"a\":\"\u{7f}\"}", #"{"a":[1,[2,[3]]]"#, #"nul"#, #"-"#, #"0x10"#, #"{"a":00}"#, #"{"a":-01}"#,
    ]

    /// What the parser accepts, Foundation accepted with the same value; what Foundation refused, the parser refuses.
    /// (The parser may refuse more: trailing commas and text after the value, which RFC 8259 does not allow.)
    static func agrees(_ bytes: [UInt8]) -> Bool {
        let ours = JSONValue.parse(bytes)
        let foundation = JSONValue.parseWithFoundation(bytes)
        if let ours { return ours == foundation }
        return true
    }

    static func same(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        if strictlyRefused.contains(text) { return JSONValue.parse(bytes) == nil }
        return JSONValue.parse(bytes) == JSONValue.parseWithFoundation(bytes)
    }

    /// Foundation's decoder let these through; the contract says a line that is not JSON is bad_json.
    static let strictlyRefused: Set<String> = [#"{"a":1,}"#, #"[1,]"#, #"{"a":1} x"#, #"{"a":1}{"b":2}"#, "0x10"]

    @Test func theCorpusParsesAsFoundationParsesIt() {
        for text in Self.corpus {
            #expect(Self.same(text), "\(text): parser \(String(describing: JSONValue.parse(Array(text.utf8)))), Foundation \(String(describing: JSONValue.parseWithFoundation(Array(text.utf8))))")
        }
        #expect(JSONValue.parse(Array(#"{"a":[1,{"b":"c"}]}"#.utf8)) == ["a": [1, ["b": "c"]]])
        #expect(JSONValue.parse([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) == nil, "invalid UTF-8 is bad_json")
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(JSONValue.parse(Array(deep.utf8)) == nil)
    }

    /// Random values, then each broken by one byte: the parser never accepts what Foundation refused, nor differs on a value.
    @Test func randomLinesAndTheirMutationsParseAsFoundationParsesThem() {
        var rng = SplitMix(seed: 20261202)
        let alphabet: [UInt8] = Array(#"{}[]":,.-+eE0123456789 \tnultrfasx\/u"#.utf8)
        var disagreements: [String] = []
        for _ in 0..<3000 {
            let text = Self.randomValue(&rng, depth: 0).serialized(sortedKeys: rng.next() % 2 == 0)
            // Unbroken, both must accept and agree.
            if JSONValue.parse(Array(text.utf8)) == nil || !Self.same(text) { disagreements.append(text) }
            var bytes = Array(text.utf8)
            guard !bytes.isEmpty else { continue }
            let at = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 3 {
            case 0: bytes.remove(at: at)
            case 1: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
            default: bytes[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
            }
            if !Self.agrees(bytes) {
                disagreements.append(String(decoding: bytes, as: UTF8.self))
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }

    /// The line parser the ingest path uses (events straight into `EventFields`) accepts exactly what the tree
    /// parser accepts as an object, with the same members, the first of a repeated name kept, and every event's
    /// canonical JSON exactly the tree's, sorted-keys serialisation (stored content hashes depend on it).
    @Test func theMessageParserAgreesWithTheTreeParser() {
        var rng = SplitMix(seed: 20261203)
        let alphabet: [UInt8] = Array(#"{}[]":,.-+eE0123456789 \tnultrfasx\/u"#.utf8)
        var lines = Self.corpus + [
            #"{"events":[{"a":1,"a":2}],"events":[{"b":1}]}"#, #"{"events":"x","events":[{"b":1}]}"#,
            #"{"events":[],"op":"batch"}"#, #"{"events":[1,"x",null,[{"a":1}],{"b":{"c":[1,2]}}]}"#,
            #"{"events":[{"seq":1,"seq":2,"type":"plant.move"}]} "#, #"{"events":[{}]}"#, #"{"events":[{"a":1},]}"#,
        ]
        for _ in 0..<1500 {
            var object: [String: JSONValue] = ["op": "batch", "id": Self.randomValue(&rng, depth: 3)]
            object["events"] = .array((0..<Int(rng.next() % 4)).map { _ in
                rng.next() % 5 == 0 ? Self.randomValue(&rng, depth: 2) : .object(Self.randomObject(&rng))
            })
            lines.append(JSONValue.object(object).serialized(sortedKeys: rng.next() % 2 == 0))
        }
        var disagreements: [String] = []
        for line in lines {
            var variants = [Array(line.utf8)]
            if !line.isEmpty {
                var bytes = Array(line.utf8)
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                default: bytes[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                }
                variants.append(bytes)
            }
            for bytes in variants {
                let tree = JSONValue.parse(bytes)?.objectValue
                let message = JSONValue.parseMessage(bytes)
                guard let tree, let message else {
                    if (tree == nil) != (message == nil) { disagreements.append(String(decoding: bytes, as: UTF8.self)) }
                    continue
                }
                let parsed = BatchMessage(envelope: message.members, events: message.events)
                var canonicalAgrees = true
                if case .array(let list)? = tree["events"] {
                    for case (.object(let fields), .object(let dictionary)) in zip(parsed.events ?? [], list) {
                        canonicalAgrees = canonicalAgrees && fields.canonicalJSON == JSONValue.object(dictionary).serialized(sortedKeys: true)
                    }
                }
                if parsed != BatchMessage(tree) || !canonicalAgrees { disagreements.append(String(decoding: bytes, as: UTF8.self)) }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }

    static func randomObject(_ rng: inout SplitMix) -> [String: JSONValue] {
        let names = ["seq", "type", "at", "plant", "a", "é", "\"q", "", "Z", "plants"]
        var object: [String: JSONValue] = [:]
        for _ in 0..<Int(rng.next() % 6) {
            object[names[Int(rng.next() % UInt64(names.count))]] = randomValue(&rng, depth: 2)
        }
        return object
    }

    @Test func theByteWiseWriterWritesWhatTheScalarWiseOneDid() {
        var rng = SplitMix(seed: 7)
        let pieces = ["a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{8}", "\u{c}", "\u{1f}", "\u{7f}", "é", "中", "🌿", "/"]
        for _ in 0..<2000 {
            let s = (0..<Int(rng.next() % 12)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            var fast = ""
            var reference = ""
            JSONValue.writeString(s, to: &fast)
            JSONValue.writeStringScalarByScalar(s, to: &reference)
            #expect(fast == reference, "\(s.debugDescription)")
        }
    }

    static func randomValue(_ rng: inout SplitMix, depth: Int) -> JSONValue {
        switch rng.next() % (depth > 3 ? 4 : 6) {
        case 0: return .null
        case 1: return .bool(rng.next() % 2 == 0)
        case 2:
            let choices: [Double] = [0, 1, -1, 42, 3.25, -0.5, 1e21, 123456789012, 2.5e-7]
            return .number(choices[Int(rng.next() % UInt64(choices.count))])
        case 3:
            let pieces = ["plant", "é", "\"", "\\", "\n", "🌿", " ", "1A4", "\u{1}"]
            return .string((0..<Int(rng.next() % 4)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined())
        case 4:
            return .array((0..<Int(rng.next() % 4)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var object: [String: JSONValue] = [:]
            for i in 0..<Int(rng.next() % 4) { object["k\(i)"] = randomValue(&rng, depth: depth + 1) }
            return .object(object)
        }
    }
}

/// A small seeded generator, so a failure repeats.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

