import DeviceServer
import Foundation
import Logging
import OutlawProtocol
import OutlawStore
import OutlawTestSupport
import Synchronization
import Testing

/// A DeviceServer in this process, on a free port over real TCP, with a temp store holding device HH-1 and user jane.
final class InProcessDeviceServer: Sendable {
    let directory: TempDirectory
    let store: Store
    let token: String
    let port: Int
    private let task: Task<Void, any Error>

    /// `pullHandler` is built with the server's store.
    init(pullHandler: (Store) -> PullHandler? = { _ in nil }) async throws {
        directory = try TempDirectory("outlawd-session")
        store = try Store(path: directory.file("store.sqlite"), pinRounds: 1000)
        token = try store.addDevice(name: "HH-1", actor: "test")
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let services = DeviceServices(store: store, writer: BatchWriter(store: store, minFreeBytes: 0),
                                      pullHandler: pullHandler(store))
        var configuration = DeviceServerConfiguration(listener: .address(host: "127.0.0.1", port: 0))
        // These sessions test framing, order and back-pressure with batches collected at fixed past times.
        configuration.requireLoginTicket = false
        let server = DeviceServer(configuration: configuration,
                                  services: services, logger: Logger(label: "device-session-tests") { _ in SwiftLogNoOpLogHandler() })
        task = Task { try await server.run() }
        var ports = server.listeningPorts.makeAsyncIterator()
        port = await ports.next() ?? 0
    }

    /// Connects and says hello; returns the client once the welcome is read.
    func session() async throws -> LineClient {
        // The server shares this process's two cooperative threads with every test running beside it: the read
        // timeout is a safety net for a hung server, not a speed test.
        let c = try LineClient(port: port, timeout: 60)
        try c.send(json: ["op": "hello", "proto": 1, "device": "HH-1", "token": token])
        let welcome = try await c.readJSON()
        guard welcome["op"] as? String == "welcome" else { throw LineClient.Failure(description: "no welcome: \(welcome)") }
        return c
    }

    deinit { task.cancel() }
}

/// A count the pull handler bumps and the test reads.
final class SentLines: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func add() { count.withLock { $0 += 1 } }
}

/// What `sendsFailOnceTheDeviceIsGone` learns from its handler.
final class SinkProbe: Sendable {
    private let state = Mutex<(kept: PullSink?, outcome: (sent: Int, failedAgain: Bool)?)>((nil, nil))
    var kept: PullSink? { state.withLock { $0.kept } }
    var outcome: (sent: Int, failedAgain: Bool)? { state.withLock { $0.outcome } }
    func keep(_ sink: PullSink) { state.withLock { $0.kept = sink } }
    func finish(sent: Int, failedAgain: Bool) { state.withLock { $0.outcome = (sent, failedAgain) } }
}

/// The device session's answer stream and its close: streamed `pull` answers in request order and under TCP
/// back-pressure (an in-process server), and closes that lose no answer (the real daemon, stopped by SIGTERM).
@Suite("Device sessions: streamed pull and graceful close", .serialized, .timeLimit(.minutes(5)))
struct DeviceSessionTests {
    /// Caps the device's receive buffer at 64 KiB (the kernel doubles it) and stops autotuning from growing it, so
    /// "more than the buffers hold" means a few MB, whatever tcp_rmem allows.
    static func pinReceiveBuffer(_ c: LineClient) {
        var size: Int32 = 64 * 1024
        _ = setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    static func batchLine(_ id: String) -> [String: Any] {
        DeviceProtocolTests.batch(id)
    }

    @Test func streamedPullIsAnsweredInRequestOrder() async throws {
        let server = try await InProcessDeviceServer { store in { request, sink in
            // Runs only once every earlier request's work is done: the batch before it is already stored.
            let seen = (try? store.batches(BatchFilter()).map(\.id)) ?? []
            for page in 0..<3 {
                do {
                    try await sink.send(Reply(op: "data", [("kind", .string(request.kinds?.first.flatMap { $0 } ?? "?")),
                                                           ("items", .array([.number(Double(page))]))]))
                } catch {
                    return .error(.unavailable, "gone")
                }
            }
            return Reply(op: "pulled", [("cursor", "c-1"), ("seen", .array(seen.map { .string($0) }))])
        } }
        let c = try await server.session()
        // Everything pipelined before reading anything.
        try c.send(json: Self.batchLine("before-pull"))
        try c.send(json: ["op": "pull", "kinds": ["plants"]])
        try c.send(json: ["op": "ping"])
        try c.send(json: Self.batchLine("after-pull"))
        try c.send(json: ["op": "pull", "kinds": ["strains"]])
        try c.send(json: ["op": "bye"])
        let (lines, reset) = try await c.readToEnd()
        #expect(!reset)
        let answers = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let summary = answers.map { m -> String in
            let op = m["op"] as? String ?? "?"
            switch op {
            case "ack": return "ack:\(m["id"] as? String ?? "?")"
            case "data": return "data:\(m["kind"] as? String ?? "?"):\((m["items"] as? [Int])?.first ?? -1)"
            default: return op
            }
        }
        #expect(summary == ["ack:before-pull", "data:plants:0", "data:plants:1", "data:plants:2", "pulled", "pong",
                            "ack:after-pull", "data:strains:0", "data:strains:1", "data:strains:2", "pulled", "bye"])
        let pulled = answers.filter { $0["op"] as? String == "pulled" }
        // Each pull saw every batch sent before it stored (a batch sent after it may be stored already too:
        // batches start as soon as they are read).
        #expect((pulled.first?["seen"] as? [String])?.contains("before-pull") == true)
        #expect(Set(pulled.last?["seen"] as? [String] ?? []) == ["before-pull", "after-pull"])
    }

    @Test func pullWithoutAHandlerIsUnavailable() async throws {
        let server = try await InProcessDeviceServer()
        let c = try await server.session()
        try c.send(json: ["op": "pull", "kinds": ["plants"]])
        try c.send(json: ["op": "ping"])
        let e = try await c.readJSON()
        #expect(e["op"] as? String == "error" && e["code"] as? String == "unavailable")
        #expect(try await c.readJSON()["op"] as? String == "pong")
    }

    /// The device goes away in the middle of a streamed answer: the send that finds the connection gone throws,
    /// and so does every later one, so the handler stops; a sink kept after its handler returned throws too.
    @Test func sendsFailOnceTheDeviceIsGone() async throws {
        let probe = SinkProbe()
        let server = try await InProcessDeviceServer { _ in { request, sink in
            if request.kinds == ["kept"] {
                probe.keep(sink)
                return Reply(op: "pulled", [("cursor", "c-kept")])
            }
            var sent = 0
            while true {
                do {
                    try await sink.send(Reply(op: "data", [("kind", "plants"), ("n", .number(Double(sent)))]))
                    sent += 1
                } catch {
                    break
                }
            }
            // The connection is gone: the next send fails at once, it does not write.
            let again: Bool
            do {
                try await sink.send(Reply(op: "data", [("kind", "plants")]))
                again = false
            } catch {
                again = true
            }
            probe.finish(sent: sent, failedAgain: again)
            return Reply(op: "pulled", [("cursor", "c-gone")])
        } }
        let kept = try await server.session()
        try kept.send(json: ["op": "pull", "kinds": ["kept"]])
        #expect(try await kept.readJSON()["op"] as? String == "pulled")
        await #expect(throws: (any Error).self) { try await probe.kept?.send(Reply(op: "data")) }
        try kept.send(json: ["op": "ping"])
        #expect(try await kept.readJSON()["op"] as? String == "pong")

        do {
            let c = try await server.session()
            try c.send(json: ["op": "pull", "kinds": ["plants"]])
            _ = try await c.skipLines(10)
        }  // closed here, with lines unread
        let outcome = try await eventually("the handler to see the connection go", timeout: .seconds(10)) { probe.outcome }
        #expect(outcome.sent >= 10)
        #expect(outcome.failedAgain)
    }

    /// 30,000 lines of about 1 KB (30 MB) to a device that does not read: the handler's sends must stop (suspended
    /// by back-pressure) well below that, and go on once the device reads. The device's receive buffer is pinned to
    /// 64 KiB; the sender's socket buffer grows to `tcp_wmem`'s maximum (4 MB here). Loaded CI runs once saw 10 to
    /// 23 MB sent: not in the kernels but in the daemon, run ahead of its event loop, which the sink now waits for.
    @Test func aSlowReaderHoldsTheStreamBack() async throws {
        let total = 30_000
        let sent = SentLines()
        let filler = String(repeating: "x", count: 1000)
        let handler: PullHandler = { _, sink in
            for i in 0..<total {
                do {
                    // Preformatted, as the store's pages are: building 100 MB of JSON would time the encoder instead.
                    try await sink.send(Reply(op: "data", preformattedLine: #"{"op":"data","kind":"plants","n":\#(i),"items":["\#(filler)"]}"#))
                } catch {
                    return .error(.unavailable, "gone")
                }
                sent.add()
            }
            return Reply(op: "pulled", [("cursor", "c-big")])
        }
        let server = try await InProcessDeviceServer { _ in handler }
        let c = try await server.session()
        Self.pinReceiveBuffer(c)
        try c.send(json: ["op": "pull", "kinds": ["plants"]])
        // Wait until the handler stops making progress (the socket buffers and the channel's are full): the same
        // count six looks running (1.5 s), so a handler merely slowed by a busy machine does not pass for stalled.
        var last = -1, unchanged = 0
        let stalled = try await eventually("the handler to stall", timeout: .seconds(30), every: .milliseconds(300)) { () -> Int? in
            let now = sent.value
            unchanged = now == last && now > 0 ? unchanged + 1 : 0
            last = now
            return unchanged >= 5 ? now : nil
        }
        // Nothing was read: what was sent sits in the kernel's buffers and at most one channel high-water mark.
        #expect(stalled > 0)
        #expect(stalled < total / 3, "sent \(stalled) of \(total) lines to a device that read none")
        // Once the device reads, the rest follows, in order, then the final line.
        let lastData = try await c.skipLines(total)
        #expect(lastData.contains("\"n\":\(total - 1)"))
        let pulled = try await c.readJSON()
        #expect(pulled["op"] as? String == "pulled")
        #expect(sent.value == total)
        try c.send(json: ["op": "ping"])
        #expect(try await c.readJSON()["op"] as? String == "pong")
    }

    /// A long answer (12 MB, more than the socket buffers hold: sends stall at 4 to 8 MB), then `bye`, to a device
    /// that reads late and has sent lines after its `bye`: the tail of the answer and the `bye` must still arrive,
    /// and no reset.
    @Test func aLongAnswerThenByeReachesALateReader() async throws {
        let total = 12_000
        let filler = String(repeating: "z", count: 1000)
        let server = try await InProcessDeviceServer { _ in { _, sink in
            for i in 0..<total {
                do {
                    try await sink.send(Reply(op: "data", preformattedLine: #"{"op":"data","kind":"plants","n":\#(i),"items":["\#(filler)"]}"#))
                } catch {
                    return .error(.unavailable, "gone")
                }
            }
            return Reply(op: "pulled", [("cursor", "c-late")])
        } }
        let c = try await server.session()
        Self.pinReceiveBuffer(c)
        try c.send(json: ["op": "pull", "kinds": ["plants"]])
        try c.send(json: ["op": "bye"])
        for i in 0..<100 { try c.send(json: Self.batchLine("after-bye-\(i)")) }
        // Paces the scenario, checks nothing: the device reads late, once the answer has filled the buffers.
        try await Task.sleep(for: .milliseconds(500))
        let lastData = try await c.skipLines(total)
        #expect(lastData.contains("\"n\":\(total - 1)"))
        let (lines, reset) = try await c.readToEnd()
        #expect(!reset)
        #expect(lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["op"] as? String }
            == ["pulled", "bye"])
    }

    /// The daemon stops (SIGTERM) while the device has acks it has not read and has written batches the daemon
    /// has not read. Every ack of a stored batch and `bye` must reach the device, with no reset; every batch
    /// acked is stored, and nothing else.
    @Test func stoppingLosesNoAck() async throws {
        try await DeviceProtocolTests.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            let total = 5000
            let pid = d.pid
            // The device keeps sending small batches without reading; the daemon is stopped a little way in.
            // Built beforehand, so the device writes as fast as its socket takes them (a slow writer could outlast
            // the daemon's drain limit, as a device that goes on writing long after `bye` does).
            let lines = try (0..<total).map { Array(try JSONSerialization.data(withJSONObject: Self.batchLine("s-\($0)"), options: [.sortedKeys])) + [10] }
            let head = Array(lines[..<200].joined()), tail = Array(lines[200...].joined())
            async let sending: (count: Int, failure: String?) = offload {
                do {
                    try c.sendRaw(head)
                } catch {
                    return (0, "\(error)")
                }
                kill(pid, SIGTERM)
                do {
                    try c.sendRaw(tail)
                } catch {
                    return (200, "\(error)")
                }
                return (total, nil)
            }
            let sent = try await sending
            let (answered, reset) = try await c.readToEnd()
            #expect(await d.stop() == 0)
            // A reset on either side means the daemon closed with input unread: what it had sent could be lost.
            #expect(sent.failure == nil, "the device's writes failed after \(sent.count) batches: \(sent.failure ?? "")")
            #expect(!reset, "the daemon reset the connection after \(answered.count) lines")
            let answers = answered.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(answers.last?["op"] as? String == "bye")
            let acks = answers.filter { $0["op"] as? String == "ack" }
            let acked = acks.compactMap { $0["id"] as? String }
            #expect(acks.count == answers.count - 1, "\(answers.filter { $0["op"] as? String != "ack" })")
            #expect(acked == (0..<acked.count).map { "s-\($0)" })
            // The daemon stopped reading before the device stopped writing, so there was unread input to drain.
            #expect(acked.count > 0 && acked.count < total)
            let listed = try await d.ctl(["batches", "--json"])
            let stored = (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(Set(stored) == Set(acked))
        }
    }

    /// `bye` in the middle of pipelined batches: the batches before it are acked, then `bye`, then a clean close,
    /// however many lines follow it unread.
    @Test func byeLosesNoAckWhatEverFollows() async throws {
        try await DeviceProtocolTests.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            var burst: [UInt8] = []
            for i in 0..<16 {
                burst += Array(try JSONSerialization.data(withJSONObject: Self.batchLine("b-\(i)"), options: [.sortedKeys])) + [10]
            }
            burst += Array(#"{"op":"bye"}"#.utf8) + [10]
            for i in 0..<2000 {
                burst += Array(try JSONSerialization.data(withJSONObject: Self.batchLine("late-\(i)"), options: [.sortedKeys])) + [10]
            }
            let bytes = burst
            try await offload { try c.sendRaw(bytes) }
            let (lines, reset) = try await c.readToEnd()
            #expect(!reset, "the daemon reset the connection after \(lines.count) lines")
            let ops = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]).flatMap { m in
                m["op"] as? String == "ack" ? "ack:\(m["id"] as? String ?? "?")" : m["op"] as? String
            } }
            #expect(ops == (0..<16).map { "ack:b-\($0)" } + ["bye"])
            let listed = try await d.ctl(["batches", "--json"])
            #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any])?.count == 16)
        }
    }

    /// The error paths that close answer, then close as gently: a line too long with more input behind it.
    @Test func lineTooLongLosesNoAnswer() async throws {
        try await DeviceProtocolTests.withDaemon(server: "max_line_bytes = 1024") { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            var burst = Array(try JSONSerialization.data(withJSONObject: Self.batchLine("ok-1"), options: [.sortedKeys])) + [10]
            burst += Array(repeating: UInt8(ascii: "x"), count: 2000) + [10]
            burst += Array(repeating: UInt8(ascii: "y"), count: 500_000)
            let bytes = burst
            try await offload { try c.sendRaw(bytes) }
            let (lines, reset) = try await c.readToEnd()
            #expect(!reset)
            let answers = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(answers.map { $0["op"] as? String } == ["ack", "error"])
            #expect(answers.last?["code"] as? String == "line_too_long")
        }
    }

    /// A handheld that pipelines its batches right behind a `hello` that is refused gets the refusal, then a
    /// clean close, rather than a reset that may swallow it.
    @Test func aRefusedHelloWithBatchesBehindItIsAnswered() async throws {
        try await DeviceProtocolTests.withDaemon { d, _ in
            let c = try d.client()
            var burst = Array(#"{"op":"hello","proto":1,"device":"HH-1","token":"wrong"}"#.utf8) + [10]
            for i in 0..<2000 {
                burst += Array(try JSONSerialization.data(withJSONObject: Self.batchLine("early-\(i)"), options: [.sortedKeys])) + [10]
            }
            let bytes = burst
            try await offload { try c.sendRaw(bytes) }
            let (lines, reset) = try await c.readToEnd()
            #expect(!reset, "the daemon reset the connection after \(lines.count) lines")
            let answers = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(answers.map { $0["code"] as? String } == ["unauthorized"])
        }
    }

    /// A device that half-closes after its requests (no bye) still gets every answer, then the close.
    @Test func aHalfClosingDeviceGetsEveryAnswer() async throws {
        try await DeviceProtocolTests.withDaemon { d, token in
            let (c, _) = try await d.session(device: "HH-1", token: token)
            for i in 0..<5 { try c.send(json: Self.batchLine("h-\(i)")) }
            try c.send(json: ["op": "ping"])
            c.shutdownWrite()
            let (lines, reset) = try await c.readToEnd()
            #expect(!reset)
            let ops = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["op"] as? String }
            #expect(ops == Array(repeating: "ack", count: 5) + ["pong"])
        }
    }
}
