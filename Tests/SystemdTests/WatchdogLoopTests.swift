import OutlawTestSupport
import Synchronization
import Testing

@testable import Systemd

final class Flag: Sendable {
    private let storage: Mutex<Bool>
    init(_ value: Bool) { storage = Mutex(value) }
    var value: Bool {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

/// A value shared with the loop under test.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
    func update(_ change: (inout Value) -> Void) { storage.withLock { change(&$0) } }
}

final class Counter: Sendable {
    private let storage = Mutex(0)
    func increment() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}

/// The watchdog's schedule on a manual clock: every step is the clock moved by the test, none waits for real time.
@Suite("Watchdog loop", .timeLimit(.minutes(1)))
struct WatchdogLoopTests {
    static func at(_ duration: Duration) -> ManualClock.Instant { ManualClock.Instant(offset: duration) }

    @Test func pingsAtHalfTheIntervalOnlyWhileAlive() async throws {
        let clock = ManualClock()
        let pings = Counter()
        let alive = Flag(true)
        let watchdog = SystemdWatchdog(interval: .seconds(40), ping: { pings.increment() })
        #expect(watchdog.pingInterval == .seconds(20))
        let task = Task { await watchdog.run(clock: clock) { alive.value } }

        await clock.waitForSleepers()
        #expect(pings.value == 1, "one ping at start")
        #expect(clock.nextDeadline == Self.at(.seconds(20)))
        clock.advance(by: .seconds(19))
        await clock.waitForSleepers()
        #expect(pings.value == 1, "none before half the interval")
        clock.advance(by: .seconds(1))
        await clock.waitForSleepers()
        #expect(pings.value == 2)
        #expect(clock.nextDeadline == Self.at(.seconds(40)))

        alive.value = false
        for _ in 0..<3 {
            clock.advance(by: .seconds(20))
            await clock.waitForSleepers()
        }
        #expect(pings.value == 2, "no ping while not alive")
        #expect(clock.nextDeadline == Self.at(.seconds(100)), "still looking every 20 s")

        alive.value = true
        clock.advance(by: .seconds(20))
        await clock.waitForSleepers()
        #expect(pings.value == 3, "pinging resumes when alive again")

        task.cancel()
        await task.value  // run returns on cancellation, without the clock moving
        #expect(pings.value == 3)
    }

    @Test func aSlowLivenessCheckDelaysTheNextRoundWithoutABurst() async throws {
        let clock = ManualClock()
        let pings = Counter()
        let rounds = Counter()
        let watchdog = SystemdWatchdog(interval: .seconds(40), ping: { pings.increment() })
        let task = Task {
            await watchdog.run(clock: clock) {
                rounds.increment()
                // The second round's check takes 50 s, two and a half ping intervals.
                if rounds.value == 2 { clock.advance(by: .seconds(50)) }
                return true
            }
        }
        await clock.waitForSleepers()
        clock.advance(by: .seconds(20))
        await clock.waitForSleepers()
        #expect(pings.value == 2)
        #expect(clock.now == Self.at(.seconds(70)))
        #expect(clock.nextDeadline == Self.at(.seconds(90)), "one interval after the late round, not the missed ones at once")
        task.cancel()
        await task.value
        #expect(rounds.value == 2)
    }

    @Test func aHungLivenessCheckMeansNoPing() async throws {
        let clock = ManualClock()
        let pings = Counter()
        let entered = Flag(false)
        let watchdog = SystemdWatchdog(interval: .seconds(20), ping: { pings.increment() })
        let task = Task {
            await watchdog.run(clock: clock) {
                entered.value = true
                // The event loop never answers (until the run is cancelled).
                try? await Task.sleep(for: .seconds(3600))
                return true
            }
        }
        let inCheck = try await eventually(timeout: .seconds(30), every: .milliseconds(5)) { entered.value ? true : nil }
        #expect(inCheck == true)
        clock.advance(by: .seconds(600))
        #expect(clock.sleeperCount == 0, "no round waits: the one running is stuck")
        #expect(pings.value == 0)
        task.cancel()
        await task.value
        #expect(pings.value == 0, "no ping after cancellation either")
    }

    @Test func runStopsAtOnceWhenCancelled() async {
        let clock = ManualClock()
        let pings = Counter()
        let watchdog = SystemdWatchdog(interval: .seconds(3600), ping: { pings.increment() })
        let task = Task { await watchdog.run(clock: clock) { true } }
        await clock.waitForSleepers()
        task.cancel()
        await task.value
        #expect(pings.value == 1, "one ping at start, then asleep for half an hour until cancelled")
        #expect(clock.now == Self.at(.zero))
    }
}

/// `Clock.every`, the loop the daemon's periodic work runs in.
@Suite("Periodic loop", .timeLimit(.minutes(1)))
struct PeriodicLoopTests {
    @Test func notImmediatelyWaitsOneIntervalAndRereadsTheInterval() async {
        let clock = ManualClock()
        let runs = Shared<[Duration]>([])
        let interval = Shared(Duration.seconds(10))
        let task = Task {
            await clock.every(interval.value, immediately: false) {
                runs.update { $0.append(clock.now.offset) }
            }
        }
        await clock.waitForSleepers()
        #expect(runs.value.isEmpty)
        clock.advance(by: .seconds(10))
        await clock.waitForSleepers()
        #expect(runs.value == [.seconds(10)])
        // A reload shortens the interval: the wait after the next run uses it.
        interval.value = .seconds(3)
        clock.advance(by: .seconds(10))
        await clock.waitForSleepers()
        clock.advance(by: .seconds(3))
        await clock.waitForSleepers()
        #expect(runs.value == [.seconds(10), .seconds(20), .seconds(23)])
        task.cancel()
        await task.value
    }

    @Test func cancellationEndsTheLoopBeforeAnyRun() async {
        let clock = ManualClock()
        let runs = Counter()
        let task = Task { await clock.every(.seconds(60), immediately: false) { runs.increment() } }
        await clock.waitForSleepers()
        task.cancel()
        await task.value
        #expect(runs.value == 0)
        #expect(clock.sleeperCount == 0)
    }

    @Test func aCancelledTaskDoesNotRunAtAll() async {
        let clock = ManualClock()
        let runs = Counter()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await clock.every(.seconds(60)) { runs.increment() }
        }
        await task.value
        #expect(runs.value == 0)
    }
}
