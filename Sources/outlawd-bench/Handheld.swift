import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one handheld process was asked to do (`outlawd-bench handheld ...`, started by the bench itself).
struct HandheldPlan: Sendable {
    enum Mode: String, Sendable { case flat, paced }

    var port = 0
    var device = ""
    var token = ""
    var index = 0
    var mode = Mode.flat
    var eventsPerBatch = 500
    /// Batches in flight at most (the daemon's `window`).
    var window = 16
    /// Paced: batches a second.
    var batchesPerSecond = 5.0
    /// Paced: when in the first interval this handheld sends (0..<1), so 50 handhelds do not send in step.
    var phase = 0.0
    /// Wall-clock time (Unix seconds) at which every handheld's measured run starts.
    var startAt = 0.0
    var seconds = 20.0
    /// Paced: seconds of sending at the same pace before `startAt`, not counted (first batches on a fresh daemon and
    /// connection are slower than the steady state the targets are about).
    var warmup = 0.0
    var plants = 5000
    var packages = 2000
    /// Prefix of every batch id (the phase of the run).
    var idPrefix = "b"

    var arguments: [String] {
        ["handheld", "--port", String(port), "--device", device, "--token", token, "--index", String(index), "--mode", mode.rawValue,
         "--events", String(eventsPerBatch), "--window", String(window), "--rate", String(batchesPerSecond), "--phase", String(phase),
         "--start-at", String(startAt), "--seconds", String(seconds), "--warmup", String(warmup), "--plants", String(plants), "--packages", String(packages),
         "--id-prefix", idPrefix]
    }

    init() {}

    /// A paced plan of the bench's options: `eventsPerSecond` each handheld, in batches of `pacedEventsPerBatch`.
    static func paced(_ options: BenchOptions, eventsPerSecond: Int, idPrefix: String) -> HandheldPlan {
        var plan = HandheldPlan()
        plan.mode = .paced
        plan.seconds = options.seconds
        plan.warmup = options.warmup
        plan.plants = options.plants
        plan.packages = options.packages
        plan.window = options.window
        plan.eventsPerBatch = options.pacedEventsPerBatch
        plan.batchesPerSecond = Double(eventsPerSecond) / Double(options.pacedEventsPerBatch)
        plan.idPrefix = idPrefix
        return plan
    }

    init(arguments: [String]) throws {
        var i = 1
        func value() throws -> String {
            guard i + 1 < arguments.count else { throw BenchError("handheld: \(arguments[i]) needs a value") }
            i += 1
            return arguments[i]
        }
        func number<T: LosslessStringConvertible>(_ text: String) throws -> T {
            guard let v = T(text) else { throw BenchError("handheld: not a number: \(text)") }
            return v
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--port": port = try number(try value())
            case "--device": device = try value()
            case "--token": token = try value()
            case "--index": index = try number(try value())
            case "--mode":
                guard let m = Mode(rawValue: try value()) else { throw BenchError("handheld: --mode is flat or paced") }
                mode = m
            case "--events": eventsPerBatch = try number(try value())
            case "--window": window = try number(try value())
            case "--rate": batchesPerSecond = try number(try value())
            case "--phase": phase = try number(try value())
            case "--start-at": startAt = try number(try value())
            case "--seconds": seconds = try number(try value())
            case "--warmup": warmup = try number(try value())
            case "--plants": plants = try number(try value())
            case "--packages": packages = try number(try value())
            case "--id-prefix": idPrefix = try value()
            default: throw BenchError("handheld: unknown argument \(arguments[i])")
            }
            i += 1
        }
    }
}

/// The JSON line a handheld prints on stdout when it is done.
struct HandheldSummary: Codable, Sendable {
    var device: String
    /// How late the handheld was ready for the common start (0: it was waiting).
    var lateStartMs: Double = 0
    /// Paced: events due to be sent during the run (sent or not); flat: events sent during the run.
    var offeredEvents = 0
    var sentBatches = 0
    var sentEvents = 0
    var ackedBatches = 0
    var ackedEvents = 0
    /// When the last `ack` came, in seconds after the common start.
    var lastAckSeconds = 0.0
    var nacks = 0
    /// Batches sent during the warm-up and acknowledged (not in any other figure).
    var warmupBatches = 0
    var errors: [String] = []
    /// Per acknowledged batch, from when it was due (paced) or sent (flat) to its `ack`, in milliseconds.
    var latenciesMs: [Double] = []
}

/// One handheld: its own TCP connection, `hello`, then batches pipelined up to the window, flat out or at a pace.
/// Blocking sockets and `poll`, one thread, so the process costs the machine little besides building batches.
enum Handheld {
    static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func run(_ plan: HandheldPlan) -> HandheldSummary {
        var summary = HandheldSummary(device: plan.device)
        do {
            try drive(plan, &summary)
        } catch {
            summary.errors.append("\(error)")
        }
        return summary
    }

    static func drive(_ plan: HandheldPlan, _ summary: inout HandheldSummary) throws {
        let link = try Link(port: plan.port)
        try link.send(Array((#"{"op":"hello","proto":1,"device":"\#(plan.device)","token":"\#(plan.token)","firmware":"outlawd-bench"}"# + "\n").utf8))
        guard let welcome = try link.readLine(timeout: 30) else { throw BenchError("\(plan.device): no welcome") }
        guard welcome.hasPrefix(#"{"op":"welcome""#) else { throw BenchError("\(plan.device): \(welcome)") }
        var window = plan.window
        if let object = try? JSONSerialization.jsonObject(with: Data(welcome.utf8)) as? [String: Any], let w = object["window"] as? Int {
            window = min(window, w)
        }
        // The crew logs in on the handheld first: every batch carries its collector's ticket.
        var tickets: [String: String] = [:]
        for user in ["jane", "john"] {
            try link.send(Array((#"{"op":"login","user":"\#(user)","pin":"\#(EventMix.pin)"}"# + "\n").utf8))
            let answer = try link.readLine(timeout: 30)
            guard let answer, let object = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any],
                  let ticket = object["ticket"] as? String
            else { throw BenchError("\(plan.device): login of \(user) failed: \(answer.map { String($0.prefix(200)) } ?? "no answer")") }
            tickets[user] = ticket
        }

        // The common start, on this process's monotonic clock; paced, sending begins a warm-up before it.
        let wallNow = Date().timeIntervalSince1970
        let start = monotonic() + (plan.startAt - wallNow)
        let warmup = plan.mode == .paced ? max(0, plan.warmup) : 0
        let firstSend = start - warmup
        if firstSend > monotonic() {
            usleep(useconds_t(max(0, firstSend - monotonic()) * 1e6))
        }
        summary.lateStartMs = max(0, monotonic() - firstSend) * 1000
        let end = start + plan.seconds
        let interval = 1 / max(plan.batchesPerSecond, 0.001)
        var nextDue = firstSend + plan.phase * interval
        if plan.mode == .paced {
            // Every due time of the measured run counts as offered, sent or not.
            var due = nextDue
            while due < end {
                if due >= start { summary.offeredEvents += plan.eventsPerBatch }
                due += interval
            }
        }

        var inFlight: [Double] = []   // when each unanswered batch was due (paced) or sent (flat), oldest first
        var inFlightHead = 0
        var batch = 0
        func sendNext(dueAt: Double) throws {
            let id = "\(plan.idPrefix)-\(plan.index)-\(batch)"
            let line = EventMix.batchLine(id: id, handheld: plan.index, batch: batch, events: plan.eventsPerBatch,
                                          plants: plan.plants, packages: plan.packages, collectedAt: Date().timeIntervalSince1970,
                                          tickets: tickets)
            let stamp = plan.mode == .paced ? dueAt : monotonic()
            try link.send(line)
            inFlight.append(stamp)
            summary.sentBatches += 1
            summary.sentEvents += plan.eventsPerBatch
            if plan.mode == .flat { summary.offeredEvents += plan.eventsPerBatch }
            batch += 1
        }

        while true {
            let now = monotonic()
            let outstanding = inFlight.count - inFlightHead
            if now < end {
                switch plan.mode {
                case .flat:
                    var open = outstanding
                    while open < window {
                        try sendNext(dueAt: now)
                        open += 1
                    }
                case .paced:
                    var open = outstanding
                    while nextDue <= now, nextDue < end, open < window {
                        try sendNext(dueAt: nextDue)
                        nextDue += interval
                        open += 1
                    }
                }
            }
            if inFlight.count - inFlightHead == 0, monotonic() >= end { break }
            if monotonic() > end + 120 { throw BenchError("\(plan.device): answers still missing 120 s after the end") }
            // Wait for answers; paced, only until the next batch is due (with the window full, only answers help).
            var timeout = 1.0
            let current = monotonic()
            if plan.mode == .paced, current < end, inFlight.count - inFlightHead < window {
                timeout = max(0, min(nextDue, end) - current)
            }
            for (line, at) in try link.readLines(timeout: timeout) {
                guard inFlightHead < inFlight.count else {
                    summary.errors.append("unexpected line: \(line.prefix(200))")
                    continue
                }
                if line.hasPrefix(#"{"op":"ack""#), warmup > 0, inFlight[inFlightHead] < start {
                    summary.warmupBatches += 1
                } else if line.hasPrefix(#"{"op":"ack""#) {
                    summary.ackedBatches += 1
                    summary.ackedEvents += plan.eventsPerBatch
                    summary.lastAckSeconds = at - start
                    summary.latenciesMs.append((at - inFlight[inFlightHead]) * 1000)
                } else if line.hasPrefix(#"{"op":"nack""#) {
                    summary.nacks += 1
                    if summary.errors.count < 5 { summary.errors.append(String(line.prefix(300))) }
                } else {
                    throw BenchError("\(plan.device): \(line.prefix(300))")
                }
                inFlightHead += 1
            }
            if inFlightHead > 4096 {
                inFlight.removeFirst(inFlightHead)
                inFlightHead = 0
            }
        }
        try? link.send(Array(#"{"op":"bye"}"#.utf8) + [10])
    }

    /// A TCP connection that timestamps each line as it arrives, also while a long batch is being written (so an
    /// answer waiting behind a slow write is not counted late).
    final class Link {
        let fd: Int32
        private var buffer: [UInt8] = []
        private var chunk = [UInt8](repeating: 0, count: 1 << 16)
        /// Complete lines with when they arrived (monotonic seconds), oldest first.
        private var lines: [(line: String, at: Double)] = []

        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw BenchError("socket() failed") }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else {
                close(fd)
                throw BenchError("connect to 127.0.0.1:\(port) failed: errno \(errno)")
            }
            // A batch is one write; without this, its last segment can wait for the previous one's ACK.
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }

        deinit { close(fd) }

        /// Writes all of `bytes`; while the socket is full, takes in what the daemon answers meanwhile.
        func send(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n > 0 {
                    offset += n
                    continue
                }
                guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else {
                    throw BenchError("send failed: errno \(errno)")
                }
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT | POLLIN), revents: 0)
                let ready = poll(&pfd, 1, 60_000)
                if ready < 0, errno != EINTR { throw BenchError("poll failed: errno \(errno)") }
                if ready == 0 { throw BenchError("the daemon took no data for 60 s") }
                if pfd.revents & Int16(POLLIN) != 0 { try takeIn() }
            }
        }

        /// Lines that arrived (or arrive within `timeout` seconds, waiting only for the first), with their arrival times.
        func readLines(timeout: Double) throws -> [(line: String, at: Double)] {
            if lines.isEmpty {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&pfd, 1, Int32(min(max(0, timeout * 1000).rounded(.up), 60_000)))
                if ready < 0, errno != EINTR { throw BenchError("poll failed: errno \(errno)") }
                if ready > 0 { try takeIn() }
            }
            defer { lines = [] }
            return lines
        }

        func readLine(timeout: Double) throws -> String? {
            let deadline = Handheld.monotonic() + timeout
            while lines.isEmpty {
                let left = deadline - Handheld.monotonic()
                if left <= 0 { return nil }
                _ = try readLines(timeout: left).map { lines.append($0) }
            }
            return lines.removeFirst().line
        }

        /// Reads all there is now and splits off complete lines.
        private func takeIn() throws {
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 {
                    buffer.append(contentsOf: chunk[..<n])
                    if n < chunk.count { break }
                    continue
                }
                if n == 0 { throw BenchError("the daemon closed the connection") }
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { break }
                throw BenchError("recv failed: errno \(errno)")
            }
            let now = Handheld.monotonic()
            var start = 0
            while let nl = buffer[start...].firstIndex(of: 10) {
                lines.append((String(decoding: buffer[start..<nl], as: UTF8.self), now))
                start = nl + 1
            }
            if start > 0 { buffer.removeFirst(start) }
        }
    }
}
