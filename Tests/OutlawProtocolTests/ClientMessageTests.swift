import Testing
@testable import OutlawProtocol

@Suite("Client messages")
struct ClientMessageTests {
    func parse(_ line: String) -> Result<ClientMessage, ClientMessage.ParseError> {
        ClientMessage.parse(line: Array(line.utf8))
    }

    @Test func helloFields() {
        #expect(parse(#"{"op":"hello","proto":1,"device":"HH-0042","token":"t","firmware":"3.2.1","extra":true}"#)
            == .success(.hello(.init(proto: 1, device: "HH-0042", token: "t", firmware: "3.2.1"))))
        // A fractional or string proto is no version at all: the handshake answers unsupported_proto.
        #expect(parse(#"{"op":"hello","proto":1.5,"device":7}"#)
            == .success(.hello(.init(proto: nil, device: nil, token: nil, firmware: nil))))
        #expect(parse(#"{"op":"hello","proto":"1"}"#) == .success(.hello(.init(proto: nil, device: nil, token: nil, firmware: nil))))
    }

    @Test func pingAndBye() {
        #expect(parse(#"{"op":"ping"}"#) == .success(.ping))
        #expect(parse(#"{"op":"bye","ignored":1}"#) == .success(.bye))
    }

    @Test func batchKeepsTheWholeObjectForTheValidator() {
        #expect(parse(#"{"op":"batch","id":"b-1","user":"jane","events":[]}"#)
            == .success(.batch(BatchMessage(["op": "batch", "id": "b-1", "user": "jane", "events": []]))))
        // Events straight into members in canonical order, the first of a repeated name kept; anything but an
        // object stays a value for the validator to refuse; a second `events` is ignored, as any repeated name.
        let line = #"{"op":"batch","events":[{"seq":1,"b":"x","a":[1,{"z":null}],"b":"y"},7],"id":"b-2","events":"no"}"#
        guard case .success(.batch(let batch)) = parse(line) else { Issue.record("not a batch"); return }
        #expect(batch.envelope == ["op": "batch", "id": "b-2"])
        #expect(batch.events == [.object(EventFields(["seq": 1, "b": "x", "a": [1, ["z": nil]]])), .other(7)])
        guard case .object(let first)? = batch.events?.first else { return }
        #expect(first.members.map(\.name) == ["a", "b", "seq"])
        #expect(first.canonicalJSON == JSONValue.object(first.dictionary).serialized(sortedKeys: true))
        #expect(first.canonicalJSON == #"{"a":[1,{"z":null}],"b":"x","seq":1}"#)
        // A non-array `events` stays in the envelope: the validator says it must be an array.
        guard case .success(.batch(let other)) = parse(#"{"op":"batch","events":{"seq":1}}"#) else { Issue.record("not a batch"); return }
        #expect(other.events == nil && other["events"] == ["seq": 1])
    }

    @Test func statusIDs() {
        #expect(parse(#"{"op":"status","ids":["b-1","b-2"]}"#) == .success(.status(.init(ids: ["b-1", "b-2"]))))
        #expect(parse(#"{"op":"status","ids":[]}"#) == .success(.status(.init(ids: []))))
        // Missing or not an array: "status needs ids"; a non-string element: "every id must be a string".
        #expect(parse(#"{"op":"status"}"#) == .success(.status(.init(ids: nil))))
        #expect(parse(#"{"op":"status","ids":"b-1"}"#) == .success(.status(.init(ids: nil))))
        #expect(parse(#"{"op":"status","ids":["b-1",2,null]}"#) == .success(.status(.init(ids: ["b-1", nil, nil]))))
    }

    @Test func loginFields() {
        #expect(parse(#"{"op":"login","user":"jane","pin":"4821"}"#) == .success(.login(.init(user: "jane", pin: "4821"))))
        #expect(parse(#"{"op":"login","user":"jane"}"#) == .success(.login(.init(user: "jane", pin: nil))))
        // A numeric PIN is not a string: bad_request, as before.
        #expect(parse(#"{"op":"login","user":"jane","pin":4821}"#) == .success(.login(.init(user: "jane", pin: nil))))
    }

    @Test func setKeyFields() {
        #expect(parse(#"{"op":"set_key","actor":"admin","pin":"0000","user":"jane","key":"k-1"}"#)
            == .success(.setKey(.init(actor: "admin", pin: "0000", user: "jane", key: .set("k-1")))))
        #expect(parse(#"{"op":"set_key","actor":"admin","pin":"0000","user":"jane","key":null}"#)
            == .success(.setKey(.init(actor: "admin", pin: "0000", user: "jane", key: .clear))))
        // A missing key is not a clear: only an explicit null clears.
        #expect(parse(#"{"op":"set_key","actor":"admin","pin":"0000","user":"jane"}"#)
            == .success(.setKey(.init(actor: "admin", pin: "0000", user: "jane", key: nil))))
        #expect(parse(#"{"op":"set_key","actor":1,"pin":["0"],"user":false,"key":42}"#)
            == .success(.setKey(.init(actor: nil, pin: nil, user: nil, key: nil))))
        #expect(parse(#"{"op":"set_key","key":{}}"#) == .success(.setKey(.init(actor: nil, pin: nil, user: nil, key: nil))))
    }

    @Test func pullFields() {
        #expect(parse(#"{"op":"pull","kinds":["plants","packages"],"since":"c-1","license":"LIC-0002"}"#)
            == .success(.pull(.init(kinds: ["plants", "packages"], since: "c-1", license: "LIC-0002"))))
        #expect(parse(#"{"op":"pull"}"#) == .success(.pull(.init(kinds: nil, since: nil, license: nil))))
        #expect(parse(#"{"op":"pull","kinds":"plants","since":5,"license":null}"#)
            == .success(.pull(.init(kinds: nil, since: nil, license: nil))))
        #expect(parse(#"{"op":"pull","kinds":["plants",1]}"#) == .success(.pull(.init(kinds: ["plants", nil], since: nil, license: nil))))
    }

    @Test func unknownOrMissingOp() {
        #expect(parse(#"{"op":"sing"}"#) == .failure(.unknownOp("sing")))
        // Ops are case-sensitive, as the contract spells them.
        #expect(parse(#"{"op":"SET_KEY"}"#) == .failure(.unknownOp("SET_KEY")))
        #expect(parse(#"{"op":"setKey"}"#) == .failure(.unknownOp("setKey")))
        #expect(parse(#"{"user":"jane"}"#) == .failure(.unknownOp(nil)))
        #expect(parse(#"{"op":7}"#) == .failure(.unknownOp(nil)))
        #expect(parse(#"{"op":null}"#) == .failure(.unknownOp(nil)))
    }

    @Test func badJSON() {
        #expect(parse("not json") == .failure(.badJSON))
        #expect(parse(#"{"op":"ping""#) == .failure(.badJSON))
        #expect(parse(#"["op","ping"]"#) == .failure(.badJSON))
        #expect(parse(#""ping""#) == .failure(.badJSON))
        #expect(ClientMessage.parse(line: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) == .failure(.badJSON))
    }

    @Test func everyKnownOpParses() {
        for op in ClientMessage.knownOps {
            guard case .success = parse(#"{"op":"\#(op)"}"#) else {
                Issue.record("\(op) did not parse")
                continue
            }
        }
    }
}
