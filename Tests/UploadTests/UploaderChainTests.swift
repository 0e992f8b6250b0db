import Foundation
import GRDB
import MetrcSandbox
import OutlawProtocol
@testable import OutlawStore
import OutlawTestSupport
import Testing
@testable import Upload

/// A tag's later events wait for its earlier ones, and no longer: the next leaves when the one before is answered.
@Suite("A tag's chain leaves event by event", .timeLimit(.minutes(2)))
struct UploaderChainTests {
    /// Twenty moves of one plant, the upload loop on a clock that never moves: every move reaches Metrc, in order and
    /// each in its own request, so none of them waited for a timer (a settle delay or a poll interval would hold
    /// the chain at its first move until the clock moved).
    @Test func aTwentyMoveChainLeavesEachMoveAsSoonAsTheOneBeforeIsAnswered() async throws {
        let rig = try await UploaderSandboxTests.Rig.make()
        let plant = SandboxDemo.plantTag(1)
        let rooms = SandboxDemo.locations
        let locations = (0..<20).map { rooms[$0 % rooms.count] }
        try rig.storeBatch("chain", locations.map { location in
            ["type": "plant.move", "at": .string(UploaderSandboxTests.at), "plant": .string(plant), "location": .string(location)]
        })
        let clock = ManualClock()
        let started = clock.now
        let loop = Task { try await rig.uploader.run(clock: clock) }
        // On a timeout, what the queue looked like: each event's state, its heads_pending and its retry time, and the heads.
        let queue = {
            (try? rig.store.pool.read { db in
                let events = try Row.fetchAll(db, sql: "SELECT id, state, heads_pending, next_attempt_at, attempts FROM events ORDER BY id")
                let heads = try Row.fetchAll(db, sql: "SELECT tag, event_id FROM tag_heads")
                return "events \(events.map(\.description)) heads \(heads.map(\.description))"
            }) ?? "unreadable"
        }
        // Twenty round trips one after the other: under the full parallel suite each took up to 1.5 s (a run reached
        // move 20 after 30 s, every move before it uploaded), so the deadline is for the slowest machine, not a pace.
        let states = try await eventually("all 20 moves uploaded", timeout: .seconds(120), detail: queue) {
            let states = try rig.states("chain")
            return states.allSatisfy { $0 == .uploaded } ? states : nil
        }
        #expect(states.count == 20)
        #expect(clock.now == started, "no time passed on the uploader's clock")

        let moves = await rig.sandbox.writes().filter { $0.path.contains("/plants/") }
        #expect(moves.count == 20, "one request a move: a move is ready only once the one before is answered")
        #expect(moves.compactMap { $0.objects.arrayValue?.first?[field: "Location"]?.stringValue } == locations)
        #expect(moves.allSatisfy { $0.objects.arrayValue?.count == 1 })

        loop.cancel()
        _ = try? await loop.value
        try await rig.shutdown()
    }
}
