import Logging
import Testing

@testable import Systemd

/// The catalog id's metadata key (`message_id`, OutlawProtocol's `MessageID.metadataKey`) in both handlers.
@Suite("Message id field")
struct MessageIDFieldTests {
    static let id = "ffd2551eae8448b1b1a9e2352bfbec9d"

    @Test func journalGetsMessageID() {
        let fields = JournalLogHandler.fields(
            level: .notice, message: "audit chain head", metadata: [LogFields.messageIDKey: "\(Self.id)", "audit_head_id": "7"],
            identifier: "outlawd", label: "outlawd", file: "S/x.swift", function: "f()", line: 1)
        #expect(LogFields.messageIDKey == "message_id")
        #expect(fields.contains("MESSAGE_ID=\(Self.id)"))
        #expect(fields.contains("AUDIT_HEAD_ID=7"))
    }

    @Test func stderrLeavesItOut() {
        let line = StderrLogHandler.format(
            level: .notice, label: "outlawd", message: "listening for devices",
            metadata: [LogFields.messageIDKey: "\(Self.id)", "address": "127.0.0.1", "port": "7420"])
        #expect(line == "notice outlawd: listening for devices address=127.0.0.1 port=7420")
    }
}
