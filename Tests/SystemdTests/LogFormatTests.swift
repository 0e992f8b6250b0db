import Logging
import Testing

@testable import Systemd

@Suite("Log fields and formats")
struct LogFormatTests {
    @Test(arguments: [
        ("batch_id", "BATCH_ID"), ("device", "DEVICE"), ("outlaw_user", "OUTLAW_USER"),
        ("metrc.status", "METRC_STATUS"), ("Key-Kind", "KEY_KIND"), ("_PID", "PID"),
        ("__x", "X"), ("2fa", "F_2FA"), ("événement", "V_NEMENT"), ("a b", "A_B"),
    ])
    func journalFieldNames(key: String, expected: String) {
        #expect(LogFields.journalFieldName(key) == expected)
    }

    @Test func unusableAndLongFieldNames() throws {
        #expect(LogFields.journalFieldName("") == nil)
        #expect(LogFields.journalFieldName("___") == nil)
        let long = try #require(LogFields.journalFieldName(String(repeating: "a", count: 100)))
        #expect(long.count == 64)
        #expect(long.allSatisfy { $0 == "A" })
    }

    @Test func prioritiesFollowSyslog() {
        #expect(LogFields.priority(for: .trace) == 7)
        #expect(LogFields.priority(for: .debug) == 7)
        #expect(LogFields.priority(for: .info) == 6)
        #expect(LogFields.priority(for: .notice) == 5)
        #expect(LogFields.priority(for: .warning) == 4)
        #expect(LogFields.priority(for: .error) == 3)
        #expect(LogFields.priority(for: .critical) == 2)
    }

    @Test func journalFieldsOfOneEntry() {
        let fields = JournalLogHandler.fields(
            level: .warning, message: "batch received",
            metadata: ["batch_id": "b-1", "pin": "4821", "message": "collides", "nested": ["a": "1"], "events": .stringConvertible(12)],
            identifier: "outlawd", label: "outlawd.server", file: "S/x.swift", function: "f()", line: 7)
        #expect(
            fields == [
                "MESSAGE=batch received", "PRIORITY=4", "SYSLOG_IDENTIFIER=outlawd", "LOGGER=outlawd.server",
                "CODE_FILE=S/x.swift", "CODE_LINE=7", "CODE_FUNC=f()",
                "BATCH_ID=b-1", "EVENTS=12", "META_MESSAGE=collides", #"NESTED=["a": "1"]"#, "PIN=<redacted>",
            ])
    }

    @Test func stderrLineIsOneLineWithKeyValues() {
        let line = StderrLogHandler.format(
            level: .error, label: "outlawd", message: "upload failed\nretrying",
            metadata: ["batch_id": "b-1", "reason": "HTTP 503 from Metrc", "token": "abcd", "empty": ""])
        #expect(line == #"error outlawd: upload failed\nretrying batch_id=b-1 empty="" reason="HTTP 503 from Metrc" token=<redacted>"#)
        #expect(!line.contains("\n"))
    }

    @Test func automaticTargetChoice() {
        let socket = true
        func env(_ vars: [String: String]) -> (String) -> String? { { vars[$0] } }
        // stderr is the journal stream
        #expect(LogTarget.automatic(environment: env(["JOURNAL_STREAM": "8:1234"]), stderrIdentity: (8, 1234), journalSocketExists: socket) == .journal)
        // JOURNAL_STREAM inherited but stderr redirected elsewhere
        #expect(LogTarget.automatic(environment: env(["JOURNAL_STREAM": "8:1234"]), stderrIdentity: (8, 99), journalSocketExists: socket) == .stderr)
        // a systemd service whose stderr is not the journal
        #expect(LogTarget.automatic(environment: env(["INVOCATION_ID": "0123abcd"]), stderrIdentity: (1, 2), journalSocketExists: socket) == .journal)
        // a terminal
        #expect(LogTarget.automatic(environment: env([:]), stderrIdentity: (1, 2), journalSocketExists: socket) == .stderr)
        // no journald at all
        #expect(LogTarget.automatic(environment: env(["INVOCATION_ID": "x", "JOURNAL_STREAM": "1:2"]), stderrIdentity: (1, 2), journalSocketExists: false) == .stderr)
        #expect(LogTarget(rawValue: "journal") == .journal)
        #expect(LogTarget(rawValue: "stderr") == .stderr)
        #expect(LogTarget(rawValue: "syslog") == nil)
    }

    @Test func handlersKeepMetadataAsValues() {
        var a = JournalLogHandler(label: "a", identifier: "t")
        a[metadataKey: "facility"] = "LIC-0001"
        var b = a
        b[metadataKey: "facility"] = "LIC-0002"
        #expect(a[metadataKey: "facility"] == "LIC-0001")
        #expect(b.metadata["facility"] == "LIC-0002")
        #expect(a.identifier == "t")
        #expect(JournalLogHandler(label: "x").identifier.isEmpty == false)
    }
}
