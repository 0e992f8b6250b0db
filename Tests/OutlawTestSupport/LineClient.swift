import Foundation

/// A blocking TCP client speaking line-delimited JSON, as a handheld does; for end-to-end tests.
public final class LineClient: @unchecked Sendable {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public init(host: String = "127.0.0.1", port: Int, timeout: TimeInterval = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
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
