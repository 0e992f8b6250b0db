import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The Debian package (scripts/package) installed, upgraded under load, removed and purged with dpkg
/// under a real, booted systemd: the secrets its postinst makes (TLS certificate and key, store key) and
/// keeps, handhelds over TLS pinning that certificate, their batches carrying login tickets. The packages
/// are made from the debug binaries next to the test runner (dynamically linked to the toolchain's Swift
/// runtime, which the box sees: it shares the host's file system), without manual pages; what they hold
/// is otherwise what operators get. With OUTLAWD_PACKAGE_DEB naming a .deb (scripts/release-package-test:
/// the release build's), that package is the one installed, and the upgrade installs the same package
/// repacked with a higher version.
@Suite(
    "Debian package",
    .enabled(if: SystemdBox.available, "needs root, systemd and scripts/systemd-box"),
    .enabled(if: DebianTools.present, "needs dpkg and dpkg-deb"),
    .enabled(if: RealSystemdTests.outlawdBuilt, "outlawd/outlawctl not built next to the test runner yet"))
struct PackageTests {
    static var script: String { TestSupport.repositoryRoot() + "/scripts/package" }
    static let config = "/etc/outlawd/outlawd.toml"
    static let certificate = "/etc/outlawd/tls/outlawd.pem"
    static let tlsKey = "/etc/outlawd/credentials/outlawd-tls-key"
    static let storeKey = "/etc/outlawd/credentials/outlawd-store-key"
    /// OUTLAWD_PACKAGE_DEB: a package to test instead of those made from the debug binaries.
    static var givenDeb: String? {
        ProcessInfo.processInfo.environment["OUTLAWD_PACKAGE_DEB"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Runs scripts/package on the debug binaries (it prints the .deb's path last).
    static func buildPackage(version: String, out: String, extra: [String] = []) async throws -> TestSupport.Output {
        try await TestSupport.run(script, [
            "--bin-dir", TestSupport.buildDirectory, "--version", version, "--out", out, "--no-man",
            "--compression", "none",
        ] + extra)
    }

    /// outlawctl in the box as the service's own dynamic user, in its state directory, with the store key and the
    /// vendor key as credentials (that user cannot read root's files), as docs/operations.md's `ctl` does.
    static let admin = [
        "systemd-run", "--wait", "--pipe", "--quiet", "-p", "DynamicUser=yes", "-p", "User=outlawd",
        "-p", "StateDirectory=outlawd", "-p", "StateDirectoryMode=0700",
        "-p", "LoadCredential=outlawd-store-key:/etc/outlawd/credentials/outlawd-store-key",
        "-p", "LoadCredential=metrc-vendor-key:/etc/outlawd/credentials/metrc-vendor-key",
        "/usr/bin/outlawctl",
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
        var versions: [String] = []
        if let given = Self.givenDeb {
            // The given package, and the same repacked with a higher version for the upgrade.
            let version = try await TestSupport.run("/usr/bin/dpkg-deb", ["-f", given, "Version"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try #require(!version.isEmpty, "no Version in \(given)")
            versions = [version, version + "+upgrade1"]
            debPaths = [debs + "/" + (given as NSString).lastPathComponent, debs + "/outlawd-upgrade.deb"]
            try FileManager.default.createDirectory(atPath: debs, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: given, toPath: debPaths[0])
            let repack = try await TestSupport.run("/bin/sh", ["-c", #"""
                set -e; d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
                dpkg-deb -R "$1" "$d/root"
                sed -i "s/^Version: .*/Version: $2/" "$d/root/DEBIAN/control"
                dpkg-deb --root-owner-group -Znone -b "$d/root" "$3" >/dev/null
                """#, "sh", given, versions[1], debPaths[1]])
            try #require(repack.status == 0, "repacking \(given): \(repack.stderr)")
            print("PackageTests: testing \(given) (\(version)); repacked as \(versions[1]) in \(started.duration(to: .now))")
        } else {
            versions = ["0.1.0~test1", "0.1.0~test2"]
            for version in versions {
                let made = try await Self.buildPackage(version: version, out: debs, extra: ["--allow-toolchain-runtime"])
                try #require(made.status == 0, "scripts/package: \(made.stderr)")
                let path = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(path.hasPrefix(debs + "/outlawd_\(version)_") && path.hasSuffix(".deb"), "\(path)")
                debPaths.append(path)
            }
            print("PackageTests: two packages built in \(started.duration(to: .now))")
        }
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
            try await lifecycle(
                box: box, port: port, debs: debPaths.map { "/debs/" + ($0 as NSString).lastPathComponent }, versions: versions, work: work)
        } catch {
            try? await box.stop()
            throw error
        }
        try await box.stop()
    }

    /// What the package holds, read on the host.
    func checkContents(deb: String, work: String) async throws {
        let depends = try await TestSupport.run("/usr/bin/dpkg-deb", ["-f", deb, "Depends"]).stdout
        // openssl: the postinst makes the TLS certificate and the store key with it; init-system-helpers: the maintainer
        // scripts' deb-systemd-helper and deb-systemd-invoke.
        for library in ["libc6", "libsqlite3-0", "libsystemd0", "openssl", "init-system-helpers"] {
            #expect(depends.contains(library), "Depends: \(depends)")
        }
        let conffiles = try await TestSupport.run("/usr/bin/dpkg-deb", ["-I", deb, "conffiles"]).stdout
        #expect(conffiles.trimmingCharacters(in: .whitespacesAndNewlines) == Self.config)
        let listing = try await TestSupport.run("/usr/bin/dpkg-deb", ["-c", deb]).stdout
        // Where Debian puts them: the daemon in /usr/sbin, docs compressed, the Debian changelog, lintian's overrides;
        // the manual pages when the package was made with them (the release package).
        var paths = [
            "./usr/sbin/outlawd", "./usr/bin/outlawctl", "./usr/lib/systemd/system/outlawd.service",
            "./usr/lib/systemd/system/outlawd.socket", "./etc/outlawd/outlawd.toml",
            "./usr/share/doc/outlawd/README.md.gz", "./usr/share/doc/outlawd/operations.md.gz", "./usr/share/doc/outlawd/copyright",
            "./usr/share/doc/outlawd/changelog.Debian.gz", "./usr/share/lintian/overrides/outlawd",
            "./usr/share/bash-completion/completions/outlawctl", "./usr/share/zsh/vendor-completions/_outlawctl",
            "./usr/share/fish/vendor_completions.d/outlawctl.fish",
        ]
        if Self.givenDeb != nil {
            paths += ["./usr/share/man/man8/outlawd.8.gz", "./usr/share/man/man1/outlawctl.1.gz"]
        }
        for path in paths {
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

    /// install → a handheld's ack over TLS → upgrade under load → remove → reinstall → purge → purge with the state.
    func lifecycle(box: SystemdBox, port: UInt16, debs: [String], versions: [String], work: String) async throws {
        // The box is the host's file system: a policy-rc.d there (Docker images have one saying 101) would keep
        // deb-systemd-invoke from starting anything. The box's writes vanish with it.
        try #require(try await box.run(["rm", "-f", "/usr/sbin/policy-rc.d"]).status == 0)

        // Installation: the socket is enabled and listening; the credentials folder is root's.
        let install = try await box.run(["dpkg", "-i", debs[0]])
        try #require(install.status == 0, "dpkg -i: \(install.stdout)\(install.stderr)")
        #expect(install.stdout.contains("Before the first handheld connects"), "\(install.stdout)")
        #expect(try await box.output(["dpkg-query", "-W", "-f", "${Version}", "outlawd"]) == versions[0])
        #expect(try await box.output(["systemctl", "is-enabled", "outlawd.socket"]) == "enabled")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "active")
        #expect(try await box.output(["stat", "-c", "%a %U", "/etc/outlawd/credentials"]) == "700 root")
        #expect(try await box.show("outlawd.service", "ExecStart").contains("path=/usr/sbin/outlawd ;"))
        let unit = try await box.output(["cat", "/usr/lib/systemd/system/outlawd.service"])
        let repoUnit = try String(contentsOfFile: TestSupport.repositoryRoot() + "/systemd/outlawd.service", encoding: .utf8)
        // Every Exec line naming the hand-installed /usr/local/bin/outlawd names the package's /usr/sbin/outlawd.
        #expect(unit == repoUnit.replacingOccurrences(of: "=/usr/local/bin/outlawd ", with: "=/usr/sbin/outlawd ")
            .trimmingCharacters(in: .whitespacesAndNewlines), "the packaged unit is the repository's but for its Exec lines' /usr/sbin/outlawd")

        // The secrets postinst made: root-only keys, a public certificate, and the one line about them.
        let secrets = try await checkSecrets(box: box)
        #expect(install.stdout.contains("back up \(Self.storeKey) apart from the store (/var/lib/outlawd)")
            && install.stdout.contains("outlawctl tls fingerprint"), "postinst's line about the store key: \(install.stdout)")
        #expect(!install.stderr.contains("turns no TLS on"), "the shipped outlawd.toml turns TLS on: \(install.stderr)")
        // The handhelds' copy of the certificate, which they pin.
        let pinned = work + "/pinned.pem"
        try (try await box.output(["cat", Self.certificate]) + "\n").write(toFile: pinned, atomically: true, encoding: .utf8)

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
        // creates its store; the packaged configuration loads as it is, TLS on.
        let start = try await box.run(["systemctl", "start", "outlawd.service"])
        if start.status != 0 {
            let journal = try await box.output(["journalctl", "--no-pager", "-u", "outlawd", "-n", "40"])
            Issue.record("systemctl start outlawd.service: \(start.stderr)\njournal:\n\(journal)")
        }
        try #require(start.status == 0)
        let credentials = try await box.output(["ls", "/run/credentials/outlawd.service"])
        #expect(credentials.split(separator: "\n").sorted() == ["metrc-default-key", "metrc-vendor-key", "outlawd-store-key", "outlawd-tls-key"])
        let tlsLine = try await TestSupport.eventually(timeout: .seconds(10)) {
            try await box.output(["journalctl", "--no-pager", "-o", "cat", "-u", "outlawd"]).contains("devices connect over TLS") ? true : nil
        }
        #expect(tlsLine == true, "no 'devices connect over TLS' in outlawd's journal")
        let status = try await box.run(Self.admin + ["status", "--config", Self.config])
        // Running: healthy or degraded (Metrc is a closed port here), never down (exit 2).
        #expect([0, 1].contains(status.status) && !status.stderr.contains("outlawd.toml"), "outlawctl status: \(status.stdout)\(status.stderr)")
        try #require(try await box.run(Self.admin + ["pause", "--config", Self.config]).status == 0)
        let device = try await box.run(Self.admin + ["device", "add", "HH-0042", "--config", Self.config])
        try #require(device.status == 0, "outlawctl device add: \(device.stderr)")
        let token = try #require(device.stdout.split(whereSeparator: \.isWhitespace).last.map(String.init))
        let user = try await box.run(Self.admin + ["user", "add", "jane", "--role", "user", "--config", Self.config], stdin: "4821\n")
        try #require(user.status == 0, "outlawctl user add: \(user.stderr)")

        // The fingerprint outlawctl shows the operator is the one the port presents in the TLS handshake.
        let shown = try await box.run(["/usr/bin/outlawctl", "tls", "fingerprint", "--json", "--config", Self.config])
        try #require(shown.status == 0, "outlawctl tls fingerprint: \(shown.stderr)")
        let fingerprint = try #require(
            (try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])?["sha256"] as? String, "\(shown.stdout)")
        #expect(fingerprint == secrets.fingerprint)
        let handshake = try await Self.handshake(port: port, pinned: pinned, work: work)
        #expect(handshake.fingerprint == fingerprint, "the port presents \(handshake.fingerprint), outlawctl shows \(fingerprint)")
        #expect(["TLSv1.2", "TLSv1.3"].contains(handshake.version), "negotiated \(handshake.version)")
        // Plain TCP gets no welcome: the port speaks TLS only.
        let plain = try await TestSupport.offPool { () -> String in
            let (conn, result) = Handheld.open(port: port)
            guard let conn else { return "connect: \(result)" }
            _ = conn.send(#"{"op":"hello","proto":1,"device":"HH-0042","token":"\#(token)","firmware":"3.2.1"}"#)
            return conn.read()?["op"] as? String ?? "closed"
        }
        #expect(plain != "welcome", "a plain TCP hello was welcomed")

        // A batch without a ticket is refused: login_required, nothing stored.
        let unticketed = try await TestSupport.offPool { () -> String in
            let (conn, result) = Handheld.openTLS(port: port, pinned: pinned)
            guard let conn else { return "connect: \(result)" }
            guard conn.hello(token: token) else { return "no welcome (s_client: \(conn.clientErrorText))" }
            guard conn.send(Handheld.batch("b-no-ticket")) else { return "send failed" }
            let answer = conn.read()
            _ = conn.send(#"{"op":"bye"}"#)
            return answer?["code"] as? String ?? "\(answer ?? [:])"
        }
        #expect(unticketed == "login_required")

        // A handheld connects over TLS, pinning the certificate: hello, jane's login, her batch with its ticket, ack.
        let first = try await TestSupport.offPool { try Handheld.oneBatch(port: port, pinned: pinned, token: token, id: "b-first") }
        if first != "ack" {
            let journal = try await box.output(["journalctl", "--no-pager", "-u", "outlawd", "-n", "40"])
            Issue.record("first batch: \(first); journal:\n\(journal)")
        }
        #expect(first == "ack")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "active")
        let firstPID = try await box.show("outlawd.service", "MainPID")

        // The upgrade, while a handheld sends batch after batch (one login: its ticket outlives the restart).
        let run = HandheldRun()
        async let loop = TestSupport.offPool { Handheld.loop(port: port, pinned: pinned, token: token, run: run) }
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
        #expect(try await box.output(["dpkg-query", "-W", "-f", "${Version}", "outlawd"]) == versions[1])
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "active")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "active")
        #expect(try await box.show("outlawd.socket", "NRefused") == "0")
        let secondPID = try await box.show("outlawd.service", "MainPID")
        #expect(secondPID != firstPID && secondPID != "0", "outlawd.service was not restarted")
        #expect(!upgrade.stdout.contains("Before the first handheld connects"))
        // The upgrade kept every secret (the handhelds' pin still holds) and made none.
        #expect(try await checkSecrets(box: box) == secrets, "the upgrade changed the certificate or a key")
        #expect(!upgrade.stdout.contains("back up"), "\(upgrade.stdout)")

        // Removal: stopped, disabled, units and binaries gone; the configuration and the store stay.
        let remove = try await box.run(["dpkg", "-r", "outlawd"])
        try #require(remove.status == 0, "dpkg -r: \(remove.stdout)\(remove.stderr)")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "inactive")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.service"]) == "inactive")
        #expect(try await box.show("outlawd.socket", "LoadState") == "not-found")
        for gone in [
            "/usr/lib/systemd/system/outlawd.service", "/usr/lib/systemd/system/outlawd.socket",
            "/etc/systemd/system/sockets.target.wants/outlawd.socket", "/usr/sbin/outlawd", "/usr/bin/outlawctl",
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
        #expect(try await checkSecrets(box: box) == secrets, "the reinstallation changed the certificate or a key")
        #expect(try await TestSupport.offPool { try Handheld.oneBatch(port: port, pinned: pinned, token: token, id: "b-again") } == "ack")

        // Purge: the configuration and credentials go; the store stays, and so does the store key.
        let storeKey = Self.storeKey
        let purge = try await box.run(["dpkg", "-P", "outlawd"])
        try #require(purge.status == 0, "dpkg -P: \(purge.stdout)\(purge.stderr)")
        #expect(try await box.run(["dpkg", "-s", "outlawd"]).status != 0, "still known to dpkg")
        #expect(try await box.output(["find", "/etc/outlawd"]).split(separator: "\n").sorted()
            == ["/etc/outlawd", "/etc/outlawd/credentials", storeKey].sorted().map { Substring($0) })
        #expect(try await box.run(["test", "-f", "/var/lib/private/outlawd/outlawd.sqlite"]).status == 0, "the store stays after a purge")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "inactive")
        #expect(try await box.run(["test", "-e", "/var/lib/systemd/deb-systemd-helper-enabled/outlawd.socket.dsh-also"]).status != 0,
                "deb-systemd-helper's state is still there after the purge")

        // Installed after the purge, where policy-rc.d forbids starting services (an image build): enabled, not
        // started (deb-systemd-invoke asks policy-rc.d). Then started by hand. The kept store key is the one the
        // kept store needs; the certificate is new.
        try #require(try await box.run(["sh", "-c", "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d"]).status == 0)
        let third = try await box.run(["dpkg", "-i", debs[1]])
        try #require(third.status == 0, "dpkg -i after -P: \(third.stdout)\(third.stderr)")
        #expect(try await box.output(["systemctl", "is-enabled", "outlawd.socket"]) == "enabled")
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "inactive", "started although policy-rc.d says 101")
        try #require(try await box.run(["rm", "/usr/sbin/policy-rc.d"]).status == 0)
        try #require(try await box.run(["systemctl", "start", "outlawd.socket"]).status == 0)
        #expect(try await box.output(["systemctl", "is-active", "outlawd.socket"]) == "active")
        let renewed = try await checkSecrets(box: box)
        #expect(renewed.storeKey == secrets.storeKey, "the store key kept by the purge was replaced")
        #expect(renewed.fingerprint != secrets.fingerprint && renewed.tlsKey != secrets.tlsKey, "a new certificate and key after the purge")

        // Purge asked to delete the state too.
        let purgeAll = try await box.run(["env", "OUTLAWD_PURGE_STATE=yes", "dpkg", "-P", "outlawd"])
        try #require(purgeAll.status == 0, "dpkg -P with OUTLAWD_PURGE_STATE=yes: \(purgeAll.stdout)\(purgeAll.stderr)")
        for gone in ["/var/lib/private/outlawd", "/var/lib/outlawd", "/etc/outlawd"] {
            #expect(try await box.run(["test", "-e", gone, "-o", "-L", gone]).status != 0, "\(gone) is still there")
        }
    }

    /// What the handhelds and the store depend on: hashes of the two keys, the certificate's fingerprint.
    struct Secrets: Equatable {
        var storeKey: String
        var tlsKey: String
        var fingerprint: String
    }

    /// The secrets postinst makes, as docs/operations.md describes them: modes, owner, forms; their hashes.
    func checkSecrets(box: SystemdBox) async throws -> Secrets {
        #expect(try await box.output(["stat", "-c", "%a %U %G", Self.storeKey]) == "600 root root")
        #expect(try await box.output(["stat", "-c", "%a %U %G", Self.tlsKey]) == "600 root root")
        #expect(try await box.output(["stat", "-c", "%a %U %G", Self.certificate]) == "644 root root")
        #expect(try await box.output(["stat", "-c", "%a", "/etc/outlawd/tls"]) == "755")
        let hex = try await box.output(["cat", Self.storeKey])
        #expect(hex.count == 64 && hex.allSatisfy(\.isHexDigit), "the store key is 32 bytes as hex")
        // A ten-year certificate for this host's name, localhost and 127.0.0.1, whose key is the TLS key.
        let names = try await box.output(["openssl", "x509", "-in", Self.certificate, "-noout", "-ext", "subjectAltName"])
        #expect(names.contains("DNS:localhost") && names.contains("IP Address:127.0.0.1"), "\(names)")
        #expect(try await box.run(["openssl", "x509", "-in", Self.certificate, "-noout", "-checkend", "\(9 * 365 * 86400)"]).status == 0,
                "the certificate expires within nine years")
        let certified = try await box.output(["sh", "-c", "openssl x509 -in \"$1\" -noout -pubkey | sha256sum", "sh", Self.certificate])
        let held = try await box.output(["sh", "-c", "openssl pkey -in \"$1\" -pubout | sha256sum", "sh", Self.tlsKey])
        #expect(certified == held, "the certificate is not the TLS key's")
        let fingerprint = try await box.output(["openssl", "x509", "-in", Self.certificate, "-noout", "-fingerprint", "-sha256"])
        return Secrets(
            storeKey: try await box.output(["sha256sum", Self.storeKey]), tlsKey: try await box.output(["sha256sum", Self.tlsKey]),
            fingerprint: String(fingerprint.split(separator: "=", maxSplits: 1).last ?? ""))
    }

    /// A TLS handshake with the device port, trusting only the pinned certificate: the fingerprint of the
    /// certificate it presented, and the protocol version.
    static func handshake(port: UInt16, pinned: String, work: String) async throws -> (fingerprint: String, version: String) {
        let session = try await TestSupport.run("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pinned, "-verify_return_error", "-verify_ip", "127.0.0.1",
        ], stdin: "")
        try #require(session.status == 0, "openssl s_client: \(session.stdout)\(session.stderr)")
        #expect(session.stdout.contains("Verify return code: 0 (ok)"), "\(session.stdout)")
        try session.stdout.write(toFile: work + "/handshake.txt", atomically: true, encoding: .utf8)
        // x509 reads the first certificate in s_client's output: the one the server presented.
        let presented = try await TestSupport.run("/usr/bin/openssl", ["x509", "-in", work + "/handshake.txt", "-noout", "-fingerprint", "-sha256"])
        let line = presented.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // "New, TLSv1.3, Cipher is ...": printed for every handshake (the SSL-Session block is not, when the server
        // sends no session ticket before the close).
        let version = session.stdout.split(separator: "\n").first { $0.hasPrefix("New, ") }
            .map { String($0.split(separator: ",")[1]).trimmingCharacters(in: .whitespaces) } ?? "none"
        return (String(line.split(separator: "=", maxSplits: 1).last ?? ""), version)
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

    /// The keys DaemonConfiguration accepts, read from its source (`reader.only(..., known: [...], prefix: "section")`,
    /// `prefix:` on the same line or the next).
    static func knownKeys() throws -> Set<String> {
        let source = try String(contentsOfFile: TestSupport.repositoryRoot() + "/Sources/OutlawConfig/DaemonConfiguration.swift", encoding: .utf8)
        let only = try NSRegularExpression(pattern: #"known: \[([^\]]*)\],\s*prefix: "([a-z_]+)""#)
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

/// A blocking line-JSON connection, as a handheld makes: plain TCP, or TLS through `openssl s_client`.
final class Handheld: @unchecked Sendable {  // one task at a time uses a connection
    enum Connect: Equatable { case connected, refused, failed(Int32) }

    /// Our end: the TCP socket itself, or one end of a socketpair whose other end is s_client's stdin and stdout
    /// (a socket, not pipes, so a write after s_client is gone fails with EPIPE instead of raising SIGPIPE).
    let fd: Int32
    private var buffer: [UInt8] = []
    /// s_client, for a TLS connection, and where its stderr goes.
    private let client: Process?
    private let clientErrors: String?

    private init(fd: Int32, client: Process? = nil, clientErrors: String? = nil) {
        self.fd = fd
        self.client = client
        self.clientErrors = clientErrors
    }

    deinit {
        close(fd)
        // s_client -quiet ignores the end of its stdin and would hold the connection until the daemon closes it.
        if let client, client.isRunning { client.terminate() }
        if let clientErrors { unlink(clientErrors) }
    }

    /// Connects once over plain TCP; no retries.
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
        setReadTimeout(fd)
        return (Handheld(fd: fd), .connected)
    }

    static func connect(port: UInt16) -> Connect { open(port: port).1 }

    /// A TLS connection as a handheld that pins the daemon's certificate makes it: `openssl s_client` trusting
    /// only `pinned`, checking it names 127.0.0.1, failing on any verification error. Whether it connected shows
    /// at the first answer (``refusedByPeer`` after none came).
    static func openTLS(port: UInt16, pinned: String) -> (Handheld?, Connect) {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            return (nil, .failed(errno))
        }
        let errors = "/tmp/handheld-tls-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).err"
        guard FileManager.default.createFile(atPath: errors, contents: nil), let errorHandle = FileHandle(forWritingAtPath: errors) else {
            close(ends[0])
            close(ends[1])
            return (nil, .failed(EIO))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "s_client", "-quiet", "-connect", "127.0.0.1:\(port)", "-CAfile", pinned, "-verify_return_error",
            "-verify_ip", "127.0.0.1",
        ]
        let theirs = FileHandle(fileDescriptor: ends[1], closeOnDealloc: false)
        process.standardInput = theirs
        process.standardOutput = theirs
        process.standardError = errorHandle
        do {
            try process.run()
        } catch {
            close(ends[0])
            close(ends[1])
            unlink(errors)
            return (nil, .failed(EIO))
        }
        // Only s_client holds its end now: when it exits, our reads see the end of the connection.
        close(ends[1])
        try? errorHandle.close()
        setReadTimeout(ends[0])
        return (Handheld(fd: ends[0], client: process, clientErrors: errors), .connected)
    }

    /// True when this TLS connection ended because nothing listened (s_client's connect was refused).
    var refusedByPeer: Bool {
        guard let client, let clientErrors else { return false }
        client.waitUntilExit()
        let text = (try? String(contentsOfFile: clientErrors, encoding: .utf8)) ?? ""
        return text.contains("errno=111") || text.contains("Connection refused")
    }

    /// What s_client said on stderr (handshake and verification failures), for messages.
    var clientErrorText: String {
        guard let client, let clientErrors else { return "" }
        if client.isRunning { client.terminate() }
        client.waitUntilExit()
        return ((try? String(contentsOfFile: clientErrors, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func setReadTimeout(_ fd: Int32) {
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

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

    /// jane logs in with her PIN; her ticket, or what came instead.
    func login() -> Result<String, TestFailure> {
        guard send(#"{"op":"login","user":"jane","pin":"4821"}"#) else { return .failure(TestFailure("login: send failed")) }
        guard let answer = read() else { return .failure(TestFailure("login: closed before the answer")) }
        guard answer["op"] as? String == "login", answer["ok"] as? Bool == true, let ticket = answer["ticket"] as? String, !ticket.isEmpty else {
            return .failure(TestFailure("login: \(answer)"))
        }
        return .success(ticket)
    }

    /// One of jane's batches; with her ticket when there is one (the daemon requires it by default).
    static func batch(_ id: String, ticket: String? = nil) -> String {
        let now = ISO8601DateFormatter().string(from: Date())
        let proof = ticket.map { #","ticket":"\#($0)""# } ?? ""
        return #"{"op":"batch","id":"\#(id)","user":"jane"\#(proof),"events":[{"seq":1,"type":"plant.scan","at":"\#(now)","plant":"1A4000000000000000000001"}]}"#
    }

    /// On this connection: hello, jane's login, one batch with her ticket, bye: "ack", or what happened instead.
    func oneBatch(token: String, id: String) -> String {
        guard hello(token: token) else { return client == nil ? "no welcome" : "no welcome (s_client: \(clientErrorText))" }
        let ticket: String
        switch login() {
        case .success(let t): ticket = t
        case .failure(let failure): return failure.description
        }
        guard send(Handheld.batch(id, ticket: ticket)) else { return "send failed" }
        guard let answer = read() else { return "closed before the answer" }
        _ = send(#"{"op":"bye"}"#)
        return answer["op"] as? String == "ack" && answer["id"] as? String == id ? "ack" : "\(answer)"
    }

    /// One TLS connection, one batch: "ack", or what happened instead.
    static func oneBatch(port: UInt16, pinned: String, token: String, id: String) throws -> String {
        let (conn, result) = openTLS(port: port, pinned: pinned)
        guard let conn else { return "connect: \(result)" }
        return conn.oneBatch(token: token, id: id)
    }

    /// Sends batches one after another over TLS, each until acknowledged (reconnecting and resending when the
    /// daemon ends the connection), until asked to stop; at most three minutes. jane logs in once: her ticket
    /// stays good on every later connection of this device, across daemon restarts, as on a real handheld.
    static func loop(port: UInt16, pinned: String, token: String, run: HandheldRun) -> HandheldReport {
        var report = HandheldReport()
        let deadline = ContinuousClock.now + .seconds(180)
        var conn: Handheld?
        var ticket: String?
        // The line is made once, at its first send (after the login): a resend must be the same batch.
        var pending: (id: String, line: String?, firstSent: ContinuousClock.Instant?)?
        var number = 0
        while ContinuousClock.now < deadline {
            if pending == nil {
                if run.stopRequested { break }
                number += 1
                pending = ("b-load-\(number)-\(UInt32.random(in: 0...UInt32.max))", nil, nil)
                report.batches += 1
            }
            if conn == nil {
                let (c, result) = openTLS(port: port, pinned: pinned)
                guard let c else {
                    report.failures.append("s_client: \(result)")
                    break
                }
                guard c.hello(token: token) else {
                    if c.refusedByPeer {
                        report.refused += 1
                        if report.refused > 100 { report.failures.append("connect refused 100 times"); break }
                        usleep(50_000)
                    } else {
                        report.closedByServer += 1
                    }
                    continue
                }
                if ticket == nil {
                    switch c.login() {
                    case .success(let t): ticket = t
                    case .failure(let failure):
                        report.failures.append(failure.description)
                        return report
                    }
                }
                conn = c
            }
            guard let c = conn, var batch = pending else { continue }
            if batch.firstSent == nil {
                batch.firstSent = .now
                batch.line = Handheld.batch(batch.id, ticket: ticket)
                pending = batch
            } else {
                report.resends += 1
            }
            guard let line = batch.line, c.send(line) else {
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
