import Foundation

/// The real `outlawd` binary running on a free port with a config in a temp folder.
public final class DaemonProcess: @unchecked Sendable {
    public let directory: TempDirectory
    public let configPath: String
    public private(set) var port: Int = 0
    private let output = LockedText()
    private let arguments: [String]
    /// The log line that says the daemon is up (dev mode writes its outlawd.toml just before `ready`).
    private let readyLine: String

    /// Writes `outlawd.toml` (with `extraConfig` appended to its sections) and starts the daemon. `metrics` is the
    /// `[metrics]` table: by default a free port, as the fixed 9742 would be taken by the daemons of other tests.
    public init(server: String = "", store: String = "", facility: String = "", metrc: String = "",
                metrics: String = "listen = \"127.0.0.1:0\"", retention: String = "",
                directory: TempDirectory? = nil, environment: [String: String] = [:]) async throws
    {
        self.directory = try directory ?? TempDirectory("outlawd-e2e")
        // Suites that test something else than the proof of a batch's collector send batches collected at fixed past
        // times, which no login ticket issued now covers: they run with the requirement off, as an operator with
        // older handhelds may. A suite that names the setting (the hostile-client and ticket tests) gets its own.
        let ticketDefault = server.contains("require_login_ticket") ? "" : "require_login_ticket = false"
        // Personal keys are sealed, as in production: a store key of the test's own, unless the suite sets its own.
        var storeKey = ""
        if !store.contains("key_file"), !store.contains("allow_unsealed_keys") {
            _ = try self.directory.write("secrets/store-key", (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined())
            storeKey = "key_file = \"secrets/store-key\""
        }
        configPath = try self.directory.write("outlawd.toml", """
            [server]
            listen = "127.0.0.1:0"
            \(ticketDefault)
            \(server)
            [store]
            path = "state/outlawd.sqlite"
            pin_hash_rounds = 10000
            \(storeKey)
            \(store)
            [facility]
            license = "LIC-0001"
            \(facility)
            \(metrc.isEmpty ? "" : "[metrc]\n" + metrc)
            [metrics]
            \(metrics)
            \(retention.isEmpty ? "" : "[retention]\n" + retention)
            """)
        arguments = ["--config", configPath]
        readyLine = "listening for devices"
        try await start(environment: environment)
    }

    /// `outlawd --dev` run from `directory` with its dev folder `.outlawd` there, on free ports; `configPath`
    /// is the outlawd.toml dev mode writes.
    public init(devIn directory: TempDirectory? = nil) async throws {
        self.directory = try directory ?? TempDirectory("outlawd-dev")
        configPath = self.directory.file(".outlawd/outlawd.toml")
        arguments = ["--dev", "--dev-dir", self.directory.file(".outlawd"), "--listen", "127.0.0.1:0", "--sandbox-port", "0"]
        readyLine = "outlawd: ready"
        try await start()
    }

    private var environment: [String: String] = [:]

    public func start(environment: [String: String] = [:]) async throws {
        let pid = try await offload { try self.launch(environment: environment) }
        let toJournal = environment["OUTLAWD_LOG_TARGET"] == "journal"
        let readyLine = self.readyLine
        port = try await eventually("outlawd to start listening", timeout: .seconds(60), every: .milliseconds(20),
                                    detail: { self.log }) { () -> Int? in
            // Logging to the journal, the daemon says where it listens there: its PORT field.
            if toJournal, let port = try await offload({ Self.journalPort(pid: pid) }) { return port }
            if let port = Self.listeningPort(in: log, readyLine: readyLine) { return port }
            if let p = current, !p.isRunning {
                throw LineClient.Failure(description: "outlawd exited with \(p.terminationStatus): \(log)")
            }
            return nil
        }
    }

    /// The port of the "listening for devices" line once `readyLine` is logged too.
    static func listeningPort(in text: String, readyLine: String) -> Int? {
        guard text.contains(readyLine),
              let range = text.range(of: #"listening for devices.*port=(\d+)|port=(\d+).*listening for devices"#, options: .regularExpression)
        else { return nil }
        let line = String(text[range])
        guard let portRange = line.range(of: #"port=\d+"#, options: .regularExpression) else { return nil }
        return Int(line[portRange].dropFirst(5))
    }

    /// Starts the process with its output read into `log`; returns its pid.
    func launch(environment: [String: String]) throws -> Int32 {
        self.environment = environment
        output.withLock { $0 = "" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("outlawd"))
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        var env = ProcessInfo.processInfo.environment
        env["OUTLAWD_LOG_TARGET"] = "stderr"
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "LISTEN_FDS")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        let reader = pipe.fileHandleForReading
        let output = self.output
        // A plain reading thread: Foundation's readabilityHandler has crashed test runners at exit.
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                output.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
        try process.run()
        current = process
        return process.processIdentifier
    }

    private var current: Process?

    static func journalPort(pid: Int32) -> Int? {
        let journalctl = Process()
        journalctl.executableURL = URL(fileURLWithPath: "/usr/bin/journalctl")
        journalctl.arguments = ["--no-pager", "-o", "json", "_PID=\(pid)", "MESSAGE=listening for devices"]
        let pipe = Pipe()
        journalctl.standardOutput = pipe
        journalctl.standardError = FileHandle.nullDevice
        guard (try? journalctl.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        journalctl.waitUntilExit()
        for line in data.split(separator: UInt8(ascii: "\n")) {
            if let entry = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
               let port = (entry["PORT"] as? String).flatMap(Int.init) {
                return port
            }
        }
        return nil
    }

    /// The port `/metrics` is served on, once the daemon logs it (to stderr).
    public func metricsPort() async throws -> Int {
        let found = try await eventually(timeout: .seconds(30)) { () -> Int? in
            let text = log
            guard let range = text.range(of: #"serving metrics.* metrics_port=\d+"#, options: .regularExpression),
                  let port = text[range].split(separator: "=").last.flatMap({ Int($0) }) else { return nil }
            return port
        }
        guard let found else { throw LineClient.Failure(description: "outlawd never said where it serves metrics: \(log)") }
        return found
    }

    /// Everything the daemon wrote to stdout and stderr so far.
    public var log: String { output.withLock { $0 } }

    /// The daemon's process id while it runs.
    public var pid: Int32 { current?.processIdentifier ?? 0 }

    /// Whether the daemon's process is running.
    public var isRunning: Bool { current?.isRunning ?? false }

    public func client(timeout: TimeInterval = 10) throws -> LineClient {
        try LineClient(port: port, timeout: timeout)
    }

    /// Runs outlawctl against this daemon's config.
    public func ctl(_ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
        try await runCommand(Binaries.path("outlawctl"), arguments + ["--config", configPath], stdin: stdin)
    }

    /// Adds a device and returns its token.
    public func addDevice(_ name: String) async throws -> String {
        let r = try await ctl(["device", "add", name])
        guard r.status == 0 else { throw LineClient.Failure(description: "device add failed: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func addUser(_ name: String, role: String = "user", pin: String = "1234") async throws {
        let r = try await ctl(["user", "add", name, "--role", role], stdin: pin + "\n")
        guard r.status == 0 else { throw LineClient.Failure(description: "user add failed: \(r.stderr)") }
        pins.withLock { $0[name] = pin }
    }

    /// The PINs of the users `addUser` added, for sessions that log them in.
    private let pins = LockedValue<[String: String]>([:])

    /// Connects and says hello; returns the client and the welcome. With `logIn`, every user added with `addUser`
    /// then logs in on this device, as a crew does at shift start, and their batches carry their tickets.
    public func session(device: String, token: String, logIn: Bool = false) async throws -> (LineClient, [String: Any]) {
        let c = try client()
        try c.send(json: ["op": "hello", "proto": 1, "device": device, "token": token, "firmware": "test"])
        let welcome = try await c.readJSON()
        if logIn, welcome["op"] as? String == "welcome" {
            for (user, pin) in pins.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
                try await c.login(user, pin: pin)
            }
        }
        return (c, welcome)
    }

    /// SIGKILL: the crash case.
    public func kill9() async {
        guard let p = current, p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        _ = try? await offload { p.waitUntilExit() }
    }

    /// SIGTERM and wait; returns the exit status.
    @discardableResult
    public func stop() async -> Int32 {
        guard let p = current else { return -1 }
        if p.isRunning {
            p.terminate()
            _ = try? await offload { p.waitUntilExit() }
        }
        return p.terminationStatus
    }

    deinit {
        if let p = current, p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }
}

/// A value shared between threads, behind a lock.
final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T

    init(_ value: T) { self.value = value }

    func withLock<R>(_ body: (inout T) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// Text appended from a pipe's reader thread and read by the test.
final class LockedText: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""

    func withLock<T>(_ body: (inout String) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&text)
    }
}
