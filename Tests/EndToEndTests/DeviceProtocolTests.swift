import Foundation
import OutlawTestSupport
import Testing

/// The real outlawd binary over real TCP, with a temp config and store.
@Suite("Device protocol, end to end", .serialized, .timeLimit(.minutes(5)))
struct DeviceProtocolTests {
    static let plant = "1A4FF0100000022000000001"

    static func harvest(seq: Int, weight: Double = 10) -> [String: Any] {
        ["seq": seq, "type": "plant.harvest", "at": "2026-11-28T14:03:11-08:00", "plant": plant, "weight": weight,
         "unit": "Grams", "drying_location": "Drying Room"]
    }

    static func batch(_ id: String, user: String = "jane", events: [[String: Any]] = [harvest(seq: 1)]) -> [String: Any] {
        ["op": "batch", "id": id, "user": user, "events": events]
    }

    /// A daemon with the usual crew (device `HH-1`, users jane and john, an admin); `body` gets it and HH-1's token,
    /// then the daemon is stopped with a checked stop.
    static func withDaemon(server: String = "", sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: (DaemonProcess, String) async throws -> Void) async throws
    {
        try await DaemonProcess.withCrew(server: server, sourceLocation: sourceLocation) { d, crew in try await body(d, crew.token) }
    }

    @Test func helloWelcomeAndPing() async throws {
        try await Self.withDaemon { d, token in
            let (c, welcome) = try await d.session(device: "HH-1", token: token)
            #expect(welcome["op"] as? String == "welcome")
            #expect(welcome["proto"] as? Int == 1)
            #expect(welcome["facility"] as? String == "LIC-0001")
            #expect(welcome["licenses"] as? [String] == ["LIC-0001"])
            #expect(welcome["max_line_bytes"] as? Int == 1_048_576)
            #expect(welcome["max_batch_events"] as? Int == 5000)
            #expect(welcome["window"] as? Int == 16)
            #expect((welcome["session"] as? String)?.isEmpty == false)
            #expect((welcome["server"] as? String)?.hasPrefix("outlawd/") == true)
            try c.send(json: ["op": "ping"])
            let pong = try await c.readJSON()
            #expect(pong["op"] as? String == "pong")
            #expect((pong["time"] as? String)?.hasSuffix("Z") == true)
            try c.send(json: ["op": "hello", "proto": 1, "device": "HH-1", "token": token])
            #expect(try await c.readJSON()["code"] as? String == "already_hello")
            try c.send(json: ["op": "bye"])
            #expect(try await c.readJSON()["op"] as? String == "bye")
            #expect(await c.waitForClose())
        }
    }

    @Test func authenticationFailuresAllLookTheSameAndClose() async throws {
        try await Self.withDaemon { d, token in
            _ = try await d.addDevice("HH-OFF")
            _ = try await d.ctl(["device", "disable", "HH-OFF"])
            let attempts: [[String: Any]] = [
                ["op": "hello", "proto": 1, "device": "HH-1", "token": token + "x"],
                ["op": "hello", "proto": 1, "device": "HH-NOPE", "token": token],
                ["op": "hello", "proto": 1, "device": "HH-OFF", "token": token],
                ["op": "hello", "proto": 1, "device": "bad name!", "token": token],
                ["op": "hello", "proto": 1, "device": "HH-1"],
            ]
            for hello in attempts {
                let c = try d.client()
                try c.send(json: hello)
                let e = try await c.readJSON()
                #expect(e["op"] as? String == "error")
                #expect(e["code"] as? String == "unauthorized")
                #expect(e["message"] as? String == "device not recognised")
                #expect(await c.waitForClose())
            }
        }
    }

    @Test func handshakeErrors() async throws {
        try await Self.withDaemon { d, token in
            var c = try d.client()
            try c.send(json: ["op": "hello", "proto": 2, "device": "HH-1", "token": token])
            #expect(try await c.readJSON()["code"] as? String == "unsupported_proto")
            #expect(await c.waitForClose())

            c = try d.client()
            try c.send(json: ["op": "ping"])
            #expect(try await c.readJSON()["code"] as? String == "hello_required")
            #expect(await c.waitForClose())

            c = try d.client()
            try c.send("not json")
            #expect(try await c.readJSON()["code"] as? String == "hello_required")
            #expect(await c.waitForClose())
        }
    }

    @Test func helloTimeout() async throws {
        try await Self.withDaemon(server: "hello_timeout_seconds = 0.5") { d, _ in
            let c = try d.client()
            try c.send("")  // a blank line does not count as hello
            let e = try await c.readJSON()
            #expect(e["code"] as? String == "hello_timeout")
            #expect(await c.waitForClose())
        }
    }

    @Test func idleTimeout() async throws {
        try await Self.withDaemon(server: "idle_timeout_seconds = 1") { d, token in
            // The daemon's idle clock starts when it reads the hello, which is after this instant however long the
            // test then takes to see the welcome (measuring after the welcome made a busy run fail).
            let start = Date()
            let (c, _) = try await d.session(device: "HH-1", token: token)
            let e = try await c.readJSON()
            #expect(e["code"] as? String == "idle_timeout")
            #expect(Date().timeIntervalSince(start) >= 0.95)
            #expect(await c.waitForClose())
        }
    }

    @Test func ackDuplicateAndConflict() async throws {
        try await Self.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send(json: Self.batch("b-1", events: [Self.harvest(seq: 1), Self.harvest(seq: 2)]))
            let ack = try await c.readJSON()
            #expect(ack["op"] as? String == "ack")
            #expect(ack["id"] as? String == "b-1")
            #expect(ack["events"] as? Int == 2)
            #expect(ack["duplicate"] as? Bool == false)

            // The same batch again, from a new connection, as after a reconnect.
            let (c2, _) = try await d.session(device: "HH-1", token: token)
            try c2.send(json: Self.batch("b-1", events: [Self.harvest(seq: 1), Self.harvest(seq: 2)]))
            let dup = try await c2.readJSON()
            #expect(dup["op"] as? String == "ack")
            #expect(dup["duplicate"] as? Bool == true)

            try c2.send(json: Self.batch("b-1", events: [Self.harvest(seq: 1, weight: 11), Self.harvest(seq: 2)]))
            let conflict = try await c2.readJSON()
            #expect(conflict["op"] as? String == "nack")
            #expect(conflict["code"] as? String == "id_conflict")

            let listed = try await d.ctl(["batches", "--json"])
            #expect(listed.status == 0)
            let batches = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
            #expect(batches?.count == 1)
            #expect(batches?.first?["user"] as? String == "jane")
        }
    }

    @Test func nacksWithEventErrorsAndUsers() async throws {
        try await Self.withDaemon { d, token in
            _ = try await d.ctl(["user", "add", "gone", "--role", "user"], stdin: "9999\n")
            _ = try await d.ctl(["user", "disable", "gone"])
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send(json: Self.batch("b-bad", events: [Self.harvest(seq: 1), Self.harvest(seq: 2, weight: 0)]))
            let nack = try await c.readJSON()
            #expect(nack["code"] as? String == "bad_events")
            let errors = nack["errors"] as? [[String: Any]]
            #expect(errors?.count == 1)
            #expect(errors?.first?["seq"] as? Int == 2)
            #expect(errors?.first?["field"] as? String == "weight")
            try c.send(json: Self.batch("b-ghost", user: "ghost"))
            #expect(try await c.readJSON()["code"] as? String == "unknown_user")
            try c.send(json: Self.batch("b-gone", user: "gone"))
            #expect(try await c.readJSON()["code"] as? String == "inactive_user")
            try c.send(json: ["op": "batch", "id": 7, "user": "jane", "events": [Self.harvest(seq: 1)]])
            let badBatch = try await c.readJSON()
            #expect(badBatch["code"] as? String == "bad_batch")
            #expect(badBatch["id"] is NSNull)
            var lic = Self.batch("b-lic")
            lic["license"] = "LIC-9999"
            try c.send(json: lic)
            #expect(try await c.readJSON()["code"] as? String == "unknown_license")
            try c.send(json: Self.batch("b-many", events: (1...5001).map { Self.harvest(seq: $0) }))
            #expect(try await c.readJSON()["code"] as? String == "too_many_events")
            // Nothing of any refused batch was stored.
            let listed = try await d.ctl(["batches", "--json"])
            #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any])?.isEmpty == true)
        }
    }

    @Test func badLinesDoNotCloseAHealthySession() async throws {
        try await Self.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send("{this is not json")
            #expect(try await c.readJSON()["code"] as? String == "bad_json")
            try c.sendRaw([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D, 0x0A])
            #expect(try await c.readJSON()["code"] as? String == "bad_json")
            try c.send("[1,2,3]")
            #expect(try await c.readJSON()["code"] as? String == "bad_json")
            try c.send(#"{"op":"teleport"}"#)
            #expect(try await c.readJSON()["code"] as? String == "unknown_op")
            try c.send(#"{"noop":true}"#)
            #expect(try await c.readJSON()["code"] as? String == "unknown_op")
            try c.send("")
            try c.send(json: Self.batch("after-bad"))
            let ack = try await c.readJSON()
            #expect(ack["op"] as? String == "ack")
            #expect(ack["id"] as? String == "after-bad")
        }
    }

    @Test func lineTooLongCloses() async throws {
        try await Self.withDaemon(server: "max_line_bytes = 1024") { d, token in
            let (c, welcome) = try await d.session(device: "HH-1", token: token)
            #expect(welcome["max_line_bytes"] as? Int == 1024)
            try c.send(String(repeating: "x", count: 2000))
            #expect(try await c.readJSON()["code"] as? String == "line_too_long")
            #expect(await c.waitForClose())
        }
    }

    @Test func pipelinedBatchesAreAnsweredInOrder() async throws {
        try await Self.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            // Mixed requests, all sent before reading anything.
            var expected: [String] = []
            for i in 0..<40 {
                if i % 10 == 5 {
                    try c.send(json: ["op": "ping"])
                    expected.append("pong")
                } else if i % 10 == 7 {
                    try c.send(json: Self.batch("p-bad-\(i)", events: [Self.harvest(seq: 1, weight: -1)]))
                    expected.append("nack:p-bad-\(i)")
                } else {
                    try c.send(json: Self.batch("p-\(i)", events: (1...20).map { Self.harvest(seq: $0) }))
                    expected.append("ack:p-\(i)")
                }
            }
            var got: [String] = []
            for _ in expected {
                let m = try await c.readJSON()
                let op = m["op"] as? String ?? "?"
                got.append(op == "pong" ? "pong" : "\(op):\(m["id"] as? String ?? "?")")
            }
            #expect(got == expected)
        }
    }

    @Test func statusSeesOnlyOwnBatches() async throws {
        try await Self.withDaemon { d, token in
            let other = try await d.addDevice("HH-2")
            let (c1, _) = try await d.session(device: "HH-1", token: token)
            try c1.send(json: Self.batch("mine", events: [Self.harvest(seq: 1), Self.harvest(seq: 2)]))
            #expect(try await c1.readJSON()["op"] as? String == "ack")
            try c1.send(json: Self.batch("scans", events: [["seq": 1, "type": "plant.scan", "at": "2026-11-28T14:03:11Z", "plant": Self.plant]]))
            #expect(try await c1.readJSON()["op"] as? String == "ack")
            try c1.send(json: ["op": "status", "ids": ["mine", "scans", "zz"]])
            let status = try await c1.readJSON()
            let items = status["batches"] as? [[String: Any]] ?? []
            #expect(items.map { $0["id"] as? String } == ["mine", "scans", "zz"])
            #expect(items.map { $0["state"] as? String } == ["queued", "recorded", "unknown"])
            let counts = items.first?["events"] as? [String: Any]
            #expect(counts?["total"] as? Int == 2)
            #expect(counts?["pending"] as? Int == 2)

            let (c2, _) = try await d.session(device: "HH-2", token: other)
            try c2.send(json: ["op": "status", "ids": ["mine"]])
            let theirs = try await c2.readJSON()
            #expect((theirs["batches"] as? [[String: Any]])?.first?["state"] as? String == "unknown")

            try c2.send(json: ["op": "status", "ids": Array(repeating: "x", count: 1001)])
            #expect(try await c2.readJSON()["code"] as? String == "bad_request")
            try c2.send(json: ["op": "status", "ids": "mine"])
            #expect(try await c2.readJSON()["code"] as? String == "bad_request")
        }
    }

    @Test func loginAndLockout() async throws {
        try await Self.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send(json: ["op": "login", "user": "jane", "pin": "4821"])
            let ok = try await c.readJSON()
            #expect(ok["op"] as? String == "login")
            #expect(ok["ok"] as? Bool == true)
            #expect(ok["role"] as? String == "user")
            #expect(ok["metrc_key"] as? String == "default")
            try c.send(json: ["op": "login", "user": "nobody", "pin": "4821"])
            let unknown = try await c.readJSON()
            #expect(unknown["ok"] as? Bool == false)
            #expect(unknown["code"] as? String == "bad_credentials")
            for _ in 0..<5 {
                try c.send(json: ["op": "login", "user": "jane", "pin": "0000"])
                #expect(try await c.readJSON()["code"] as? String == "bad_credentials")
            }
            try c.send(json: ["op": "login", "user": "jane", "pin": "4821"])
            let locked = try await c.readJSON()
            #expect(locked["ok"] as? Bool == false)
            #expect(locked["code"] as? String == "locked")
            // An admin resetting the PIN lifts the lock.
            #expect(try await d.ctl(["user", "set-pin", "jane"], stdin: "2468\n").status == 0)
            try c.send(json: ["op": "login", "user": "jane", "pin": "2468"])
            #expect(try await c.readJSON()["ok"] as? Bool == true)
            _ = try await d.ctl(["user", "disable", "john"])
            try c.send(json: ["op": "login", "user": "john", "pin": "1111"])
            #expect(try await c.readJSON()["code"] as? String == "inactive_user")
        }
    }

    @Test func setKeyNeedsTLS() async throws {
        try await Self.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send(json: ["op": "set_key", "actor": "john", "pin": "1111", "user": "jane", "key": "secret-key-value"])
            let e = try await c.readJSON()
            #expect(e["code"] as? String == "tls_required")
        }
    }

    /// A key that is really processed (checked, stored, audited), with debug logging on: it appears in no log
    /// line, and listings show only its last 4 characters. (Refused before processing, as without TLS, proves nothing.)
    @Test func aProcessedKeyIsNeverLogged() async throws {
        try await DaemonProcess.withCrew(server: "allow_keys_without_tls = true", environment: ["OUTLAWD_DEBUG": "1"]) { d, crew in
            let token = crew.token
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send(json: ["op": "set_key", "actor": "john", "pin": "1111", "user": "jane", "key": "secret-key-value-7731"])
            let answer = try await c.readJSON()
            #expect(answer["op"] as? String == "set_key" && answer["ok"] as? Bool == true, "\(answer)")
            let keys = try await d.ctl(["key", "list"])
            #expect(keys.stdout.contains("jane") && keys.stdout.contains("7731"))
            let audit = try await d.ctl(["audit"])
            #expect(audit.stdout.contains("key.set"))
            #expect(await d.stop() == 0)
            for text in [d.log, keys.stdout, keys.stderr, audit.stdout] {
                #expect(!text.contains("secret-key-value"))
            }
        }
    }

    @Test func connectionsBeyondTheLimitGetBusy() async throws {
        try await Self.withDaemon(server: "max_connections = 2") { d, token in
            let (c1, _) = try await d.session(device: "HH-1", token: token)
            let (c2, _) = try await d.session(device: "HH-1", token: token)
            let c3 = try d.client()
            let refused = try await c3.readJSON()
            #expect(refused["code"] as? String == "busy")
            #expect(await c3.waitForClose())
            // The others are unaffected, and a slot frees when one leaves.
            try c1.send(json: ["op": "bye"])
            #expect(try await c1.readJSON()["op"] as? String == "bye")
            try c2.send(json: ["op": "ping"])
            #expect(try await c2.readJSON()["op"] as? String == "pong")
            #expect(await c1.waitForClose())
            // The server frees the slot just after it closes c1: wait for that, bounded, rather than a fixed pause.
            let welcome = try await eventually("a free slot", timeout: .seconds(10), every: .milliseconds(100)) { () -> [String: Any]? in
                let (c4, answer) = try await d.session(device: "HH-1", token: token)
                if answer["op"] as? String == "welcome" { return answer }
                _ = await c4.waitForClose()
                return nil
            }
            #expect(welcome["op"] as? String == "welcome")
        }
    }

    @Test func pipelinedStatusSeesTheBatchSentJustBeforeIt() async throws {
        try await Self.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            // Nothing is read between the two: the status must still see the batch (effects in request order).
            try c.send(json: Self.batch("just-sent", events: (1...50).map { Self.harvest(seq: $0) }))
            try c.send(json: ["op": "status", "ids": ["just-sent"]])
            #expect(try await c.readJSON()["op"] as? String == "ack")
            let status = try await c.readJSON()
            #expect((status["batches"] as? [[String: Any]])?.first?["state"] as? String == "queued")
        }
    }
}
