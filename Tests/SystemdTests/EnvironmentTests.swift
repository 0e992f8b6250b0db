import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@testable import Systemd

/// Tests that set NOTIFY_SOCKET / WATCHDOG_* in this process: the environment is global, so they run
/// one at a time. Nothing else in the test process reads these variables.
@Suite("Notify and watchdog environment", .serialized)
struct EnvironmentTests {
    @Test func notifyIsANoOpWithoutNotifySocket() {
        TestSupport.withEnvironment(["NOTIFY_SOCKET": nil]) {
            let notifier = SystemdNotifier()
            #expect(!notifier.isEnabled)
            #expect(notifier.ready() == .notUnderSystemd)
            #expect(notifier.status("x") == .notUnderSystemd)
            #expect(notifier.watchdogPing() == .notUnderSystemd)
        }
    }

    @Test func notifyMessagesArriveOnARealDatagramSocket() throws {
        let receiver = try DatagramReceiver()
        TestSupport.withEnvironment(["NOTIFY_SOCKET": receiver.path]) {
            let notifier = SystemdNotifier()
            #expect(notifier.isEnabled)

            #expect(notifier.ready() == .sent)
            #expect(receiver.receive() == "READY=1")

            #expect(notifier.ready(status: "listening on 127.0.0.1:7420") == .sent)
            #expect(receiver.receive() == "READY=1\nSTATUS=listening on 127.0.0.1:7420")

            notifier.status("3 devices, 12 events waiting, oldest 4s\nsecond line")
            #expect(receiver.receive() == "STATUS=3 devices, 12 events waiting, oldest 4s second line")

            notifier.watchdogPing()
            #expect(receiver.receive() == "WATCHDOG=1")

            notifier.stopping(status: "draining")
            #expect(receiver.receive() == "STOPPING=1\nSTATUS=draining")

            let before = SystemdNotifier.monotonicMicroseconds()
            notifier.reloading()
            let reloading = receiver.receive() ?? ""
            let stamp = reloading.split(separator: "\n").last.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) }
            #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), "\(reloading)")
            #expect(stamp.map { $0 >= before && $0 <= SystemdNotifier.monotonicMicroseconds() } == true, "\(reloading)")

            notifier.send([("STATUS", "a"), ("ERRNO", "5")])
            #expect(receiver.receive() == "STATUS=a\nERRNO=5")

            notifier.send(["WATCHDOG_USEC": "2000000", "EXTEND_TIMEOUT_USEC": "1000"])
            #expect(receiver.receive() == "EXTEND_TIMEOUT_USEC=1000\nWATCHDOG_USEC=2000000")

            #expect(notifier.sendRaw("FDSTORE=0") == .sent)
            #expect(receiver.receive() == "FDSTORE=0")
            _ = receiver  // keep alive
        }
    }

    @Test func notifyToAMissingSocketReportsTheError() {
        TestSupport.withEnvironment(["NOTIFY_SOCKET": "/tmp/sdtest-no-such-dir/notify.sock"]) {
            let outcome = SystemdNotifier().ready()
            #expect(outcome == .failed(errno: ENOENT))
        }
    }

    @Test func watchdogIntervalComesFromTheEnvironment() {
        TestSupport.withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": String(getpid())]) {
            let watchdog = SystemdWatchdog.fromEnvironment()
            #expect(watchdog?.interval == .seconds(3))
            #expect(watchdog?.pingInterval == .milliseconds(1500))
        }
        TestSupport.withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": nil]) {
            #expect(SystemdWatchdog.fromEnvironment()?.interval == .seconds(3))
        }
        // Meant for another process (e.g. inherited by a child): not ours.
        TestSupport.withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"]) {
            #expect(SystemdWatchdog.fromEnvironment() == nil)
        }
        TestSupport.withEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
            #expect(SystemdWatchdog.fromEnvironment() == nil)
        }
        TestSupport.withEnvironment(["WATCHDOG_USEC": "garbage", "WATCHDOG_PID": nil]) {
            #expect(SystemdWatchdog.fromEnvironment() == nil)
        }
    }

    @Test func watchdogPingsTheRealSocketOnlyWhileAlive() async throws {
        let receiver = try DatagramReceiver()
        let saved = (TestSupport.env("NOTIFY_SOCKET"), TestSupport.env("WATCHDOG_USEC"), TestSupport.env("WATCHDOG_PID"))
        setenv("NOTIFY_SOCKET", receiver.path, 1)
        setenv("WATCHDOG_USEC", "200000", 1)
        setenv("WATCHDOG_PID", String(getpid()), 1)
        defer {
            func restore(_ name: String, _ value: String?) {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
            restore("NOTIFY_SOCKET", saved.0)
            restore("WATCHDOG_USEC", saved.1)
            restore("WATCHDOG_PID", saved.2)
        }
        let watchdog = try #require(SystemdWatchdog.fromEnvironment())
        #expect(watchdog.pingInterval == .milliseconds(100))

        let alive = Flag(true)
        let task = Task { await watchdog.run { alive.value } }
        // Alive: pings keep coming (every 100 ms; the bound only guards against a busy machine's stalls,
        // a cold CI run once took more than a second for one).
        for _ in 0..<3 {
            #expect(await receiver.receiveAsync(timeoutMilliseconds: 10_000) == "WATCHDOG=1")
        }
        // Not alive: pings stop. Drain what was decided while still alive, until a quiet gap, then none comes.
        alive.value = false
        var drained = 0
        while drained < 50, await receiver.receiveAsync(timeoutMilliseconds: 300) != nil { drained += 1 }
        #expect(await receiver.receiveAsync(timeoutMilliseconds: 1000) == nil)
        // Alive again: pinging resumes.
        alive.value = true
        #expect(await receiver.receiveAsync(timeoutMilliseconds: 10_000) == "WATCHDOG=1")
        task.cancel()
        await task.value
    }
}

@Suite("Journald probe")
struct JournaldProbeTests {
    /// A listener answers; the socket file it leaves behind, and no file at all, do not (libsystemd's own
    /// send reports success for a missing socket, which once hid a machine with no journald).
    @Test func answersOnlyWhileSomethingListens() throws {
        let dir = try TestSupport.makeTempDir("sdprobe")
        defer { TestSupport.removeTree(dir) }
        let path = dir + "/socket"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #expect(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in Array(path.utf8).enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(LogTarget.journaldAnswers(at: path))
        close(fd)
        #expect(access(path, F_OK) == 0, "the socket file stays behind, as a dead journald's does")
        #expect(!LogTarget.journaldAnswers(at: path))
        #expect(!LogTarget.journaldAnswers(at: dir + "/missing"))
    }
}
