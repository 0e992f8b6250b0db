import Foundation
import Testing

/// packaging/outlawd.catalog under a real journald: installed where the package puts it, indexed with
/// `journalctl --update-catalog`, and shown by `journalctl -x` under entries carrying its MESSAGE_IDs.
@Suite("Journal catalog under real systemd", .enabled(if: SystemdBox.available, "needs root, systemd and scripts/systemd-box"))
struct CatalogTests {
    static var catalog: String { TestSupport.repositoryRoot() + "/packaging/outlawd.catalog" }
    static let installed = "/usr/lib/systemd/catalog/outlawd.catalog"
    /// MessageID.auditHead and MessageID.metrcAddressMissing (this target does not import OutlawProtocol).
    static let auditHead = "ffd2551eae8448b1b1a9e2352bfbec9d"
    static let metrcAddressMissing = "cdb901d72bd14bc69e7f32f6b778e3da"

    /// Indexes the installed catalog; checks journalctl took it.
    static func updateCatalog(_ box: SystemdBox) async throws {
        let update = try await box.run(["journalctl", "--update-catalog"])
        try #require(update.status == 0, "journalctl --update-catalog: \(update.stderr)")
        let listed = try await box.output(["journalctl", "--list-catalog", auditHead])
        #expect(listed.contains("Audit chain head"), "\(listed)")
    }

    @Test func journalctlExplainsAnEntryByItsMessageID() async throws {
        let box = try await SystemdBox.start(["--file", Self.catalog + ":" + Self.installed])
        do {
            try await Self.updateCatalog(box)
            // logger --journald sends its stdin's FIELD=value lines as one native entry (sd_journal_sendv), the
            // fields as outlawd's journal handler writes them.
            let hash = String(repeating: "3f9a1c07", count: 8)
            let sent = try await box.run(["logger", "--journald"], stdin: """
                MESSAGE_ID=\(Self.auditHead)
                MESSAGE=audit chain head
                PRIORITY=5
                SYSLOG_IDENTIFIER=outlawd-catalog-probe
                AUDIT_HEAD_ID=214
                AUDIT_HEAD_HASH=\(hash)

                """)
            try #require(sent.status == 0, "logger --journald: \(sent.stderr)")
            let explained = try await TestSupport.eventually(timeout: .seconds(10)) { () -> String? in
                let out = try await box.output(["journalctl", "--no-pager", "-x", "-t", "outlawd-catalog-probe"])
                return out.contains("audit chain head") ? out : nil
            }
            let text = try #require(explained, "the entry never reached the journal")
            // The catalog's Subject and text, with the entry's fields substituted.
            #expect(text.contains("Subject: Audit chain head: row 214"), "\(text)")
            #expect(text.contains("Defined-By: outlawd"), "\(text)")
            #expect(text.contains("SHA-256 (\(hash))"), "\(text)")
            #expect(text.contains("outlawctl audit verify"), "\(text)")
        } catch {
            try? await box.stop()
            throw error
        }
        try await box.stop()
    }

    /// The real daemon's own lines carry the ids: its start writes the audit head (notice) and, with no Metrc
    /// address configured, says that uploads wait for one; `journalctl -x -u outlawd` explains both.
    @Test(.enabled(if: RealSystemdTests.outlawdBuilt, "outlawd/outlawctl not built next to the test runner yet"))
    func outlawdLinesAreExplained() async throws {
        let build = TestSupport.buildDirectory
        let root = TestSupport.repositoryRoot()
        let work = try TestSupport.makeTempDir("sdcatalog")
        defer { TestSupport.removeTree(work) }
        let port = try TestSupport.freePort()
        try RealSystemdTests.writeOutlawdFiles(work: work, port: port)
        // A free loopback port instead of 7420 on every address: the box shares the host's network.
        try "[Socket]\nListenStream=\nListenStream=127.0.0.1:\(port)\n"
            .write(toFile: work + "/socket-port.conf", atomically: true, encoding: .utf8)
        let box = try await SystemdBox.start([
            "--file", Self.catalog + ":" + Self.installed,
            "--unit", root + "/systemd/outlawd.service", "--unit", root + "/systemd/outlawd.socket",
            "--file", work + "/socket-port.conf:/etc/systemd/system/outlawd.socket.d/port.conf",
            "--bind", build + "/outlawd:/usr/local/bin/outlawd",
            "--file", work + "/outlawd.toml:/etc/outlawd/outlawd.toml",
        ] + RealSystemdTests.credentialFiles(work: work))
        do {
            try await Self.updateCatalog(box)
            let started = try await box.run(["systemctl", "start", "outlawd.service"])
            if started.status != 0 {
                let journal = try await box.output(["journalctl", "--no-pager", "-n", "60"])
                Issue.record("systemctl start outlawd.service: \(started.status) \(started.stderr)\njournal:\n\(journal)")
                throw TestFailure("outlawd.service did not start")
            }
            let head = try #require(try await TestSupport.eventually(timeout: .seconds(15)) {
                try await box.journal(["-u", "outlawd", "MESSAGE_ID=\(Self.auditHead)"]).first
            }, "no audit chain head line with its MESSAGE_ID")
            #expect(head["MESSAGE"] as? String == "audit chain head")
            let row = try #require(head["AUDIT_HEAD_ID"] as? String)
            let explained = try await box.output(["journalctl", "--no-pager", "-x", "-u", "outlawd", "MESSAGE_ID=\(Self.auditHead)"])
            #expect(explained.contains("Subject: Audit chain head: row \(row)"), "\(explained)")

            let missing = try await box.journal(["-u", "outlawd", "MESSAGE_ID=\(Self.metrcAddressMissing)"])
            #expect((missing.first?["MESSAGE"] as? String)?.contains("metrc.base_url") == true, "\(missing)")
            let why = try await box.output(["journalctl", "--no-pager", "-x", "-u", "outlawd", "MESSAGE_ID=\(Self.metrcAddressMissing)"])
            #expect(why.contains("Subject: No Metrc address: batches are stored but not uploaded"), "\(why)")
            #expect(why.contains("outlawctl status"), "\(why)")

            let stop = try await box.run(["systemctl", "stop", "outlawd.service", "outlawd.socket"])
            #expect(stop.status == 0, "\(stop.stderr)")
        } catch {
            try? await box.stop()
            throw error
        }
        try await box.stop()
    }
}
