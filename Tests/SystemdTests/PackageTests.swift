import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The Debian package (scripts/package) installed, upgraded under load, removed and purged with dpkg
/// under a real, booted systemd. The packages are made from the debug binaries next to the test runner
/// (dynamically linked to the toolchain's Swift runtime, which the box sees: it shares the host's
/// file system), without manual pages; what they hold is otherwise what operators get.
@Suite(
    "Debian package",
    .enabled(if: SystemdBox.available, "needs root, systemd and scripts/systemd-box"),
    .enabled(if: DebianTools.present, "needs dpkg and dpkg-deb"),
    .enabled(if: RealSystemdTests.outlawdBuilt, "outlawd/outlawctl not built next to the test runner yet"))
struct PackageTests {
    static var script: String { TestSupport.repositoryRoot() + "/scripts/package" }
    static let config = "/etc/outlawd/outlawd.toml"

    /// Runs scripts/package on the debug binaries (it prints the .deb's path last).
    static func buildPackage(version: String, out: String, extra: [String] = []) async throws -> TestSupport.Output {
        try await TestSupport.run(script, [
            "--bin-dir", TestSupport.buildDirectory, "--version", version, "--out", out, "--no-man",
            "--compression", "none",
        ] + extra)
    }

    /// outlawctl in the box as the service's own dynamic user, in its state directory (as docs/operations.md says).
    static let admin = [
        "systemd-run", "--wait", "--pipe", "--quiet", "-p", "DynamicUser=yes", "-p", "User=outlawd",
        "-p", "StateDirectory=outlawd", "-p", "StateDirectoryMode=0700", "/usr/bin/outlawctl",
    ]

    @Test func installUpgradeUnderLoadRemovePurge() async throws {
        let work = try TestSupport.makeTempDir("sdpkg")
        defer { TestSupport.removeTree(work) }
        let debs = work + "/debs"

        // Debug binaries link the toolchain's Swift runtime: without the test-only flag the script refuses.
        let refused = try await Self.buildPackage(version: "0.1.0~test0", out: debs)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("links the Swift toolchain's runtime"), "\(refused.stderr)")

        let started = ContinuousClock.now
        var debPaths: [String] = []
        for version in ["0.1.0~test1", "0.1.0~test2"] {
            let made = try await Self.buildPackage(version: version, out: debs, extra: ["--allow-toolchain-runtime"])
            try #require(made.status == 0, "scripts/package: \(made.stderr)")
            let path = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(path.hasPrefix(debs + "/outlawd_\(version)_") && path.hasSuffix(".deb"), "\(path)")
            debPaths.append(path)
        }
        print("PackageTests: two packages built in \(started.duration(to: .now))")
        try await checkContents(deb: debPaths[0], work: work)

        let port = try TestSupport.freePort()
        // The box shares the host's network: the socket listens on a free loopback port, not 7420.
        try "[Socket]\nListenStream=\nListenStream=127.0.0.1:\(port)\n"
            .write(toFile: work + "/port.conf", atomically: true, encoding: .utf8)
        let box = try await SystemdBox.start([
            "--bind", debs + ":/debs",
            "--file", work + "/port.conf:/etc/systemd/system/outlawd.socket.d/port.conf",
        ])
        do {
            try await lifecycle(box: box, port: port, debs: debPaths.map { "/debs/" + ($0 as NSString).lastPathComponent })
        } catch {
            try? await box.stop()
            throw error
        }
        try await box.stop()
    }

    /// What the package holds, read on the host.
    func checkContents(deb: String, work: String) async throws {
        let depends = try await TestSupport.run("/usr/bin/dpkg-deb", ["-f", deb, "Depends"]).stdout
        for library in ["libc6", "libsqlite3-0", "libsystemd0"] {
            #expect(depends.contains(library), "Depends: \(depends)")
        }
        let conffiles = try await TestSupport.run("/usr/bin/dpkg-deb", ["-I", deb, "conffiles"]).stdout
        #expect(conffiles.trimmingCharacters(in: .whitespacesAndNewlines) == Self.config)
        let listing = try await TestSupport.run("/usr/bin/dpkg-deb", ["-c", deb]).stdout
        for path in [
            "./usr/bin/outlawd", "./usr/bin/outlawctl", "./usr/lib/systemd/system/outlawd.service",
            "./usr/lib/systemd/system/outlawd.socket", "./etc/outlawd/outlawd.toml",
            "./usr/share/doc/outlawd/README.md", "./usr/share/doc/outlawd/operations.md", "./usr/share/doc/outlawd/copyright",
            "./usr/share/bash-completion/completions/outlawctl", "./usr/share/zsh/vendor-completions/_outlawctl",
            "./usr/share/fish/vendor_completions.d/outlawctl.fish",
        ] {
            #expect(listing.contains(" \(path)\n"), "\(path) not in the package")
        }
        #expect(listing.contains("root/root"), "files owned by root")

        // The packaged configuration lists every key the daemon knows, each with a valid value.
        let extract = try await TestSupport.run("/bin/sh", ["-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -xOf - ./etc/outlawd/outlawd.toml", "sh", deb])
        try #require(extract.status == 0, "\(extract.stderr)")
        let toml = extract.stdout
        #expect(try Self.tomlKeys(toml) == Self.knownKeys(), "the packaged outlawd.toml and DaemonConfiguration.swift disagree")

        // Every setting uncommented still loads (outlawctl on the host; every path moved into `work`).
        let storeLine = "path = \"/var/lib/outlawd/outlawd.sqlite\""
        var all = toml.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.hasPrefix("#"), let eq = line.range(of: " = "),
               line[line.index(after: line.startIndex)..<eq.lowerBound].allSatisfy({ $0.isLowercase || $0 == "_" }) {
                return String(line.dropFirst())
            }
            return String(line)
        }.joined(separator: "\n")
        try #require(all.contains(storeLine), "no store path line in the packaged outlawd.toml")
        all = all.replacingOccurrences(of: storeLine, with: "path = \"\(work)/state/outlawd.sqlite\"")
        try FileManager.default.createDirectory(atPath: work + "/conf/credentials", withIntermediateDirectories: true)
        try all.write(toFile: work + "/conf/outlawd.toml", atomically: true, encoding: .utf8)
        try String(repeating: "ab", count: 32).write(toFile: work + "/conf/credentials/outlawd-store-key", atomically: true, encoding: .utf8)
        // outlawctl gets past the configuration to the store, which only outlawd creates.
        let status = try await TestSupport.run(TestSupport.buildDirectory + "/outlawctl", ["status", "--config", work + "/conf/outlawd.toml"])
        #expect(status.stderr.hasPrefix("outlawctl: no store at \(work)/state/outlawd.sqlite yet"),
                "every setting of the packaged outlawd.toml uncommented: \(status.stderr)")
    }

    /// install → a handheld's ack → upgrade under load → remove → reinstall → purge → purge with the state.
    func lifecycle(box: SystemdBox, port: UInt16, debs: [String]) async throws {
        // Installation: the socket is enabled and listening; the credentials folder is root's.
        let install = try await box.run(["dpkg", "-i", debs[0]])
        try #require(install.status == 0, "dpkg -i: \(install.stdout)\(install.stderr)")
        #expect(install.stdout.contains("Before the first handheld connects"), "\(install.stdout)")
        #expect(try await box.output(["dpkg-query", "-W", "-f", "${Version}", "outlawd"]) == "0.1.0~test1")
        #expect(try await box.output(["systemctl", "is-enabled", "outlawd.socket"]) == "enabled")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "active")
        #expect(try await box.output(["stat", "-c", "%a %U", "/etc/outlawd/credentials"]) == "700 root")
        #expect(try await box.show("outlawd.service", "ExecStart").contains("path=/usr/bin/outlawd ;"))
        let unit = try await box.output(["cat", "/usr/lib/systemd/system/outlawd.service"])
        let repoUnit = try String(contentsOfFile: TestSupport.repositoryRoot() + "/systemd/outlawd.service", encoding: .utf8)
        #expect(unit == repoUnit.replacingOccurrences(of: "ExecStart=/usr/local/bin/outlawd ", with: "ExecStart=/usr/bin/outlawd ")
            .trimmingCharacters(in: .whitespacesAndNewlines), "the packaged unit is the repository's but for ExecStart")


        // What an operator does next: the Metrc keys, the Metrc URL (here a closed port, and uploads
        // paused: nothing leaves the box), a device and a user.
        for name in ["metrc-vendor-key", "metrc-default-key"] {
            let put = try await box.run(["install", "-m", "0600", "/dev/stdin", "/etc/outlawd/credentials/" + name], stdin: "\(name)-for-tests\n")
            try #require(put.status == 0, "\(put.stderr)")
        }
        let edit = try await box.run(["sed", "-i", "s|^#base_url = .*|base_url = \"http://127.0.0.1:1\"|", Self.config])
        try #require(edit.status == 0)
        #expect(try await box.output(["grep", "-c", "^base_url = \"http://127.0.0.1:1\"", Self.config]) == "1")
        // Started once, as the postinst message says (after the keys: its unit loads them as credentials), outlawd
        // creates its store; the packaged configuration loads as it is.
        let start = try await box.run(["systemctl", "start", "outlawd.service"])
        try #require(start.status == 0, "systemctl start outlawd.service: \(start.stderr)")
        let status = try await box.run(Self.admin + ["status", "--config", Self.config])
        #expect(status.status == 0 && !status.stderr.contains("outlawd.toml"), "outlawctl status: \(status.stderr)")
        try #require(try await box.run(Self.admin + ["pause", "--config", Self.config]).status == 0)
        let device = try await box.run(Self.admin + ["device", "add", "HH-0042", "--config", Self.config])
        try #require(device.status == 0, "outlawctl device add: \(device.stderr)")
        let token = try #require(device.stdout.split(whereSeparator: \.isWhitespace).last.map(String.init))
        let user = try await box.run(Self.admin + ["user", "add", "jane", "--role", "user", "--config", Self.config], stdin: "4821\n")
        try #require(user.status == 0, "outlawctl user add: \(user.stderr)")

        // A handheld connects (socket activation starts outlawd) and gets its ack.
        let first = try await TestSupport.offPool { try Handheld.oneBatch(port: port, token: token, id: "b-first") }
        if first != "ack" {
            let journal = try await box.output(["journalctl", "--no-pager", "-u", "outlawd", "-n", "40"])
            Issue.record("first batch: \(first); journal:\n\(journal)")
        }
        #expect(first == "ack")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "active")
        let firstPID = try await box.show("outlawd.service", "MainPID")

        // The upgrade, while a handheld sends batch after batch.
        let run = HandheldRun()
        async let loop = TestSupport.offPool { Handheld.loop(port: port, token: token, run: run) }
        let upgraded: Result<(TestSupport.Output, Bool?), any Error>
        do {
            let warm = try await TestSupport.eventually(timeout: .seconds(60)) { run.acked >= 3 ? true : nil }
            #expect(warm == true, "the handheld got no acks before the upgrade")
            let upgrade = try await box.run(["dpkg", "-i", debs[1]])
            let ackedBefore = run.acked
            let after = try await TestSupport.eventually(timeout: .seconds(60)) { run.acked >= ackedBefore + 3 ? true : nil }
            upgraded = .success((upgrade, after))
        } catch {
            upgraded = .failure(error)
        }
        run.requestStop()
        let report = try await loop
        let (upgrade, after) = try upgraded.get()
        try #require(upgrade.status == 0, "dpkg -i (upgrade): \(upgrade.stdout)\(upgrade.stderr)")
        #expect(after == true, "the handheld got no acks after the upgrade")
        print("PackageTests: upgrade under load: \(report)")
        #expect(report.failures.isEmpty, "\(report.failures)")
        #expect(report.refused == 0, "connections refused during the upgrade: \(report)")
        #expect(report.unacknowledged == 0, "\(report)")
        #expect(report.closedByServer >= 1, "the daemon never closed the handheld's connection: was it restarted? \(report)")
        #expect(try await box.output(["dpkg-query", "-W", "-f", "${Version}", "outlawd"]) == "0.1.0~test2")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "active")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "active")
        #expect(try await box.show("outlawd.socket", "NRefused") == "0")
        let secondPID = try await box.show("outlawd.service", "MainPID")
        #expect(secondPID != firstPID && secondPID != "0", "outlawd.service was not restarted")
        #expect(!upgrade.stdout.contains("Before the first handheld connects"))

        // Removal: stopped, disabled, units and binaries gone; the configuration and the store stay.
        let remove = try await box.run(["dpkg", "-r", "outlawd"])
        try #require(remove.status == 0, "dpkg -r: \(remove.stdout)\(remove.stderr)")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "inactive")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "inactive")
        #expect(try await box.show("outlawd.socket", "LoadState") == "not-found")
        for gone in [
            "/usr/lib/systemd/system/outlawd.service", "/usr/lib/systemd/system/outlawd.socket",
            "/etc/systemd/system/sockets.target.wants/outlawd.socket", "/usr/bin/outlawd", "/usr/bin/outlawctl",
        ] {
            #expect(try await box.run(["test", "-e", gone, "-o", "-L", gone]).status != 0, "\(gone) is still there")
        }
        #expect(try await box.run(["test", "-f", Self.config]).status == 0, "the conffile stays until purge")
        #expect(try await box.run(["test", "-f", "/var/lib/private/outlawd/outlawd.sqlite"]).status == 0, "the store stays")
        #expect(try await TestSupport.offPool { Handheld.connect(port: port) } == .refused, "nothing listens after the removal")

        // Installed again (from the kept configuration): enabled and started as on a first installation,
        // and the kept store still knows the device.
        let again = try await box.run(["dpkg", "-i", debs[1]])
        try #require(again.status == 0, "dpkg -i after -r: \(again.stdout)\(again.stderr)")
        #expect(try await box.output(["systemctl", "is-enabled", "outlawd.socket"]) == "enabled")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "active")
        #expect(try await TestSupport.offPool { try Handheld.oneBatch(port: port, token: token, id: "b-again") } == "ack")

        // Purge: the configuration and credentials go; the store stays, and so does the store key.
        let storeKey = "/etc/outlawd/credentials/outlawd-store-key"
        try #require(try await box.run(["install", "-m", "0600", "/dev/stdin", storeKey], stdin: String(repeating: "cd", count: 32)).status == 0)
        let purge = try await box.run(["dpkg", "-P", "outlawd"])
        try #require(purge.status == 0, "dpkg -P: \(purge.stdout)\(purge.stderr)")
        #expect(try await box.run(["dpkg", "-s", "outlawd"]).status != 0, "still known to dpkg")
        #expect(try await box.output(["find", "/etc/outlawd"]).split(separator: "\n").sorted()
            == ["/etc/outlawd", "/etc/outlawd/credentials", storeKey].sorted().map { Substring($0) })
        #expect(try await box.run(["test", "-f", "/var/lib/private/outlawd/outlawd.sqlite"]).status == 0, "the store stays after a purge")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "inactive")

        // Purge asked to delete the state too.
        let third = try await box.run(["dpkg", "-i", debs[1]])
        try #require(third.status == 0, "dpkg -i after -P: \(third.stdout)\(third.stderr)")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "active")
        let purgeAll = try await box.run(["env", "OUTLAWD_PURGE_STATE=yes", "dpkg", "-P", "outlawd"])
        try #require(purgeAll.status == 0, "dpkg -P with OUTLAWD_PURGE_STATE=yes: \(purgeAll.stdout)\(purgeAll.stderr)")
        for gone in ["/var/lib/private/outlawd", "/var/lib/outlawd", "/etc/outlawd"] {
            #expect(try await box.run(["test", "-e", gone, "-o", "-L", gone]).status != 0, "\(gone) is still there")
        }
    }

    // MARK: the configuration's keys

    /// `section.key` for every `key = value` line of a TOML file, commented out (`#key = value`) or not.
    static func tomlKeys(_ text: String) throws -> Set<String> {
        var section = ""
        var keys: Set<String> = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            let body = line.hasPrefix("#") ? String(line.dropFirst()) : line
            guard let eq = body.range(of: " = ") else { continue }
            let key = body[..<eq.lowerBound]
            guard !key.isEmpty, key.allSatisfy({ $0.isLowercase || $0 == "_" }) else { continue }
            keys.insert(section + "." + key)
        }
        return keys
    }

    /// The keys DaemonConfiguration accepts, read from its source (`reader.only(..., known: [...], prefix: "section")`).
    static func knownKeys() throws -> Set<String> {
        let source = try String(contentsOfFile: TestSupport.repositoryRoot() + "/Sources/OutlawConfig/DaemonConfiguration.swift", encoding: .utf8)
        let only = try NSRegularExpression(pattern: #"known: \[([^\]]*)\], prefix: "([a-z_]+)""#)
        let quoted = try NSRegularExpression(pattern: #""([a-z_]+)""#)
        var keys: Set<String> = []
        let ns = source as NSString
        for match in only.matches(in: source, range: NSRange(location: 0, length: ns.length)) {
            let list = ns.substring(with: match.range(at: 1))
            let section = ns.substring(with: match.range(at: 2))
            for key in quoted.matches(in: list, range: NSRange(location: 0, length: (list as NSString).length)) {
                keys.insert(section + "." + (list as NSString).substring(with: key.range(at: 1)))
            }
        }
        if keys.count < 10 { throw TestFailure("found only \(keys.sorted()) in DaemonConfiguration.swift") }
        return keys
    }
}

enum DebianTools {
    static var present: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-deb") && FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg")
    }
}

// MARK: - A handheld, blocking, on its own thread

/// Shared between the test and the handheld's thread.
final class HandheldRun: @unchecked Sendable {
    private let lock = NSLock()
    private var ackedCount = 0
    private var stop = false

    var acked: Int {
        lock.lock()
        defer { lock.unlock() }
        return ackedCount
    }

    var stopRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stop
    }

    func countAck() {
        lock.lock()
        ackedCount += 1
        lock.unlock()
    }

    func requestStop() {
        lock.lock()
        stop = true
        lock.unlock()
    }
}

/// What the handheld saw.
struct HandheldReport: Sendable, CustomStringConvertible {
    var batches = 0
    var acks = 0
    var duplicates = 0
    /// Connection attempts that failed (refused or otherwise).
    var refused = 0
    /// Sends of a batch already sent once, after the server closed the connection before its ack.
    var resends = 0
    /// Connections the server ended (`bye`, close or reset).
    var closedByServer = 0
    var unacknowledged = 0
    var longestAckWait: Duration = .zero
    var failures: [String] = []

    var description: String {
        let ms = Double(longestAckWait.components.seconds) * 1000 + Double(longestAckWait.components.attoseconds) / 1e15
        return "\(batches) batches, \(acks) acks (\(duplicates) duplicates), \(refused) refused connections, "
            + "\(resends) resends, \(closedByServer) connections closed by the daemon, \(unacknowledged) unacknowledged, "
            + "longest wait for an ack \(Int(ms)) ms"
    }
}

/// A blocking line-JSON connection, as a handheld makes.
final class Handheld {
    enum Connect: Equatable { case connected, refused, failed(Int32) }

    let fd: Int32
    private var buffer: [UInt8] = []

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Connects once; no retries.
    static func open(port: UInt16) -> (Handheld?, Connect) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return (nil, .failed(errno)) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if r != 0 {
            let e = errno
            close(fd)
            return (nil, e == ECONNREFUSED ? .refused : .failed(e))
        }
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return (Handheld(fd: fd), .connected)
    }

    static func connect(port: UInt16) -> Connect { open(port: port).1 }

    /// False when the peer is gone.
    func send(_ line: String) -> Bool {
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// The next line as a JSON object; nil when the connection ended (close, reset, or 60 s of silence).
    func read() -> [String: Any]? {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = Data(buffer[..<nl])
                buffer.removeFirst(nl + 1)
                return (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] ?? ["op": "unparsable"]
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// Says hello; true on `welcome`.
    func hello(token: String) -> Bool {
        send(#"{"op":"hello","proto":1,"device":"HH-0042","token":"\#(token)","firmware":"3.2.1"}"#)
            && read()?["op"] as? String == "welcome"
    }

    static func batch(_ id: String) -> String {
        let now = ISO8601DateFormatter().string(from: Date())
        return #"{"op":"batch","id":"\#(id)","user":"jane","events":[{"seq":1,"type":"plant.scan","at":"\#(now)","plant":"1A4000000000000000000001"}]}"#
    }

    /// One connection, one batch: "ack", or what happened instead.
    static func oneBatch(port: UInt16, token: String, id: String) throws -> String {
        let (conn, result) = open(port: port)
        guard let conn else { return "connect: \(result)" }
        guard conn.hello(token: token) else { return "no welcome" }
        guard conn.send(batch(id)) else { return "send failed" }
        guard let answer = conn.read() else { return "closed before the answer" }
        _ = conn.send(#"{"op":"bye"}"#)
        return answer["op"] as? String == "ack" && answer["id"] as? String == id ? "ack" : "\(answer)"
    }

    /// Sends batches one after another, each until acknowledged (reconnecting and resending when the
    /// daemon ends the connection), until asked to stop; at most three minutes.
    static func loop(port: UInt16, token: String, run: HandheldRun) -> HandheldReport {
        var report = HandheldReport()
        let deadline = ContinuousClock.now + .seconds(180)
        var conn: Handheld?
        var pending: (id: String, line: String, firstSent: ContinuousClock.Instant?)?
        var number = 0
        while ContinuousClock.now < deadline {
            if pending == nil {
                if run.stopRequested { break }
                number += 1
                let id = "b-load-\(number)-\(UInt32.random(in: 0...UInt32.max))"
                pending = (id, batch(id), nil)
                report.batches += 1
            }
            if conn == nil {
                let (c, result) = open(port: port)
                guard let c else {
                    report.refused += 1
                    if report.refused > 100 { report.failures.append("connect: \(result), 100 times"); break }
                    usleep(50_000)
                    continue
                }
                guard c.hello(token: token) else {
                    report.closedByServer += 1
                    continue
                }
                conn = c
            }
            guard let c = conn, var batch = pending else { continue }
            if batch.firstSent == nil {
                batch.firstSent = .now
                pending = batch
            } else {
                report.resends += 1
            }
            guard c.send(batch.line) else {
                report.closedByServer += 1
                conn = nil
                continue
            }
            guard let answer = c.read() else {
                report.closedByServer += 1
                conn = nil
                continue
            }
            switch answer["op"] as? String {
            case "ack" where answer["id"] as? String == batch.id:
                report.acks += 1
                if answer["duplicate"] as? Bool == true { report.duplicates += 1 }
                let waited = batch.firstSent!.duration(to: .now)
                if waited > report.longestAckWait { report.longestAckWait = waited }
                pending = nil
                run.countAck()
                usleep(20_000)  // pacing, not a wait for anything
            case "bye":
                report.closedByServer += 1
                conn = nil
            case "nack" where answer["code"] as? String == "unavailable":
                usleep(100_000)  // the device retries
            default:
                report.failures.append("batch \(batch.id): \(answer)")
                return report
            }
        }
        if pending != nil {
            report.unacknowledged += 1
            report.failures.append("stopped after three minutes with a batch not acknowledged")
        }
        if let conn { _ = conn.send(#"{"op":"bye"}"#) }
        return report
    }
}
