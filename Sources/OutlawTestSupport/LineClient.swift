import Foundation

/// A blocking TCP client speaking line-delimited JSON, as a handheld does; for end-to-end tests.
public final class LineClient: @unchecked Sendable {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Login tickets by user: `send(json:)` puts the user's into each batch that names no ticket, as a handheld does.
    private let ticketsLock = NSLock()
    private var ticketsByUser: [String: String] = [:]

    public var tickets: [String: String] {
        get { ticketsLock.withLock { ticketsByUser } }
        set { ticketsLock.withLock { ticketsByUser = newValue } }
    }

    /// `source`: the local address to connect from (another 127.x address stands for another machine).
    public init(host: String = "127.0.0.1", port: Int, timeout: TimeInterval = 10, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, source, &local.sin_addr)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                throw Failure(description: "bind to \(source) failed: errno \(errno)")
            }
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw Failure(description: "connect to \(host):\(port) failed: errno \(errno)")
        }
        setTimeout(timeout)
    }

    public func setTimeout(_ seconds: TimeInterval) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Logs `user` in and keeps the ticket for their batches; returns the whole answer.
    @discardableResult
    public func login(_ user: String, pin: String) async throws -> [String: Any] {
        try send(json: ["op": "login", "user": user, "pin": pin])
        let answer = try await readJSON()
        if let ticket = answer["ticket"] as? String { tickets[user] = ticket }
        return answer
    }

    /// Sends raw bytes (no newline added).
    public func sendRaw(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed: errno \(errno)") }
            offset += n
        }
    }

    public func send(_ line: String) throws {
        try sendRaw(Array((line + "\n").utf8))
    }

    /// Sends a JSON object built from a dictionary.
    public func send(json: [String: Any]) throws {
        var json = json
        if json["op"] as? String == "batch", json["ticket"] == nil, let user = json["user"] as? String, let ticket = tickets[user] {
            json["ticket"] = ticket
        }
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        try send(String(decoding: data, as: UTF8.self))
    }

    /// The next line, or nil when the server closed the connection.
    public func readLine() async throws -> String? {
        try await offload { try self.blockingReadLine() }
    }

    func blockingReadLine() throws -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeFirst(nl + 1)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure(description: "timed out waiting for a line") }
                if errno == ECONNRESET { return nil }
                throw Failure(description: "recv failed: errno \(errno)")
            }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// Every line until the server closes the connection, and whether it ended with a reset (ECONNRESET)
    /// rather than a clean close: a reset can make the kernel drop lines the server had sent.
    public func readToEnd() async throws -> (lines: [String], reset: Bool) {
        try await offload {
            var lines: [String] = []
            while true {
                while let nl = self.buffer.firstIndex(of: 10) {
                    lines.append(String(decoding: self.buffer[..<nl], as: UTF8.self))
                    self.buffer.removeFirst(nl + 1)
                }
                var chunk = [UInt8](repeating: 0, count: 65536)
                let n = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { return (lines, false) }
                if n < 0 {
                    if errno == ECONNRESET { return (lines, true) }
                    throw Failure(description: "recv failed after \(lines.count) lines: errno \(errno)")
                }
                self.buffer.append(contentsOf: chunk[..<n])
            }
        }
    }

    /// Reads and drops `count` lines without decoding them (memchr: fast enough for 100,000 of them even in a
    /// debug build); returns the last one dropped.
    public func skipLines(_ count: Int) async throws -> String {
        try await offload {
            var left = count
            var last = ""
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let consumed = self.buffer.withUnsafeBytes { bytes -> Int in
                    guard let base = bytes.baseAddress else { return 0 }
                    var start = 0
                    while left > 0, let hit = memchr(base + start, 10, bytes.count - start) {
                        let nl = base.distance(to: UnsafeRawPointer(hit))
                        left -= 1
                        if left == 0 { last = String(decoding: bytes[start..<nl], as: UTF8.self) }
                        start = nl + 1
                    }
                    return start
                }
                self.buffer.removeFirst(consumed)
                if left == 0 { return last }
                let n = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { throw Failure(description: "connection ended with \(left) of \(count) lines unread") }
                self.buffer.append(contentsOf: chunk[..<n])
            }
        }
    }

    /// Half-closes: the server sees end of input, and can still answer.
    public func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// The next line parsed as a JSON object.
    public func readJSON() async throws -> [String: Any] {
        guard let line = try await readLine() else { throw Failure(description: "connection closed while a line was expected") }
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw Failure(description: "not a JSON object: \(line)")
        }
        return object
    }

    /// True when the server closes the connection (after any lines still owed); false on a read timeout.
    public func waitForClose() async -> Bool {
        (try? await offload {
            while true {
                do {
                    if try self.blockingReadLine() == nil { return true }
                } catch {
                    return false
                }
            }
        }) ?? false
    }
}
