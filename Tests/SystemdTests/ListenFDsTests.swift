import Foundation
import Testing

@testable import Systemd

/// Socket activation through systemd's own `systemd-socket-activate`: it binds the sockets, and on
/// the first connection starts this test runner again in the `listen` child role (see ChildRoles),
/// which reads them with `ListenFDs` and answers on the `devices` socket what it found.
@Suite("Listen fds via systemd-socket-activate", .timeLimit(.minutes(3)),
       .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate")))
struct ListenFDsTests {
    func activate(ports: [UInt16], names: [String], connectTo port: UInt16) async throws -> String {
        var arguments: [String] = []
        for p in ports { arguments += ["-l", "127.0.0.1:\(p)"] }
        arguments += ["--fdname=\(names.joined(separator: ":"))"]
        arguments += ["-E", "SYSTEMD_TESTS_ROLE=listen", "-E", "PATH=/usr/bin:/bin"]
        arguments += [TestSupport.testRunner] + TestSupport.childRoleArguments
        // posix_spawn, not Foundation's Process: systemd-socket-activate closes every descriptor it does not pass
        // on, Foundation's child-watch socket among them, and Foundation then blocks its one process-watching
        // thread in waitpid until the activator exits, so no other Process of the test run could finish meanwhile.
        let pid = try Self.spawn("/usr/bin/systemd-socket-activate", arguments, environment: TestSupport.scrubbedEnvironment)
        let reply: Result<String, any Error>
        do {
            reply = .success(try await TestSupport.tcpExchange(port: port, timeout: .seconds(10), readTimeout: 60))
        } catch {
            reply = .failure(error)
        }
        // The child answers and exits; stop it in any case and reap it off the cooperative pool.
        kill(pid, SIGTERM)
        _ = try await TestSupport.offPool {
            var status: Int32 = 0
            return waitpid(pid, &status, 0)
        }
        return try reply.get()
    }

    /// Starts `path` with stdin, stdout and stderr on /dev/null; the caller reaps it.
    static func spawn(_ path: String, _ arguments: [String], environment: [String: String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // The child starts with no signal blocked and every handler at its default: posix_spawn otherwise passes on
        // the spawning thread's mask, and an activator spawned from a thread with SIGTERM blocked never ended at the
        // test's SIGTERM (a run beside two CPU hogs hung for ten minutes in the waitpid below).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw TestFailure("posix_spawn \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    @Test func theDevicesSocketIsFoundByName() async throws {
        let port = try TestSupport.freePort()
        let reply = try await activate(ports: [port], names: ["devices"], connectTo: port)
        #expect(reply == "fds=3 names=devices devices=3 listening=true unset=true\n")
    }

    @Test func severalSocketsKeepTheirNamesAndOrder() async throws {
        let admin = try TestSupport.freePort()
        let devices = try TestSupport.freePort()
        let reply = try await activate(ports: [admin, devices], names: ["admin", "devices"], connectTo: devices)
        #expect(reply == "fds=3,4 names=admin,devices devices=4 listening=true,true unset=true\n")
    }

    @Test func nothingIsPassedOutsideSocketActivation() throws {
        // This process was not socket-activated (and LISTEN_PID would not be ours anyway).
        #expect(try ListenFDs.all().isEmpty)
        #expect(try ListenFDs.socket(named: "devices") == nil)
    }
}
