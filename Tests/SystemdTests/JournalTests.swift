import Foundation
import Logging
import Testing

@testable import Systemd

/// The journal handler against the real journald: log, read back with journalctl.
enum Journald {
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd-journald")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl")
            && (TestSupport.isRoot || FileManager.default.fileExists(atPath: LogTarget.journalSocketPath))
    }
}

@Suite("Journal handler with the real journald", .enabled(if: Journald.available, "needs journald and journalctl"))
struct JournalTests {

    /// Starts journald once per test process when none is running (root, as in CI).
    static let journaldStarted = Task { try await startJournaldIfNeeded() }

    static func ensureJournald() async throws {
        try await journaldStarted.value
    }

    /// Starts journald when none is running; returns once its socket exists.
    static func startJournaldIfNeeded() async throws {
        // Ask the socket, not pgrep: a journald seen by pgrep may belong to a systemd box's namespaces.
        if !LogTarget.journaldAnswers() {
            try FileManager.default.createDirectory(atPath: "/run/systemd/journal", withIntermediateDirectories: true)
            let journald = Process()
            journald.executableURL = URL(fileURLWithPath: "/lib/systemd/systemd-journald")
            journald.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
            journald.standardInput = FileHandle.nullDevice
            journald.standardOutput = FileHandle.nullDevice
            journald.standardError = FileHandle.nullDevice
            try journald.run()  // left running for later tests and runs, as a system journald would be
        }
        // The socket file may be left over from an earlier journald: wait until one really answers.
        let up = try await TestSupport.eventually(timeout: .seconds(10)) {
            LogTarget.journaldAnswers() ? true : nil
        }
        #expect(up == true, "journald does not answer on \(LogTarget.journalSocketPath)")
    }

    /// Entries matching `match` (e.g. `BATCH_ID=x`), polled until `count` are there.
    static func entries(_ match: String, count: Int = 1) async throws -> [[String: Any]] {
        var found: [[String: Any]] = []
        _ = try await TestSupport.eventually(timeout: .seconds(10)) { () -> Bool? in
            let out = try await TestSupport.run("/usr/bin/journalctl", ["--no-pager", "-o", "json", match])
            found = out.stdout.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }
            return found.count >= count ? true : nil
        }
        return found
    }

    @Test func entryCarriesMessagePriorityCodeAndMetadataFields() async throws {
        try await Self.ensureJournald()
        let batch = "b-\(UInt64.random(in: 0...UInt64.max))"
        let logger = Logger(label: "outlawd.tests") { label in
            var handler = JournalLogHandler(label: label, identifier: "outlawd-tests")
            handler.logLevel = .trace
            handler[metadataKey: "facility"] = "LIC-0001"
            return handler
        }
        let line = #line + 1
        logger.error(
            "batch rejected",
            metadata: [
                "batch_id": "\(batch)", "device": "HH-0042", "outlaw_user": "jane", "events": "12",
                "metrc.status": "503", "pin": "4821", "message": "collides", "detail": "line one\nline two",
            ])

        let entry = try #require(try await Self.entries("BATCH_ID=\(batch)").first)
        #expect(entry["MESSAGE"] as? String == "batch rejected")
        #expect(entry["PRIORITY"] as? String == "3")
        #expect(entry["SYSLOG_IDENTIFIER"] as? String == "outlawd-tests")
        #expect(entry["LOGGER"] as? String == "outlawd.tests")
        #expect((entry["CODE_FILE"] as? String)?.hasSuffix("JournalTests.swift") == true)
        #expect(entry["CODE_LINE"] as? String == String(line))
        #expect((entry["CODE_FUNC"] as? String)?.hasPrefix("entryCarriesMessagePriorityCodeAndMetadataFields") == true)
        #expect(entry["DEVICE"] as? String == "HH-0042")
        #expect(entry["OUTLAW_USER"] as? String == "jane")
        #expect(entry["EVENTS"] as? String == "12")
        #expect(entry["METRC_STATUS"] as? String == "503")
        #expect(entry["FACILITY"] as? String == "LIC-0001")
        #expect(entry["META_MESSAGE"] as? String == "collides")
        #expect(entry["DETAIL"] as? String == "line one\nline two")
        #expect(entry["PIN"] as? String == "<redacted>")
        #expect(entry["_PID"] as? String == String(getpid()))
    }

    @Test func everyLevelMapsToItsPriority() async throws {
        try await Self.ensureJournald()
        let run = "r-\(UInt64.random(in: 0...UInt64.max))"
        var logger = Logger(label: "outlawd.tests") { JournalLogHandler(label: $0, identifier: "outlawd-tests") }
        logger.logLevel = .trace
        logger[metadataKey: "test_run"] = "\(run)"
        let levels: [Logger.Level] = [.trace, .debug, .info, .notice, .warning, .error, .critical]
        for level in levels {
            logger.log(level: level, "level \(level.rawValue)")
        }
        let entries = try await Self.entries("TEST_RUN=\(run)", count: levels.count)
        var priorities: [String: String] = [:]
        for entry in entries {
            if let message = entry["MESSAGE"] as? String, let priority = entry["PRIORITY"] as? String {
                priorities[message] = priority
            }
        }
        #expect(
            priorities == [
                "level trace": "7", "level debug": "7", "level info": "6", "level notice": "5",
                "level warning": "4", "level error": "3", "level critical": "2",
            ])
        // journalctl -p filters on it
        let errors = try await TestSupport.run("/usr/bin/journalctl", ["--no-pager", "-o", "cat", "-p", "err", "TEST_RUN=\(run)"])
        #expect(errors.stdout.split(separator: "\n").sorted() == ["level critical", "level error"])
    }
}
