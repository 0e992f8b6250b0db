import Dispatch
import Foundation
import Logging
import Testing

@testable import Systemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The test runner started again as a helper program: by `systemd-socket-activate`
/// (`SYSTEMD_TESTS_ROLE=listen`) or as a service under a booted systemd (`SYSTEMD_TESTS_ROLE=service`).
/// The runner is invoked with `--filter ChildRoles`, so only this runs; in a normal test run it is
/// skipped.
@Suite struct ChildRoles {
    static let role = TestSupport.env("SYSTEMD_TESTS_ROLE")

    @Test(.enabled(if: ChildRoles.role != nil, "only in a child process started by a test"))
    func childRole() async throws {
        switch Self.role {
        case "listen": try ListenChild.run()
        case "service": try await TinyService.run()
        default: Issue.record("unknown SYSTEMD_TESTS_ROLE \(Self.role ?? "")")
        }
    }
}

enum ListenChild {
    /// Reads the passed sockets, answers on `devices` what it found, and exits.
    static func run() throws {
        let fds = try ListenFDs.all(unsetEnvironment: true)
        let unset = getenv("LISTEN_FDS") == nil && getenv("LISTEN_PID") == nil && getenv("LISTEN_FDNAMES") == nil
        let devices = try #require(fds.first { $0.name == "devices" }?.fd)
        let report = "fds=\(fds.map { String($0.fd) }.joined(separator: ","))"
            + " names=\(fds.map(\.name).joined(separator: ","))"
            + " devices=\(devices)"
            + " listening=\(fds.map { String(ListenFDs.isListeningStreamSocket($0.fd)) }.joined(separator: ","))"
            + " unset=\(unset)\n"
        let connection = accept(devices, nil, nil)
        try #require(connection >= 0)
        writeAll(connection, report)
        close(connection)
    }
}

/// A tiny Type=notify service built from the Systemd module: READY=1 with STATUS=, the watchdog,
/// the `devices` socket from socket activation, a credential, journal fields, STOPPING=1 on SIGTERM.
/// Every connection to the `devices` socket gets one line describing what the service saw.
enum TinyService {
    static func run() async throws {
        let target = LogTarget.automatic()
        let logger = Logger(label: "tiny") { target.makeHandler(label: $0, identifier: "tiny") }
        let notifier = SystemdNotifier()

        let credential: String
        if let dir = TestSupport.env("CREDENTIALS_DIRECTORY"),
            let text = try? String(contentsOfFile: dir + "/greeting", encoding: .utf8)
        {
            credential = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            credential = "none"
        }
        let names = try ListenFDs.all(unsetEnvironment: true)
        let devices = names.first { $0.name == "devices" }?.fd

        let stop = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        signal(SIGTERM, SIG_IGN)
        stop.setEventHandler {
            SystemdNotifier().stopping(status: "stopping on SIGTERM")
            logger.notice("tiny stopping", metadata: ["reason": "SIGTERM"])
            exit(0)
        }
        stop.resume()

        if let watchdog = SystemdWatchdog.fromEnvironment() {
            Task.detached { await watchdog.run { true } }
        }

        if let devices {
            let report = "tiny names=\(names.map(\.name).joined(separator: ",")) credential=\(credential) target=\(target.rawValue)"
                + " watchdog=\(SystemdWatchdog.enabledInterval().map(String.init) ?? "none")\n"
            let thread = Thread {
                while true {
                    let connection = accept(devices, nil, nil)
                    if connection < 0 { continue }
                    writeAll(connection, report)
                    close(connection)
                }
            }
            thread.start()
        }

        logger.info(
            "tiny batch", metadata: ["batch_id": "tiny-1", "device": "HH-TINY", "outlaw_user": "jane", "events": "3"])
        notifier.ready(status: "serving; credential \(credential == "none" ? "missing" : "read")")
        while true {
            try await Task.sleep(for: .seconds(3600))
        }
    }
}

func writeAll(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return }
        offset += n
    }
}
