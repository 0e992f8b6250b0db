import Foundation
import GRDB
import OutlawTestSupport
import Testing

/// An attacker on the facility's Wi-Fi against the real outlawd on loopback, with the default settings: each test
/// reproduces one way the promise "the person who signs is the person who scanned" or its defences gave way.
@Suite("Hostile clients", .serialized, .timeLimit(.minutes(5)))
struct HostileClientTests {
    static let plant = "1A4FF0100000022000000001"

    static func now(_ offset: TimeInterval = 0) -> String {
        ISO8601DateFormatter().string(from: Date().addingTimeInterval(offset))
    }

    static func move(seq: Int, at: String = now()) -> [String: Any] {
        ["seq": seq, "type": "plant.move", "at": at, "plant": plant, "location": "Flower Room 1"]
    }

    static func batch(_ id: String, user: String = "jane", ticket: Any? = nil, events: [[String: Any]] = [move(seq: 1)]) -> [String: Any] {
        var b: [String: Any] = ["op": "batch", "id": id, "user": user, "events": events]
        if let ticket { b["ticket"] = ticket }
        return b
    }

    /// The default configuration (tickets required), devices HH-1 and HH-2, users jane and john (admin): `body` gets
    /// the daemon and the two tokens, then the daemon is stopped with a checked stop.
    static func withDaemon(server: String = "", sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: (DaemonProcess, String, String) async throws -> Void) async throws
    {
        try await DaemonProcess.withCrew(server: "require_login_ticket = true\n" + server, devices: ["HH-1", "HH-2"],
                                         sourceLocation: sourceLocation) { d, crew in
            try await body(d, crew.token("HH-1"), crew.token("HH-2"))
        }
    }

    static func loginRequiredSeqs(_ answer: [String: Any]) -> [Int]? {
        guard answer["op"] as? String == "nack", answer["code"] as? String == "login_required" else { return nil }
        return (answer["errors"] as? [[String: Any]] ?? []).compactMap { $0["seq"] as? Int }
    }

    // MARK: The collector is proven

    @Test func aBatchWithoutATicketIsRefusedAndNothingIsStored() async throws {
        try await Self.withDaemon { d, token, _ in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            try c.send(json: Self.batch("no-ticket", events: [Self.move(seq: 1), Self.move(seq: 2)]))
            let answer = try await c.readJSON()
            #expect(Self.loginRequiredSeqs(answer) == [1, 2], "\(answer)")
            // A name that never logged in on this device walks past nothing: not stored, not uploaded.
            #expect(try await d.ctl(["batch", "show", "HH-1", "no-ticket"]).status != 0)
            #expect(await d.stop() == 0)
        }
    }

    @Test func forgedOtherDevicesAndOtherUsersTicketsAreRefused() async throws {
        try await Self.withDaemon { d, token, token2 in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            let (c2, _) = try await d.session(device: "HH-2", token: token2)
            let janeOnHH2 = try #require(try await c2.login("jane", pin: "4821")["ticket"] as? String)
            let johnOnHH1 = try #require(try await c.login("john", pin: "1111")["ticket"] as? String)
            #expect(janeOnHH2 != johnOnHH1 && janeOnHH2.count >= 40)
            let forged = String(janeOnHH2.reversed())
            for (id, ticket) in [("forged", forged), ("other-device", janeOnHH2), ("other-user", johnOnHH1)] {
                try c.send(json: Self.batch(id, user: "jane", ticket: ticket))
                let answer = try await c.readJSON()
                #expect(Self.loginRequiredSeqs(answer) == [1], "\(id): \(answer)")
            }
            // jane's own login on HH-1 proves her batches there, and outlawctl says which login did.
            try await c.login("jane", pin: "4821")
            try c.send(json: Self.batch("proven"))
            #expect(try await c.readJSON()["op"] as? String == "ack")
            let shown = try await d.ctl(["batch", "show", "HH-1", "proven"])
            #expect(shown.stdout.contains("proved by: jane's login on HH-1"), "\(shown.stdout)")
            let audit = try await d.ctl(["audit", "--limit", "50"])
            #expect(audit.stdout.contains("login.ticket"), "\(audit.stdout)")
            // The ticket itself is never written anywhere the operator reads.
            #expect(!audit.stdout.contains(janeOnHH2) && !d.log.contains(janeOnHH2) && !shown.stdout.contains(janeOnHH2))
            #expect(await d.stop() == 0)
        }
    }

    @Test func disablingTheUserOrChangingThePINEndsTheirTicketsAtOnce() async throws {
        try await Self.withDaemon { d, token, _ in
            try await d.addUser("ana", pin: "2468")
            let (c, _) = try await d.session(device: "HH-1", token: token)
            let jane = try #require(try await c.login("jane", pin: "4821")["ticket"] as? String)
            let ana = try #require(try await c.login("ana", pin: "2468")["ticket"] as? String)
            try c.send(json: Self.batch("before", ticket: jane))
            #expect(try await c.readJSON()["op"] as? String == "ack")

            #expect(try await d.ctl(["user", "set-pin", "jane"], stdin: "9753\n").status == 0)
            try c.send(json: Self.batch("after-pin", ticket: jane))
            #expect(Self.loginRequiredSeqs(try await c.readJSON()) == [1])

            #expect(try await d.ctl(["user", "disable", "ana"]).status == 0)
            try c.send(json: Self.batch("after-disable", user: "ana", ticket: ana))
            let refused = try await c.readJSON()
            #expect(refused["op"] as? String == "nack" && refused["code"] as? String == "inactive_user", "\(refused)")
            let store = try DatabaseQueue(path: d.directory.file("state/outlawd.sqlite"))
            let ended = try await store.read { db in
                try String.fetchAll(db, sql: "SELECT ended_why FROM login_tickets WHERE ended_at IS NOT NULL ORDER BY id")
            }
            #expect(ended == ["PIN changed", "user disabled"])
            // A new login with the new PIN proves jane again.
            let fresh = try #require(try await c.login("jane", pin: "9753")["ticket"] as? String)
            try c.send(json: Self.batch("after-login", ticket: fresh))
            #expect(try await c.readJSON()["op"] as? String == "ack")
            #expect(await d.stop() == 0)
        }
    }

    @Test func eventsOutsideTheTicketsSpanAreNamedAndAResendWithANewerTicketIsADuplicate() async throws {
        try await Self.withDaemon(server: "login_ticket_hours = 1") { d, token, _ in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            let first = try #require(try await c.login("jane", pin: "4821")["ticket"] as? String)
            // Seq 2 was collected an hour before the login (past the 10 minutes of clock skew), seq 3 after it expires.
            let events = [Self.move(seq: 1), Self.move(seq: 2, at: Self.now(-3600)), Self.move(seq: 3, at: Self.now(2 * 3600)),
                          Self.move(seq: 4, at: Self.now(-9 * 60))]
            try c.send(json: Self.batch("span", ticket: first, events: events))
            #expect(Self.loginRequiredSeqs(try await c.readJSON()) == [2, 3])

            let batch = Self.batch("resend", ticket: first, events: [Self.move(seq: 1), Self.move(seq: 2, at: Self.now(-9 * 60))])
            try c.send(json: batch)
            let stored = try await c.readJSON()
            #expect(stored["op"] as? String == "ack" && stored["duplicate"] as? Bool == false, "\(stored)")
            let newer = try #require(try await c.login("jane", pin: "4821")["ticket"] as? String)
            #expect(newer != first)
            var again = batch
            again["ticket"] = newer
            try c.send(json: again)
            let duplicate = try await c.readJSON()
            #expect(duplicate["op"] as? String == "ack" && duplicate["duplicate"] as? Bool == true, "\(duplicate)")
            #expect(await d.stop() == 0)
        }
    }

    // MARK: Brute force

    @Test func sixtyConcurrentPINGuessesCheckAtMostFive() async throws {
        try await Self.withDaemon { d, token, _ in
            // 60 connections of one device, each guessing a different PIN for jane at once; the right one among them.
            var clients: [LineClient] = []
            for _ in 0..<60 {
                let (c, welcome) = try await d.session(device: "HH-1", token: token)
                #expect(welcome["op"] as? String == "welcome")
                clients.append(c)
            }
            let pins = (0..<60).map { i in i == 37 ? "4821" : String(format: "%04d", 5000 + i) }
            for (c, pin) in zip(clients, pins) { try c.send(json: ["op": "login", "user": "jane", "pin": pin]) }
            var codes: [String] = []
            for c in clients {
                c.setTimeout(120)
                let answer = try await c.readJSON()
                codes.append(answer["ok"] as? Bool == true ? "ok" : answer["code"] as? String ?? "?")
            }
            let checked = codes.filter { $0 == "bad_credentials" || $0 == "ok" }.count
            #expect(checked <= 5, "PINs checked: \(codes)")
            #expect(codes.filter { $0 == "locked" }.count >= 55, "\(codes)")
            // Locked for everyone now, the right PIN included.
            let (late, _) = try await d.session(device: "HH-3", token: try await d.addDevice("HH-3"))
            let answer = try await late.login("jane", pin: "4821")
            #expect(answer["code"] as? String == "locked", "\(answer)")
            #expect(await d.stop() == 0)
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/run/systemd/journal/socket"), "needs journald (scripts/test starts one)"))
    func failedLoginsAndLocksAreJournalLinesWithoutThePIN() async throws {
        try await Self.withDaemonLoggingToJournal { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            for i in 0..<5 { _ = try await c.login("jane", pin: "77\(i)7") }
            _ = try await c.login("jane", pin: "4821")
            let pid = d.pid
            var entries: [[String: Any]] = []
            func loginLines() async throws -> [[String: Any]] {
                let out = try await runCommand("/usr/bin/journalctl", ["--no-pager", "-o", "json", "_PID=\(pid)"])
                return out.stdout.split(separator: "\n").compactMap {
                    (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
                }.filter { ($0["MESSAGE"] as? String ?? "").contains("login") || ($0["MESSAGE"] as? String ?? "").contains("locked") }
            }
            // 5 wrong PINs, the lock, the locked answer: 7 lines.
            entries = try await eventually { () -> [[String: Any]]? in
                let lines = try await loginLines()
                return lines.count >= 7 ? lines : nil
            } ?? []
            if entries.count < 7 { entries = try await loginLines() }
            let refused = entries.filter { ($0["MESSAGE"] as? String)?.hasPrefix("login refused: wrong PIN") == true }
            let locks = entries.filter { ($0["MESSAGE"] as? String)?.hasPrefix("user name locked") == true }
            let lockedAnswers = entries.filter { ($0["MESSAGE"] as? String)?.hasPrefix("login refused: the user name is locked") == true }
            #expect(refused.count == 5 && locks.count == 1 && lockedAnswers.count == 1, "\(entries.map { $0["MESSAGE"] ?? "" })")
            for entry in refused + locks {
                #expect(entry["PRIORITY"] as? String == "5", "notice")
                #expect(entry["DEVICE"] as? String == "HH-1" && entry["OUTLAW_USER"] as? String == "jane", "\(entry)")
                #expect((entry["REMOTE"] as? String)?.hasPrefix("127.0.0.1:") == true, "\(entry)")
            }
            // Our fields only (journald's own, `_`-prefixed, hold timestamps, cursors and ids whose digits may contain
            // any four by chance), and the PINs as whole numbers: a PIN in a line stands apart from other digits.
            let ours = entries.flatMap { entry in entry.filter { !$0.key.hasPrefix("_") }.map { "\($0.key)=\($0.value)" } }
            for pin in ["4821", "7707"] {
                let leaked = ours.filter { $0.range(of: "(^|[^0-9])\(pin)([^0-9]|$)", options: .regularExpression) != nil }
                #expect(leaked.isEmpty, "the PIN \(pin) in \(leaked)")
            }
            #expect(await d.stop() == 0)
        }
    }

    static func withDaemonLoggingToJournal(_ body: (DaemonProcess, String) async throws -> Void) async throws {
        try await DaemonProcess.withCrew(server: "require_login_ticket = true", environment: ["OUTLAWD_LOG_TARGET": "journal"],
                                         users: [.jane]) { d, crew in
            try await body(d, crew.token)
        }
    }

    // MARK: Memory and slots

    /// Sends `line` over and over without reading an answer, until the daemon stops reading (a send blocks for 2 s)
    /// or `limit` bytes are sent; returns the bytes sent.
    static func flood(_ c: LineClient, line: String, limit: Int) -> Int {
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let chunk = Array(String(repeating: line + "\n", count: max(1, 65536 / (line.utf8.count + 1))).utf8)
        var sent = 0
        while sent < limit {
            let n = chunk.withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        return sent
    }

    static func peakRSSMiB(_ pid: Int32) throws -> Double {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        return kib / 1024
    }

    @Test(arguments: ["ping", "status"])
    func aFloodOfUnreadAnswersStopsTheReaderNotTheMemory(op: String) async throws {
        try await Self.withDaemon { d, token, _ in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            let line = op == "ping" ? #"{"op":"ping"}"# : #"{"op":"status","ids":[\#((0..<1000).map { "\"b-\($0)\"" }.joined(separator: ","))]}"#
            let before = try Self.peakRSSMiB(d.pid)
            let sent = try await offload { Self.flood(c, line: line, limit: 1 << 30) }
            let peak = try Self.peakRSSMiB(d.pid)
            // The daemon stopped reading long before 1 GB: what was sent sits in the two kernels' buffers.
            #expect(sent < 64 << 20, "sent \(sent) bytes of \(op) before the daemon stopped reading")
            #expect(peak < 128, "peak RSS \(peak) MiB (was \(before) MiB before the flood)")
            // Other devices are served meanwhile.
            let (other, welcome) = try await d.session(device: "HH-9", token: try await d.addDevice("HH-9"))
            #expect(welcome["op"] as? String == "welcome")
            try other.send(json: ["op": "ping"])
            #expect(try await other.readJSON()["op"] as? String == "pong")
            #expect(await d.stop() == 0)
        }
    }

    @Test func idleSocketsBeforeHelloCannotKeepARealHandheldOut() async throws {
        try await Self.withDaemon(server: "hello_timeout_seconds = 60") { d, token, _ in
            // 100 sockets from one address that never say hello: 16 are let in to wait, the rest refused at once.
            var idle: [LineClient] = []
            for _ in 0..<100 { idle.append(try d.client(timeout: 10)) }
            // Which 84 is up to the order the daemon's tasks run in: poll every socket until 84 have their answer.
            var refused = Set<Int>()
            let all84 = try await eventually { () -> Bool? in
                for (i, c) in idle.enumerated() where !refused.contains(i) {
                    c.setTimeout(0.01)
                    if let line = try? await c.readLine(), line.contains(#""code":"busy""#) { refused.insert(i) }
                }
                return refused.count >= 84 ? true : nil
            }
            #expect(all84 == true && refused.count == 84, "\(refused.count) refused")
            // A handheld elsewhere on the network (another address) is served while the 16 still wait.
            let handheld = try LineClient(port: d.port, timeout: 10, source: "127.0.0.2")
            try handheld.send(json: ["op": "hello", "proto": 1, "device": "HH-1", "token": token])
            #expect(try await handheld.readJSON()["op"] as? String == "welcome")
            // Its own address stays capped while the 16 wait; once they are gone, it is served again.
            let (_, capped) = try await d.session(device: "HH-1", token: token)
            #expect(capped["code"] as? String == "busy", "\(capped)")
            idle.removeAll()
            let served = try await eventually { () -> Bool? in
                let (_, welcome) = try await d.session(device: "HH-1", token: token)
                return welcome["op"] as? String == "welcome" ? true : nil
            }
            #expect(served == true)
            #expect(await d.stop() == 0)
        }
    }

    @Test func handheldsSharingOneAddressAreAllWelcomedAtOnceAndTheDaemonStillStops() async throws {
        // 32 handhelds behind one NAT address reconnect together after a restart. Counting their running hellos as
        // failures spaced them 1, 3, 7, 15 … s apart: most met their hello timeout, and a stop waited for the sleepers.
        try await DaemonProcess.withCrew(server: "max_unauthenticated_per_address = 64\nhello_timeout_seconds = 5",
                                         devices: (0..<32).map { "HH-\($0)" }, users: []) { d, crew in
            let tokens = crew.devices.map { crew.token($0) }
            var clients: [LineClient] = []
            for i in 0..<32 {
                let c = try d.client(timeout: 20)
                try c.send(json: ["op": "hello", "proto": 1, "device": "HH-\(i)", "token": tokens[i]])
                clients.append(c)
            }
            var answers: [String] = []
            for c in clients { answers.append((try? await c.readJSON())?["op"] as? String ?? "nothing") }
            #expect(answers.filter { $0 == "welcome" }.count == 32, "\(answers)")
            #expect(await d.stop() == 0)
        }
    }

    // MARK: Names before anything logs, stores or counts them

    @Test func longNamesAreNeitherLoggedWholeNorStored() async throws {
        try await Self.withDaemon { d, token, _ in
            let huge = String(repeating: "x", count: 400_000)
            let c = try d.client()
            try c.send(json: ["op": "hello", "proto": 1, "device": huge, "token": token])
            #expect(try await c.readJSON()["code"] as? String == "unauthorized")

            let (s, _) = try await d.session(device: "HH-1", token: token)
            for _ in 0..<6 {
                let answer = try await s.login(huge, pin: "1234")
                #expect(answer["code"] as? String == "bad_credentials")
            }
            try s.send(json: Self.batch("long-user", user: huge))
            let nack = try await s.readJSON()
            #expect(nack["code"] as? String == "bad_batch", "\(nack["message"] ?? "")")
            #expect(await d.stop() == 0)

            let longest = d.log.split(separator: "\n").map(\.utf8.count).max() ?? 0
            #expect(longest < 2000, "a log line of \(longest) bytes")
            #expect(d.log.contains("(400000 bytes)"))
            let store = try DatabaseQueue(path: d.directory.file("state/outlawd.sqlite"))
            let kept = try await store.read { db in
                try Int.fetchOne(db, sql: """
                    SELECT (SELECT COUNT(*) FROM login_failures WHERE length(user_name) > 64)
                         + (SELECT COUNT(*) FROM login_locks WHERE length(user_name) > 64)
                         + (SELECT COUNT(*) FROM audit WHERE length(subject) > 200 OR length(actor) > 200)
                    """) ?? -1
            }
            #expect(kept == 0)
        }
    }

    // MARK: No clear text by default

    /// outlawd with `toml` as its whole configuration: its exit status and what it printed.
    static func start(_ toml: String) async throws -> CommandResult {
        let dir = try TempDirectory("outlawd-hostile")
        let path = try dir.write("outlawd.toml", toml)
        return try await runCommand(Binaries.path("outlawd"), ["--config", path, "--log-target", "stderr"])
    }

    @Test func plainHTTPToMetrcBeyondThisMachineIsAConfigurationError() async throws {
        let r = try await Self.start("[store]\npath = \"s.sqlite\"\n[metrc]\nbase_url = \"http://10.20.30.40:8090\"\n")
        #expect(r.status == 2)
        #expect(r.stderr.contains("metrc.base_url: must be https://"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test func plainTCPOnANetworkAddressNeedsTheOperatorsExplicitChoice() async throws {
        let r = try await Self.start("[server]\nlisten = \"0.0.0.0:0\"\n[store]\npath = \"s.sqlite\"\n")
        #expect(r.status == 2)
        #expect(r.stderr.contains("server.allow_plaintext"), "\(r.stderr)")
    }

    @Test func tls10And11HandshakesAreRefused() async throws {
        let dir = try TempDirectory("outlawd-tls-versions")
        let made = try await runCommand("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("key.pem"), "-out", dir.file("cert.pem"),
            "-days", "2", "-subj", "/CN=outlawd-test",
        ])
        try #require(made.status == 0, "\(made.stderr)")
        let d = try await DaemonProcess(server: """
            tls_certificate_file = "\(dir.file("cert.pem"))"
            tls_key_file = "\(dir.file("key.pem"))"
            """)
        try await d.whileRunning { d in
            func handshake(_ version: String) async throws -> CommandResult {
                // SECLEVEL=0: the client itself would refuse TLS 1.0 and 1.1 otherwise, and prove nothing of the server.
                try await runCommand("/usr/bin/openssl", ["s_client", "-\(version)", "-cipher", "DEFAULT:@SECLEVEL=0",
                                                          "-connect", "127.0.0.1:\(d.port)"], stdin: "")
            }
            let modern = try await handshake("tls1_2")
            #expect(modern.stdout.contains("Protocol  : TLSv1.2") || modern.stdout.contains("TLSv1.2"), "\(modern.stdout)")
            for old in ["tls1", "tls1_1"] {
                let r = try await handshake(old)
                #expect(r.status != 0, "\(old) negotiated: \(r.stdout)")
                // A handshake that completed would show the server's certificate.
                #expect(!r.stdout.contains("Server certificate") && r.stdout.contains("Cipher is (NONE)"), "\(r.stdout)")
            }
            #expect(await d.stop() == 0)
        }
    }

    // MARK: The store's files

    @Test func outlawctlRefusesASymlinkedWALAndChangesNothingThroughIt() async throws {
        try await Self.withDaemon { d, _, _ in
            #expect(await d.stop() == 0)
            let wal = d.directory.file("state/outlawd.sqlite-wal")
            try? FileManager.default.removeItem(atPath: wal)
            let victim = try d.directory.write("victim", "not the store's\n")
            chmod(victim, 0o644)
            try FileManager.default.createSymbolicLink(atPath: wal, withDestinationPath: victim)
            let r = try await d.ctl(["status"])
            #expect(r.status != 0)
            #expect(r.stderr.contains("not a plain file"), "\(r.stderr)")
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: victim)[.posixPermissions] as? Int)
            #expect(mode == 0o644)
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == "not the store's\n")
        }
    }
}
