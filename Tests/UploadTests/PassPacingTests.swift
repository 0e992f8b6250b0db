import OutlawTestSupport
import Testing
@testable import Upload

/// The uploader's wait between passes, on a clock the test moves: no real time passes.
@Suite("Pass pacing", .timeLimit(.minutes(1)))
struct PassPacingTests {
    let pacing = PassPacing(pollInterval: .seconds(1), settle: .milliseconds(100))

    @Test func withNoWakeTheNextPassWaitsThePollInterval() async throws {
        let (clock, wakeup) = (ManualClock(), Wakeup())
        let start = clock.now
        let waiting = Task { try await pacing.waitForNextPass(after: start, wakeup: wakeup, clock: clock) }
        await clock.waitForSleepers()
        #expect(clock.nextDeadline == start.advanced(by: .seconds(1)))
        clock.advance(by: .milliseconds(999))
        #expect(clock.sleeperCount == 1, "still waiting")
        clock.advance(by: .milliseconds(1))
        try await waiting.value
        #expect(clock.now == start.advanced(by: .seconds(1)))
    }

    @Test func aWakeSoonAfterAPassBeganWaitsForTheSettleTime() async throws {
        let (clock, wakeup) = (ManualClock(), Wakeup())
        let start = clock.now
        clock.advance(by: .milliseconds(40))
        wakeup.signal()
        let waiting = Task { try await pacing.waitForNextPass(after: start, wakeup: wakeup, clock: clock) }
        await clock.waitForSleepers()
        #expect(clock.nextDeadline == start.advanced(by: .milliseconds(100)))
        clock.advance(by: .milliseconds(59))
        #expect(clock.sleeperCount == 1, "still settling")
        clock.advance(by: .milliseconds(1))
        try await waiting.value
    }

    @Test func aWakeAfterTheSettleTimeStartsTheNextPassAtOnce() async throws {
        let (clock, wakeup) = (ManualClock(), Wakeup())
        let start = clock.now
        clock.advance(by: .milliseconds(500))
        wakeup.signal()
        try await pacing.waitForNextPass(after: start, wakeup: wakeup, clock: clock)
        #expect(clock.sleeperCount == 0)
    }

    @Test func aStopEndsThePollAtOnce() async throws {
        let (clock, wakeup) = (ManualClock(), Wakeup())
        let start = clock.now
        let waiting = Task { try await pacing.waitForNextPass(after: start, wakeup: wakeup, clock: clock) }
        await clock.waitForSleepers()
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(clock.now == start, "no time passed")
    }

    @Test func aStopEndsTheSettleTimeAtOnce() async throws {
        let (clock, wakeup) = (ManualClock(), Wakeup())
        let start = clock.now
        wakeup.signal()
        let waiting = Task { try await pacing.waitForNextPass(after: start, wakeup: wakeup, clock: clock) }
        await clock.waitForSleepers()
        #expect(clock.nextDeadline == start.advanced(by: .milliseconds(100)))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
    }
}
