import Foundation
import OutlawTestSupport
import Testing

/// scripts/bootstrap, which both README commands run first, with `dpkg-query` and `apt-get` stood in for so the
/// machine's own packages are not touched.
@Suite("scripts/bootstrap", .timeLimit(.minutes(5)))
struct BootstrapTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// A folder of fake tools: `dpkg-query` says only `installed` is installed; `apt-get` records its arguments;
    /// `python3` has selenium (every call succeeds), so no test reaches PyPI.
    /// A child shell writes them: a script this process had open for writing while another test forked would
    /// be "Text file busy" to exec for as long as that child held the inherited descriptor.
    static func fakeTools(installed: [String]) async throws -> TempDirectory {
        let dir = try TempDirectory("bootstrap-fakes")
        let query = """
            #!/bin/sh
            for a; do package=$a; done
            for p in \(installed.joined(separator: " ")); do [ "$package" = "$p" ] && { printf 'install ok installed'; exit 0; }; done
            exit 1

            """
        let apt = "#!/bin/sh\necho \"$@\" >> \(dir.file("apt-calls"))\n"
        let python = "#!/bin/sh\necho \"$@\" >> \(dir.file("python-calls"))\n"
        let written = try await runCommand("/bin/sh", [
            "-c", #"printf '%s' "$2" > "$1/dpkg-query" && printf '%s' "$3" > "$1/apt-get" && printf '%s' "$4" > "$1/python3" && chmod 755 "$1" "$1/dpkg-query" "$1/apt-get" "$1/python3""#,
            "sh", dir.path, query, apt, python,
        ])
        guard written.status == 0 else { throw LineClient.Failure(description: "cannot write the fake tools: \(written.stderr)") }
        return dir
    }

    static func environment(_ fakes: TempDirectory) -> [String: String] {
        ["PATH": fakes.path + ":/usr/bin:/bin", "HOME": "/tmp"]
    }

    @Test func asRootItInstallsOnlyWhatIsMissing() async throws {
        try #require(getuid() == 0, "runs as root, as CI does")
        let fakes = try await Self.fakeTools(installed: ["libsqlite3-dev", "pkg-config"])
        let run = try await runCommand("/bin/bash", [Self.repository + "/scripts/bootstrap", "--test"], environment: Self.environment(fakes))
        #expect(run.status == 0, "\(run.stderr)")
        let calls = try String(contentsOfFile: fakes.file("apt-calls"), encoding: .utf8)
        #expect(calls.contains("update"))
        let install = try #require(calls.split(separator: "\n").first { $0.contains("install") })
        for wanted in ["libsystemd-dev", "libssl-dev", "zlib1g-dev", "systemd", "util-linux", "curl", "openssl", "sqlite3", "prometheus",
                       "chromium", "chromium-driver"] {
            #expect(install.contains(wanted), "\(install)")
        }
        #expect(!install.contains("libsqlite3-dev") && !install.contains("pkg-config"))
    }

    @Test func withNothingMissingItDoesNothing() async throws {
        let all = ["libsqlite3-dev", "libsystemd-dev", "libssl-dev", "zlib1g-dev", "pkg-config", "systemd", "util-linux", "curl", "openssl",
                   "sqlite3", "prometheus", "lintian", "chromium", "chromium-driver"]
        let fakes = try await Self.fakeTools(installed: all)
        let run = try await runCommand("/bin/bash", [Self.repository + "/scripts/bootstrap", "--test"], environment: Self.environment(fakes))
        #expect(run.status == 0 && run.stderr.isEmpty, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fakes.file("apt-calls")))
        let python = try String(contentsOfFile: fakes.file("python-calls"), encoding: .utf8)
        #expect(python.contains("import selenium") && !python.contains("pip"), "\(python)")
    }

    @Test func notRootItPrintsTheOneSudoLineAndStops() async throws {
        try #require(getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root to become nobody")
        let fakes = try await Self.fakeTools(installed: ["libsqlite3-dev"])
        let started = ContinuousClock.now
        let run = try await runCommand("/usr/bin/setpriv", [
            "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash", Self.repository + "/scripts/bootstrap",
        ], environment: Self.environment(fakes))
        #expect(run.status == 1)
        #expect(run.stderr.contains("sudo apt-get install -y libsystemd-dev libssl-dev zlib1g-dev pkg-config"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fakes.file("apt-calls")), "never tries apt-get without root")
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
