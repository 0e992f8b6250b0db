import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 client for the Metrc sandbox's control API: one blocking request per connection.
/// The sandbox always sends `Content-Length`; this keeps the handheld free of an HTTP stack.
enum SandboxHTTP {
    struct Response: Sendable {
        let status: Int
        let body: Data
    }

    static func request(_ method: String, _ url: String, body: Data? = nil, timeout: TimeInterval = 15) throws -> Response {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host else {
            throw HandheldError.setup("only http:// URLs are supported for the Metrc sandbox, not \(url)")
        }
        let port = components.port ?? 80
        var target = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }

        let fd = try connect(host: host, port: port, timeout: timeout)
        defer { close(fd) }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: application/json\r\nConnection: close\r\n"
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        var bytes = Array((head + "\r\n").utf8)
        if let body { bytes += Array(body) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw HandheldError.failed("\(method) \(url): send failed (errno \(errno))") }
            offset += n
        }
        // Connection: close, so the answer ends where the stream does.
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw HandheldError.failed("\(method) \(url): no answer (errno \(errno))") }
            received += chunk[..<n]
        }
        guard let split = find([13, 10, 13, 10], in: received) else {
            throw HandheldError.failed("\(method) \(url): not an HTTP answer")
        }
        let headLines = String(decoding: received[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = headLines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw HandheldError.failed("\(method) \(url): bad status line \(headLines.first ?? "")")
        }
        var payload = Data(received[(split + 4)...])
        for line in headLines.dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let name = pair[0].trimmingCharacters(in: .whitespaces).lowercased()
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            if name == "content-length", let length = Int(value), length <= payload.count { payload = payload.prefix(length) }
            if name == "transfer-encoding", value.lowercased() != "identity" {
                throw HandheldError.failed("\(method) \(url): transfer encoding \(value) is not supported")
            }
        }
        return Response(status: status, body: payload)
    }

    private static func connect(host: String, port: Int, timeout: TimeInterval) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw HandheldError.setup("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd >= 0 {
                var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
                close(fd)
            }
            candidate = info.pointee.ai_next
        }
        throw HandheldError.setup("cannot connect to the Metrc sandbox at \(host):\(port) (errno \(errno))")
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}
