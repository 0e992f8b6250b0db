import Foundation
import OutlawTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Helpers for the Systemd tests: temp dirs, environment scopes, processes, sockets.
enum TestSupport {
    static var isRoot: Bool { geteuid() == 0 }

    /// A fresh directory under /tmp (short, so unix socket paths fit in 108 bytes).
    static func makeTempDir(_ prefix: String = "sdtest") throws -> String {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(errnoText())") }
        return String(cString: p)
    }

    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    /// Runs `body` with the given variables set (nil: unset), restoring the previous values after.
    /// The process environment is global: only call this from `.serialized` suites.
    static func withEnvironment<T>(_ vars: [String: String?], _ body: () throws -> T) rethrows -> T {
        var saved: [String: String?] = [:]
        for (name, value) in vars {
            saved[name] = env(name)
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
        defer {
            for (name, value) in saved {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        return try body()
    }

    /// The running test binary (the `.xctest` runner).
    static var testRunner: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The build products directory: the runner's folder.
    static var buildDirectory: String {
        (testRunner as NSString).deletingLastPathComponent
    }

    /// The repository root, found from this source file (following the scratch-package symlink).
    static func repositoryRoot(file: String = #filePath) -> String {
        let dir = (file as NSString).deletingLastPathComponent
        let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: dir)).map {
            $0.hasPrefix("/") ? $0 : ((dir as NSString).deletingLastPathComponent as NSString).appendingPathComponent($0)
        } ?? realPath(dir)
        return ((real as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    }

    static func realPath(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return path }
        defer { free(p) }
        return String(cString: p)
    }

    /// Arguments that make the runner run only `ChildRoles.childRole()`.
    static var childRoleArguments: [String] {
        ["--testing-library", "swift-testing", "--filter", "ChildRoles"]
    }

    /// This process's environment without the variables that tests set temporarily
    /// (children must not inherit a test's NOTIFY_SOCKET).
    static var scrubbedEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter {
            !["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"].contains($0.key)
        }
    }

    /// The output of a finished process.
    struct Output: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to completion (stdout/stderr through temp files, so nothing blocks).
    @discardableResult
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: String? = nil
    ) async throws -> Output {
        let dir = try makeTempDir("sdrun")
        defer { removeTree(dir) }
        let outPath = dir + "/out", errPath = dir + "/err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment ?? scrubbedEnvironment
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { p in continuation.resume(returning: p.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            if let stdin {
                input.fileHandleForWriting.write(Data(stdin.utf8))
                try? input.fileHandleForWriting.close()
            }
        }
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Output(status: status, stdout: out, stderr: err)
    }

    /// Runs blocking work (recv, accept, waitpid) on the tests' pool (`offload`), not on the two-thread
    /// cooperative pool that every test shares.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await offload(work)
    }

    /// A free TCP port on 127.0.0.1, outside the ephemeral range (bound then released; a small race is accepted).
    static func freePort() throws -> UInt16 {
        // Below the kernel's ephemeral range (32768-60999 here): a port bound seconds later (by a unit in a box,
        // by systemd-socket-activate) must not meanwhile become the local end of one of the thousands of
        // outgoing connections the other tests open. Port 0 would pick one from exactly that range.
        for _ in 0..<200 {
            let port = UInt16.random(in: 20_000..<32_000)
            if try canBind(port) { return port }
        }
        throw TestFailure("no free port found between 20000 and 32000")
    }

    private static func canBind(_ port: UInt16) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errnoText())") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0
    }

    /// Connects to 127.0.0.1:port (retrying until `timeout`), optionally sends `send`, and reads
    /// until the peer closes or `readTimeout` passes.
    static func tcpExchange(
        port: UInt16, send: String? = nil, timeout: Duration = .seconds(10), readTimeout: Int = 10
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let reply = try await offPool { try exchangeOnce(port: port, send: send, readTimeout: readTimeout) }
            if let reply { return reply }
            if ContinuousClock.now > deadline { throw TestFailure("connect to \(port): refused until timeout") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// One blocking connect-send-read; nil when the connection is refused.
    private static func exchangeOnce(port: UInt16, send: String?, readTimeout: Int) throws -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errnoText())") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 { return nil }
        var tv = timeval(tv_sec: readTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let send {
            let bytes = Array(send.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Polls `check` until it returns a value or `timeout` passes.
    static func eventually<T>(
        timeout: Duration = .seconds(15), interval: Duration = .milliseconds(200),
        _ check: () async throws -> T?
    ) async throws -> T? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let value = try await check() { return value }
            if ContinuousClock.now > deadline { return nil }
            try await Task.sleep(for: interval)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A unix datagram socket bound in a temp dir: what systemd's notify socket looks like.
final class DatagramReceiver: Sendable {
    let directory: String
    let path: String
    let fd: Int32

    init() throws {
        directory = try TestSupport.makeTempDir("sdnotify")
        path = directory + "/notify.sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(TestSupport.errnoText())") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { throw TestFailure("bind \(path): \(TestSupport.errnoText())") }
    }

    /// The next datagram, or nil after `timeoutMilliseconds`.
    func receive(timeoutMilliseconds: Int = 2000) -> String? {
        var tv = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// ``receive(timeoutMilliseconds:)`` off the cooperative pool.
    func receiveAsync(timeoutMilliseconds: Int = 2000) async -> String? {
        (try? await TestSupport.offPool { self.receive(timeoutMilliseconds: timeoutMilliseconds) }) ?? nil
    }

    deinit {
        close(fd)
        TestSupport.removeTree(directory)
    }
}
