import Foundation
import Logging
import OutlawProtocol
import OutlawStore
import OutlawTestSupport
import Testing
@testable import Upload

/// The long-wait alert against a real store file: it looks at the queue at most once per interval, since the
/// uploader asks after every pass and counting the queue reads every event row.
@Suite("Long-wait alert", .timeLimit(.minutes(1)))
struct LongWaitAlertTests {
    @Test func theIntervalIsATenthOfTheThresholdAndAtMostAMinute() {
        #expect(LongWaitAlert.checkInterval(afterHours: 24) == 60)
        #expect(LongWaitAlert.checkInterval(afterHours: 0.01) == 3.6)
    }

    @Test func theQueueIsLookedAtOnlyOnceAnInterval() async throws {
        let dir = try TempDirectory("outlawd-longwait")
        let store = try Store(path: dir.file("outlawd.sqlite"), pinRounds: 1000)
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let token = try store.addDevice(name: "HH-1", actor: "test")
        let deviceID = try #require(try await store.authenticateDevice(name: "HH-1", token: token)).id
        let log = RecordedLog()
        let alert = LongWaitAlert(store: store, logger: log.logger("long-wait"), afterHours: 1)
        let t0 = Date()

        await alert.check(now: t0) // nothing waits: no alert, and the next look is a minute away
        let validator = BatchValidator(maxBatchEvents: 10, defaultLicense: "LIC-1", licenses: [])
        let event: OutlawProtocol.JSONValue = ["seq": 1, "type": "plant.move", "at": "2026-11-28T14:03:11-08:00",
                                               "plant": "1A4FF0100000022000000001", "location": "Flower Room 2"]
        let batch = try validator.validate(["id": "old", "user": "jane", "events": [event]], now: t0).get()
        _ = try store.commit([IncomingBatch(deviceID: deviceID, session: "s", batch: batch)], now: t0.addingTimeInterval(-7200))

        await alert.check(now: t0.addingTimeInterval(30))
        #expect(log.messages.isEmpty)
        await alert.check(now: t0.addingTimeInterval(61))
        let messages = log.messages
        #expect(messages == ["events have waited 2 hours for Metrc"])
    }
}
