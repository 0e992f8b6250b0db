import OutlawTestSupport
import Synchronization
import Testing

@testable import Reference

/// When the reference sync runs (`ReferenceSync.schedule`), on a manual clock and with a stand-in for the sync: no
/// Metrc, no store, no real time.
@Suite("Reference sync schedule", .timeLimit(.minutes(1)))
struct ReferenceScheduleTests {
    /// One round as the schedule asked for it: when, and whether a sync was due.
    struct Round: Equatable, CustomStringConvertible {
        var at: Duration
        var due: Bool
        var description: String { "\(at)\(due ? " due" : "")" }
    }

    /// Records the rounds and answers them: a sync when due or asked for, failing while `failing` is set.
    final class Stand: Sendable {
        let clock: ManualClock
        private let state = Mutex((rounds: [Round](), asked: false, failing: false))
        init(clock: ManualClock) { self.clock = clock }

        var rounds: [Round] { state.withLock { $0.rounds } }
        var syncs: [Duration] { rounds.filter(\.due).map(\.at) }
        func ask() { state.withLock { $0.asked = true } }
        func fail(_ failing: Bool) { state.withLock { $0.failing = failing } }

        func round(_ due: Bool) -> ReferenceSync.Round {
            let at = clock.now.offset
            return state.withLock { s in
                s.rounds.append(Round(at: at, due: due))
                defer { s.asked = false }
                guard due || s.asked else { return .idle }
                return .synced(failed: s.failing)
            }
        }
    }

    /// The retry waits the schedule announced.
    final class Retries: Sendable {
        private let waits = Mutex<[Duration]>([])
        func append(_ wait: Duration) { waits.withLock { $0.append(wait) } }
        var all: [Duration] { waits.withLock { $0 } }
    }

    static func start(_ clock: ManualClock, _ stand: Stand, retries: Retries? = nil) -> Task<Void, Never> {
        Task {
            await ReferenceSync.schedule(clock: clock, interval: .seconds(300), poll: .seconds(1)) { due in
                stand.round(due)
            } retrying: { wait in
                retries?.append(wait)
            }
        }
    }

    @Test func syncsAtOnceThenEveryIntervalAndLooksForRequestsEverySecond() async {
        let clock = ManualClock()
        let stand = Stand(clock: clock)
        let task = Self.start(clock, stand)
        await clock.waitForSleepers()
        // The first round syncs; requests are looked for again at once, then every second.
        #expect(stand.rounds == [Round(at: .zero, due: true), Round(at: .zero, due: false)])
        clock.advance(by: .seconds(1))
        await clock.waitForSleepers()
        #expect(stand.rounds.last == Round(at: .seconds(1), due: false))
        // A long jump wakes the poll once; the sync comes when the interval is up, not before.
        clock.advance(by: .seconds(298))
        await clock.waitForSleepers()
        #expect(stand.syncs == [.zero])
        clock.advance(by: .seconds(1))
        await clock.waitForSleepers()
        #expect(stand.syncs == [.zero, .seconds(300)])
        task.cancel()
        await task.value
    }

    @Test func aRequestSyncsWithinAPollAndRestartsTheInterval() async {
        let clock = ManualClock()
        let stand = Stand(clock: clock)
        let task = Self.start(clock, stand)
        await clock.waitForSleepers()
        clock.advance(by: .seconds(100))
        await clock.waitForSleepers()
        stand.ask()  // outlawctl sync
        clock.advance(by: .seconds(1))
        await clock.waitForSleepers()
        let synced = stand.rounds.filter { $0.at == .seconds(101) }
        #expect(synced.count == 2, "the request's sync, then a look for more at once: \(synced)")
        // Due again an interval after the requested sync, not after the first one.
        clock.advance(by: .seconds(200))
        await clock.waitForSleepers()
        #expect(stand.syncs == [.zero])
        clock.advance(by: .seconds(100))
        await clock.waitForSleepers()
        #expect(stand.syncs == [.zero, .seconds(401)])
        task.cancel()
        await task.value
    }

    @Test func failuresRetryAfterThirtySecondsDoublingUpToTheInterval() async {
        let clock = ManualClock()
        let stand = Stand(clock: clock)
        stand.fail(true)
        let retries = Retries()
        let task = Self.start(clock, stand, retries: retries)
        await clock.waitForSleepers()
        // Step a second at a time, as the poll does, until six syncs have failed.
        while stand.syncs.count < 6 {
            clock.advance(by: .seconds(1))
            await clock.waitForSleepers()
        }
        #expect(stand.syncs == [.zero, .seconds(30), .seconds(90), .seconds(210), .seconds(450), .seconds(750)])
        #expect(retries.all == [.seconds(30), .seconds(60), .seconds(120), .seconds(240), .seconds(300), .seconds(300)])
        // A success brings the interval back.
        stand.fail(false)
        while stand.syncs.count < 8 {
            clock.advance(by: .seconds(1))
            await clock.waitForSleepers()
        }
        #expect(Array(stand.syncs.suffix(2)) == [.seconds(1050), .seconds(1350)])
        task.cancel()
        await task.value
    }

    @Test func aStopDoesNotWaitOutThePoll() async {
        let clock = ManualClock()
        let stand = Stand(clock: clock)
        let task = Self.start(clock, stand)
        await clock.waitForSleepers()
        let before = stand.rounds.count
        task.cancel()
        await task.value
        #expect(stand.rounds.count == before, "no round after the stop")
        #expect(clock.now.offset == .zero)
    }

    @Test func retryWaits() {
        let interval = Duration.seconds(300)
        #expect(ReferenceSync.retryWait(failures: 0, interval: interval) == interval)
        #expect(ReferenceSync.retryWait(failures: 1, interval: interval) == .seconds(30))
        #expect(ReferenceSync.retryWait(failures: 3, interval: interval) == .seconds(120))
        #expect(ReferenceSync.retryWait(failures: 40, interval: .seconds(86_400)) == .seconds(30 * 1024))
    }
}
