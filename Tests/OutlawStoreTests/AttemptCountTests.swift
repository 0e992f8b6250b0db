import Foundation
import GRDB
import OutlawProtocol
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// One rule for an event's `attempts`: an attempt counts once it left for Metrc.
@Suite("Attempt counts", .timeLimit(.minutes(1)))
struct AttemptCountTests {
    @Test func anAttemptRecordedAheadAndTakenBackDoesNotCount() async throws {
        let dir = try TempDirectory("outlawd-attempts")
        let store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000)
        try store.addUser(name: "jane", role: .user, pin: "4821", actor: "test")
        let token = try store.addDevice(name: "HH-1", actor: "test")
        let device = try #require(try await store.authenticateDevice(name: "HH-1", token: token))
        let validated = try BatchValidator(maxBatchEvents: 10, defaultLicense: "LIC-0001", licenses: []).validate(
            ["id": "b-1", "user": "jane", "events": [["seq": 1, "type": "plant.move", "at": "2026-11-28T14:03:11-08:00",
                                                    "plant": "1A4FF0100000022000000001", "location": "Veg Room"]]],
            now: Date()).get()
        #expect(try store.commit([IncomingBatch(deviceID: device.id, session: "s", batch: validated)]) == [.stored(events: 1)])
        let eventID = try await store.pool.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM events") } ?? 0
        let signing = AttemptSigning(keyKind: .default, keyUser: nil, reason: "test")
        func attempts() async throws -> Int {
            try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT attempts FROM events WHERE id = ?", arguments: [eventID]) } ?? -1
        }

        let takenBack = try store.beginAttempt(eventIDs: [eventID], license: "LIC-0001", action: .movePlants, signing: signing)
        #expect(try await attempts() == 1)
        try store.finishAttempt(takenBack, outcome: .notSent, httpStatus: nil, message: "not sent", metrcIDs: [],
                                results: [(eventID, .retry(at: Date(), message: nil, unknownSince: nil))])
        #expect(try await attempts() == 0)

        let sent = try store.beginAttempt(eventIDs: [eventID], license: "LIC-0001", action: .movePlants, signing: signing)
        try store.finishAttempt(sent, outcome: .serverFault, httpStatus: 500, message: "Metrc: 500", metrcIDs: [],
                                results: [(eventID, .retry(at: Date(), message: "Metrc: 500", unknownSince: nil))])
        #expect(try await attempts() == 1)
    }
}
