import Testing
@testable import OutlawProtocol

@Suite("Line framing")
struct FramingTests {
    func lines(_ chunks: [String], max: Int = 16) -> [FramedLine] {
        var framer = LineFramer(maxLineBytes: max)
        var out: [FramedLine] = []
        for chunk in chunks {
            framer.append(Array(chunk.utf8))
            while let l = framer.next() {
                out.append(l)
                if l == .tooLong { return out }
            }
        }
        return out
    }

    @Test func splitsOnNewlineAcrossChunks() {
        #expect(lines(["ab", "c\nde", "f\n"]) == [.line(Array("abc".utf8)), .line(Array("def".utf8))])
    }

    @Test func crBeforeNewlineIsIgnored() {
        #expect(lines(["abc\r\n"]) == [.line(Array("abc".utf8))])
    }

    @Test func blankLinesAreSkipped() {
        #expect(lines(["\n\r\n  \nx\n"]) == [.line(Array("x".utf8))])
    }

    @Test func lineOfExactlyTheLimitIsAccepted() {
        let s = String(repeating: "a", count: 16)
        #expect(lines([s + "\r\n"]) == [.line(Array(s.utf8))])
    }

    @Test func longerLineIsRefusedBeforeItEnds() {
        // No newline yet: the framer must not wait for the whole line to arrive.
        #expect(lines([String(repeating: "a", count: 18)]) == [.tooLong])
        #expect(lines([String(repeating: "a", count: 17) + "\n"]) == [.tooLong])
    }

    @Test func afterTooLongNothingMoreIsFramed() {
        var framer = LineFramer(maxLineBytes: 4)
        framer.append(Array("aaaaaaa\nok\n".utf8))
        #expect(framer.next() == .tooLong)
        #expect(framer.next() == .tooLong)
    }

    @Test func partialLineWaits() {
        var framer = LineFramer(maxLineBytes: 100)
        framer.append(Array("{\"op\":".utf8))
        #expect(framer.next() == nil)
        framer.append(Array("\"ping\"}\n".utf8))
        #expect(framer.next() == .line(Array(#"{"op":"ping"}"#.utf8)))
        #expect(framer.bufferedByteCount == 0 || framer.next() == nil)
    }
}

@Suite("Messages")
struct MessageTests {
    func parse(_ s: String) -> Result<ClientMessage, ClientMessage.ParseError> {
        ClientMessage.parse(line: Array(s.utf8))
    }

    @Test func badJSON() {
        #expect(throws: ClientMessage.ParseError.badJSON) { try parse("{nope").get() }
        #expect(throws: ClientMessage.ParseError.badJSON) { try parse("[1,2]").get() }
        #expect(throws: ClientMessage.ParseError.badJSON) { try parse("\"op\"").get() }
        #expect(throws: ClientMessage.ParseError.badJSON) { try ClientMessage.parse(line: [0x7B, 0xFF, 0x7D]).get() }
    }

    @Test func unknownAndMissingOp() {
        #expect(throws: ClientMessage.ParseError.unknownOp("dance")) { try parse(#"{"op":"dance"}"#).get() }
        #expect(throws: ClientMessage.ParseError.unknownOp(nil)) { try parse(#"{"hello":1}"#).get() }
        #expect(throws: ClientMessage.ParseError.unknownOp(nil)) { try parse(#"{"op":5}"#).get() }
    }

    @Test func hello() throws {
        guard case .hello(let h) = try parse(#"{"op":"hello","proto":1,"device":"HH-0042","token":"t","firmware":"3.2.1","x":1}"#).get() else {
            Issue.record("not a hello")
            return
        }
        #expect(h.proto == 1 && h.device == "HH-0042" && h.token == "t" && h.firmware == "3.2.1")
    }

    @Test(arguments: [("HH-0042", true), ("a.b_c-D9", true), ("", false), ("has space", false), ("é", false),
                      (String(repeating: "x", count: 64), true), (String(repeating: "x", count: 65), false)])
    func deviceNames(name: String, valid: Bool) {
        #expect(ClientMessage.isValidDeviceName(name) == valid)
    }

    @Test func replyLinesPutOpFirstAndEscape() {
        let r = Reply.error(.badJSON, "a \"quoted\"\nline")
        #expect(r.line == "{\"op\":\"error\",\"code\":\"bad_json\",\"message\":\"a \\\"quoted\\\"\\nline\"}\n")
        let nack = Reply.nack(id: "b-1", BatchRejection(.badEvents, "1 event is invalid", errors: [EventError(seq: 3, field: "weight", message: "must be greater than 0")]))
        let parsed = JSONValue.parse(Array(nack.line.utf8))
        #expect(parsed?["errors"]?.arrayValue?.first?["seq"] == 3)
        #expect(parsed?["code"] == "bad_events")
    }

    @Test func timestampFormatting() {
        let t = Timestamp("2026-11-28T14:03:11.250-08:00")!
        #expect(Timestamp.format(t.date) == "2026-11-28T22:03:11.250Z")
        #expect(t.localDate == "2026-11-28")
        #expect(Timestamp("2024-02-29T00:00:00Z") != nil)
        #expect(Timestamp("2023-02-29T00:00:00Z") == nil)
    }
}
