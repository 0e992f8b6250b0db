import Testing
@testable import DeviceServer

/// The per-source throttle, driven with instants of the test's own: no time passes, none is waited for.
@Suite("Failure throttle")
struct FailureThrottleTests {
    /// An instant the test moves by hand.
    struct Instant: InstantProtocol, Sendable {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    let t0 = Instant(offset: .zero)

    @Test func aSourceThatKeepsFailingWaitsLongerEachTimeUpToTheMaximum() {
        var throttle = FailureThrottle<String, Instant>(freeFailures: 3, baseDelay: .seconds(1), maxDelay: .seconds(8))
        var now = t0
        var waits: [Duration] = []
        for _ in 0..<9 {
            let wait = throttle.admit("HH-1", now: now)
            waits.append(wait)
            now = now.advanced(by: wait)
            throttle.ended("HH-1", .failure, now: now)
        }
        #expect(waits == [.zero, .zero, .zero, .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8), .seconds(8)])
        // Another source is not slowed by this one.
        #expect(throttle.admit("HH-2", now: now) == .zero)
    }

    @Test func attemptsAtOnceFromManyConnectionsAreSpacedAsIfTheyHadFailed() {
        var throttle = FailureThrottle<String, Instant>(freeFailures: 3, baseDelay: .seconds(1), maxDelay: .seconds(60))
        // Eight attempts arrive at the same instant; none has ended yet.
        let waits = (0..<8).map { _ in throttle.admit("HH-1", now: t0) }
        #expect(waits == [.zero, .zero, .zero, .seconds(1), .seconds(3), .seconds(7), .seconds(15), .seconds(31)])
    }

    @Test func aSharedSourceThatHasNotFailedIsNotSpacedForBeingBusy() {
        // Every handheld of a facility behind one address says hello at once after a restart.
        var throttle = FailureThrottle<String, Instant>(freeFailures: 3, baseDelay: .seconds(1), maxDelay: .seconds(60),
                                                        runningCountsBeforeAFailure: false)
        let waits = (0..<32).map { _ in throttle.admit("10.0.0.1", now: t0) }
        #expect(waits.allSatisfy { $0 == .zero })
        for _ in 0..<32 { throttle.ended("10.0.0.1", .success, now: t0) }
        // Once it fails, the attempts still running count again: more connections buy no more guesses.
        _ = throttle.admit("10.0.0.1", now: t0)
        throttle.ended("10.0.0.1", .failure, now: t0)
        let after = (0..<5).map { _ in throttle.admit("10.0.0.1", now: t0) }
        #expect(after == [.zero, .zero, .seconds(1), .seconds(3), .seconds(7)])
    }

    @Test func aSuccessOrQuietTimeStartsTheSourceAfresh() {
        var throttle = FailureThrottle<String, Instant>(freeFailures: 1, baseDelay: .seconds(1), maxDelay: .seconds(60),
                                                        forgetAfter: .seconds(900))
        for _ in 0..<4 {
            _ = throttle.admit("a", now: t0)
            throttle.ended("a", .failure, now: t0)
        }
        #expect(throttle.failures(of: "a", now: t0) == 4)
        _ = throttle.admit("a", now: t0)
        throttle.ended("a", .success, now: t0)
        #expect(throttle.failures(of: "a", now: t0) == 0)

        for _ in 0..<4 {
            _ = throttle.admit("b", now: t0)
            throttle.ended("b", .failure, now: t0)
        }
        let later = t0.advanced(by: .seconds(901))
        #expect(throttle.failures(of: "b", now: later) == 0)
        #expect(throttle.admit("b", now: later) == .zero)
    }

    @Test func memoryStaysBoundedWhateverTheNumberOfSources() {
        var throttle = FailureThrottle<Int, Instant>(capacity: 100)
        for source in 0..<10_000 {
            _ = throttle.admit(source, now: t0)
            throttle.ended(source, .failure, now: t0)
        }
        #expect((0..<10_000).filter { throttle.failures(of: $0, now: t0) > 0 }.count <= 101)
    }
}
