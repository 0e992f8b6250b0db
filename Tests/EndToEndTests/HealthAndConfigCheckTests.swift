import Foundation
import OutlawTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What an operator's tooling reads: `outlawctl status`'s exit code (0 healthy, 1 degraded, 2 down), `outlawd
/// --check-config` (0 or 2, one line per problem), `--version` everywhere, and a fresh installation without Metrc keys.
@Suite("Health, configuration check, versions", .timeLimit(.minutes(5)))
struct HealthAndConfigCheckTests {
    static func json(_ result: CommandResult) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any] ?? [:]
    }

    static func version() async throws -> String {
        try await runCommand(Binaries.path("outlawd"), ["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func everyExecutablePrintsTheSameVersion() async throws {
        var versions: [String: String] = [:]
        for name in ["outlawd", "outlawctl", "metrc-sandbox", "outlaw-handheld", "outlawd-bench"] {
            try #require(Binaries.exists(name), "\(name) is not built next to the test runner")
            let r = try await runCommand(Binaries.path(name), ["--version"])
            #expect(r.status == 0, "\(name) --version: \(r.stderr)")
            versions[name] = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let distinct = Set(versions.values)
        #expect(distinct.count == 1, "\(versions)")
        let version = try #require(distinct.first)
        #expect(version.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+"#, options: .regularExpression) != nil, "\(version)")
        // scripts/package reads the same constant for the package's version.
        let source = try String(contentsOfFile: TestSupportPaths.root + "/Sources/OutlawProtocol/OutlawBuild.swift", encoding: .utf8)
        #expect(source.contains("static let version = \"\(version)\""))
    }

    @Test func statusExitCodeIsTheVerdict() async throws {
        let version = try await Self.version()
        try await UploadHarness.run { h in
            // Healthy: the daemon writes its first report before it says it is ready.
            let healthy = try await h.daemon.ctl(["status", "--json"])
            #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
            let shown = Self.json(healthy)
            #expect(shown["verdict"] as? String == "healthy" && (shown["reasons"] as? [String]) == [], "\(shown)")
            #expect(shown["version"] as? String == version && shown["daemonVersion"] as? String == version, "\(shown)")
            let text = try await h.daemon.ctl(["status"])
            #expect(text.status == 0 && text.stdout.hasPrefix("health:        healthy\ndaemon:        running"), "\(text.stdout)")

            // Degraded: uploads paused.
            #expect(try await h.daemon.ctl(["pause"]).status == 0)
            let paused = try await h.daemon.ctl(["status"])
            #expect(paused.status == 1)
            #expect(paused.stdout.hasPrefix("health:        degraded\n  - uploads to Metrc are paused (outlawctl resume)\ndaemon:"), "\(paused.stdout)")
            let pausedJSON = Self.json(try await h.daemon.ctl(["status", "--json"]))
            #expect(pausedJSON["verdict"] as? String == "degraded")
            #expect(pausedJSON["reasons"] as? [String] == ["uploads to Metrc are paused (outlawctl resume)"], "\(pausedJSON)")
            #expect(try await h.daemon.ctl(["resume"]).status == 0)
            #expect(try await h.daemon.ctl(["status"]).status == 0)

            // Down: stopped cleanly, the daemon clears its report, so this is known at once (not 30 s later).
            #expect(await h.daemon.stop() == 0)
            let stopped = try await h.daemon.ctl(["status", "--json"])
            #expect(stopped.status == 2, "\(stopped.stdout)\(stopped.stderr)")
            let down = Self.json(stopped)
            #expect(down["verdict"] as? String == "down" && down["daemonRunning"] as? Bool == false)
            #expect((down["reasons"] as? [String])?.first?.hasPrefix("outlawd is not running") == true, "\(down)")
            #expect(down["daemonVersion"] is NSNull || down["daemonVersion"] == nil)
        }
    }

    @Test func aKilledDaemonIsDownAtOnce() async throws {
        // No Metrc address or keys: running, it is degraded (uploads wait); killed, its last report stays behind.
        let daemon = try await DaemonProcess(server: "")
        let running = try await daemon.ctl(["status", "--json"])
        #expect(running.status == 1, "\(running.stdout)\(running.stderr)")
        let reasons = Self.json(running)["reasons"] as? [String] ?? []
        #expect(reasons.contains { $0.hasPrefix("no Metrc address (metrc.base_url in \(daemon.configPath))") }, "\(reasons)")
        #expect(reasons.contains { $0.hasPrefix("uploads wait for the Metrc keys: put them in a file metrc.vendor_key_file names") }, "\(reasons)")
        let pid = daemon.pid
        await daemon.kill9()
        let killed = try await daemon.ctl(["status", "--json"])
        #expect(killed.status == 2)
        let down = Self.json(killed)["reasons"] as? [String] ?? []
        #expect(down.first?.hasPrefix("outlawd (pid \(pid)) is not running: it ended without stopping cleanly") == true, "\(down)")
    }

    /// What systemd gives a fresh installation under the unit: each Metrc credential a newline (SetCredential=).
    @Test func aFreshInstallationStoresAndAcksAndNamesTheKeyFiles() async throws {
        let dir = try TempDirectory("outlawd-fresh")
        try dir.write("credentials/metrc-vendor-key", "\n")
        try dir.write("credentials/metrc-default-key", "\n")
        let environment = ["CREDENTIALS_DIRECTORY": dir.file("credentials")]
        let daemon = try await DaemonProcess(metrc: "base_url = \"https://api-ca.metrc.com\"", directory: dir, environment: environment)
        try await daemon.whileRunning { daemon in
            let sentence = "uploads wait for the Metrc keys: put them in /etc/outlawd/credentials/metrc-vendor-key and "
                + "/etc/outlawd/credentials/metrc-default-key (root only, 0600), then systemctl reload outlawd; batches are stored and acknowledged meanwhile"

            let token = try await daemon.addCrew(users: [CrewMember("jane")]).token
            let (c, welcome) = try await daemon.session(device: "HH-1", token: token)
            #expect(welcome["op"] as? String == "welcome")
            try c.send(json: ["op": "batch", "id": "fresh-1", "user": "jane", "events": [Events.move(1, plant: Tags.plant(1))]])
            let ack = try await c.readJSON()
            #expect(ack["op"] as? String == "ack", "\(ack)")

            // Said once at start, as a warning naming the files an operator fills (not systemd's private copies).
            let said = daemon.log.split(separator: "\n").filter { $0.contains("uploads wait for the Metrc keys") }
            #expect(said.count == 1 && said.first?.hasPrefix("warning outlawd: ") == true && said.first?.contains(sentence) == true, "\(said)")
            #expect(!daemon.log.contains(dir.file("credentials")), "systemd's copies are not what an operator edits")

            let status = try await daemon.ctl(["status", "--json"])
            #expect(status.status == 1)
            let shown = Self.json(status)
            #expect(shown["verdict"] as? String == "degraded" && shown["reasons"] as? [String] == [sentence], "\(shown)")
            #expect((shown["queue"] as? [String: Any])?["queued"] as? Int == 1, "\(shown)")

            // The check the unit runs first, with the same credentials: usable, and the same sentence as a warning.
            var env = ProcessInfo.processInfo.environment
            env["CREDENTIALS_DIRECTORY"] = dir.file("credentials")
            let check = try await runCommand(Binaries.path("outlawd"), ["--check-config", "--config", daemon.configPath], environment: env)
            #expect(check.status == 0, "\(check.stderr)")
            // (Beside the test's own require_login_ticket = false.)
            #expect(check.stdout.hasSuffix("outlawd: warning: \(sentence)\noutlawd: \(daemon.configPath): configuration OK\n"), "\(check.stdout)")
            #expect(await daemon.stop() == 0)
        }
    }
}

/// `outlawd --check-config` against a complete site (TLS, store key, Metrc keys) and one fault at a time.
@Suite("outlawd --check-config", .timeLimit(.minutes(5)))
struct ConfigCheckTests {
    let dir: TempDirectory

    init() async throws {
        dir = try TempDirectory("outlawd-check")
        try FileManager.default.createDirectory(atPath: dir.file("tls"), withIntermediateDirectories: true)
        try await Self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", dir.file("tls/key.pem"),
                          "-out", dir.file("tls/cert.pem"), "-days", "2", "-subj", "/CN=outlawd-test"])
        try dir.write("secrets/store-key", String(repeating: "5a", count: 32) + "\n")
        try dir.write("secrets/vendor-key", "vendor-key-for-tests\n")
        try dir.write("secrets/default-key", "default-key-for-tests\n")
    }

    /// openssl off the cooperative pool (runCommand): a blocked pool thread stalls every other test's async work.
    static func openssl(_ arguments: [String]) async throws {
        let r = try await runCommand("/usr/bin/openssl", arguments)
        guard r.status == 0 else { throw LineClient.Failure(description: "openssl \(arguments.first ?? ""): \(r.stderr)") }
    }

    /// The complete configuration, with settings replaced (a nil value drops the setting).
    func config(_ changes: [String: String?] = [:]) throws -> String {
        let settings: [(String, [(String, String)])] = [
            ("server", [("listen", "\"0.0.0.0:7420\""), ("tls_certificate_file", "\"tls/cert.pem\""), ("tls_key_file", "\"tls/key.pem\""),
                        ("allow_plaintext", "")]),
            ("store", [("path", "\"state/outlawd.sqlite\""), ("key_file", "\"secrets/store-key\"")]),
            ("facility", [("license", "\"LIC-0001\"")]),
            ("metrc", [("base_url", "\"https://api-ca.metrc.com\""), ("vendor_key_file", "\"secrets/vendor-key\""),
                       ("default_key_file", "\"secrets/default-key\"")]),
        ]
        var text = ""
        for (section, pairs) in settings {
            text += "[\(section)]\n"
            for (key, value) in pairs {
                let chosen = changes.keys.contains("\(section).\(key)") ? changes["\(section).\(key)"]! : value
                if let chosen, !chosen.isEmpty { text += "\(key) = \(chosen)\n" }
            }
        }
        return try dir.write("outlawd.toml", text)
    }

    /// Runs the check as the unit's ExecStartPre does, outside systemd: no credentials, the configured files.
    func check(_ path: String, wrapper: [String] = []) async throws -> CommandResult {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "CREDENTIALS_DIRECTORY")
        let command = wrapper + [Binaries.path("outlawd"), "--check-config", "--config", path]
        return try await runCommand(command[0], Array(command.dropFirst()), environment: env)
    }

    func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    @Test func aCompleteSiteIsOK() async throws {
        let path = try config()
        let r = try await check(path)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        #expect(r.stdout == "outlawd: \(path): configuration OK\n")
        #expect(!r.stdout.contains("key-for-tests") && !r.stderr.contains("key-for-tests"))
    }

    @Test func aParseErrorIsOneLine() async throws {
        let path = try dir.write("outlawd.toml", "[server]\nlisten = \"127.0.0.1:7420\"\nlistne = 1\n")
        let r = try await check(path)
        #expect(r.status == 2 && r.stdout.isEmpty)
        #expect(lines(r.stderr).count == 1 && r.stderr.hasPrefix("outlawd: \(path): "), "\(r.stderr)")
    }

    @Test func aStoreKeyThatIsNotAKey() async throws {
        try dir.write("secrets/store-key", "not a key\n")
        let path = try config()
        let r = try await check(path)
        #expect(r.status == 2 && r.stdout.isEmpty)
        #expect(r.stderr == "outlawd: \(path): store.key_file: \(dir.file("secrets/store-key")) must hold 32 bytes as 64 hex characters "
            + "or base64 (openssl rand -hex 32)\n", "\(r.stderr)")
        #expect(!r.stderr.contains("not a key"))
    }

    @Test func aMetrcKeyFileThatCannotBeRead() async throws {
        try FileManager.default.removeItem(atPath: dir.file("secrets/vendor-key"))
        try FileManager.default.createDirectory(atPath: dir.file("secrets/vendor-key"), withIntermediateDirectories: true)
        let path = try config()
        let r = try await check(path)
        #expect(r.status == 2 && r.stdout.isEmpty)
        let all = lines(r.stderr)
        #expect(all.first == "outlawd: \(path): metrc.vendor_key_file: \(dir.file("secrets/vendor-key")) is a folder, not a file", "\(all)")
        // Then what the daemon would run without, as a warning.
        #expect(all.dropFirst().map { $0.hasPrefix("outlawd: warning: uploads wait for the Metrc vendor key: put it in \(dir.file("secrets/vendor-key"))") }
            == [true], "\(all)")
    }

    @Test func missingMetrcKeysAndAddressAreOnlyWarnings() async throws {
        try FileManager.default.removeItem(atPath: dir.file("secrets/vendor-key"))
        try "\n".write(toFile: dir.file("secrets/default-key"), atomically: true, encoding: .utf8)
        let path = try config(["metrc.base_url": nil])
        let r = try await check(path)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        #expect(lines(r.stdout) == [
            "outlawd: warning: no Metrc address (metrc.base_url in \(path)): batches are stored and acknowledged, and uploaded once it is set and outlawd restarted",
            "outlawd: warning: uploads wait for the Metrc keys: put them in \(dir.file("secrets/vendor-key")) and \(dir.file("secrets/default-key")) "
                + "(root only, 0600), then systemctl reload outlawd; batches are stored and acknowledged meanwhile",
            "outlawd: \(path): configuration OK",
        ], "\(r.stdout)")
    }

    @Test func aBackupFolderThatCannotBeMade() async throws {
        let path = try config()
        // Under a file: nobody can make that folder (root included, so the check does not depend on who runs it).
        try (try String(contentsOfFile: path, encoding: .utf8) + "[backup]\ndir = \"tls/cert.pem/copies\"\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r = try await check(path)
        #expect(r.status == 2)
        #expect(r.stderr == "outlawd: \(path): backup.dir: \(dir.file("tls/cert.pem")) is not a folder, so \(dir.file("tls/cert.pem/copies")) cannot be made\n",
                "\(r.stderr)")
    }

    @Test func aMissingCertificate() async throws {
        let path = try config(["server.tls_certificate_file": "\"tls/missing.pem\""])
        let r = try await check(path)
        #expect(r.status == 2)
        #expect(r.stderr == "outlawd: \(path): server.tls_certificate_file: \(dir.file("tls/missing.pem")) does not exist\n", "\(r.stderr)")
    }

    @Test func aCertificateThatIsNotPEMAndAMissingKey() async throws {
        try dir.write("tls/cert.pem", "not a certificate\n")
        let path = try config(["server.tls_key_file": "\"tls/none.pem\""])
        let r = try await check(path)
        #expect(r.status == 2)
        let all = lines(r.stderr)
        #expect(all.count == 2, "one line per problem: \(all)")
        #expect(all.first?.hasPrefix("outlawd: \(path): server.tls_certificate_file: \(dir.file("tls/cert.pem")) is not a PEM certificate") == true, "\(all)")
        #expect(all.last == "outlawd: \(path): server.tls_key_file: \(dir.file("tls/none.pem")) does not exist", "\(all)")
    }

    @Test func aKeyOfAnotherCertificate() async throws {
        try await Self.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", dir.file("tls/other.pem")])
        let path = try config(["server.tls_key_file": "\"tls/other.pem\""])
        let r = try await check(path)
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("outlawd: \(path): server.tls_certificate_file: cannot load the TLS certificate or key (does the key belong to the certificate?)"),
                "\(r.stderr)")
    }

    @Test func plainTCPOnEveryAddress() async throws {
        let path = try config(["server.tls_certificate_file": nil, "server.tls_key_file": nil])
        let refused = try await check(path)
        #expect(refused.status == 2)
        #expect(refused.stderr == "outlawd: \(path): server.tls_certificate_file: devices would connect without TLS on a network address (device tokens "
            + "and PINs in clear): configure TLS, or set server.allow_plaintext = true\n", "\(refused.stderr)")
        let allowed = try await check(try config(["server.tls_certificate_file": nil, "server.tls_key_file": nil, "server.allow_plaintext": "true"]))
        #expect(allowed.status == 0)
        #expect(allowed.stdout.hasPrefix("outlawd: warning: \(path): server.allow_plaintext: devices connect WITHOUT TLS on 0.0.0.0"), "\(allowed.stdout)")
        let loopback = try await check(try config(["server.tls_certificate_file": nil, "server.tls_key_file": nil, "server.listen": "\"127.0.0.1:7420\""]))
        #expect(loopback.status == 0 && loopback.stdout == "outlawd: \(path): configuration OK\n", "\(loopback.stdout)\(loopback.stderr)")
    }

    @Test func aStoreFolderThatCannotBeMade() async throws {
        try dir.write("blocker", "a file where a folder should be\n")
        let path = try config(["store.path": "\"blocker/state/outlawd.sqlite\""])
        let r = try await check(path)
        #expect(r.status == 2)
        #expect(r.stderr == "outlawd: \(path): store.path: \(dir.file("blocker")) is not a folder, so the store's folder "
            + "\(dir.file("blocker/state")) cannot be made\n", "\(r.stderr)")
    }

    @Test func anUnwritableStoreFolder() async throws {
        try FileManager.default.createDirectory(atPath: dir.file("state"), withIntermediateDirectories: true)
        let path = try config()
        let r: CommandResult
        let why: String
        if getuid() == 0 {
            // Root writes through any mode: a read-only mount is what stops it (as ProtectSystem=strict does for a store
            // outside the unit's StateDirectory), in a mount namespace of the check's own.
            let probe = try await runCommand("/usr/bin/unshare", ["-m", "true"])
            try #require(probe.status == 0, "needs unshare -m as root: \(probe.stderr)")
            r = try await check(path, wrapper: ["/usr/bin/unshare", "-m", "/bin/sh", "-c",
                                                "mount -t tmpfs -o ro tmpfs \"$0\" && exec \"$@\"", dir.file("state")])
            why = "Read-only file system"
        } else {
            chmod(dir.file("state"), 0o500)
            defer { chmod(dir.file("state"), 0o700) }
            r = try await check(path)
            why = "Permission denied"
        }
        #expect(r.status == 2)
        #expect(r.stderr == "outlawd: \(path): store.path: the store's folder \(dir.file("state")) is not writable: \(why)\n", "\(r.stderr)")
    }

    @Test func notWithDevMode() async throws {
        let r = try await runCommand(Binaries.path("outlawd"), ["--check-config", "--dev"])
        #expect(r.status == 2 && r.stderr == "outlawd: --check-config checks a configuration file, not --dev\n", "\(r.stderr)")
    }
}

/// The repository's root, from this file's path.
enum TestSupportPaths {
    static var root: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}
