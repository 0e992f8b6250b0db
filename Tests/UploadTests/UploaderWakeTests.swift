import Foundation
import Logging
import MetrcSandbox
import OutlawStore
import OutlawTestSupport
import Testing
@testable import Upload

/// The upload loop under a stream of wakes: every stored batch wakes it, and under load that is hundreds a second.
/// Timing here only ever bounds from above, by the time that really passed: the suite runs beside everything else
/// on two cores, and a starved loop goes round less, never more.
@Suite("Uploader wakes", .timeLimit(.minutes(2)))
struct UploaderWakeTests {
    static func uploader(_ rig: UploaderSandboxTests.Rig, poll: Duration) -> Uploader {
        Uploader(store: rig.store, client: rig.client, defaultKey: SandboxDemo.ownerKey,
                 configuration: UploaderConfiguration(pollInterval: poll, backoff: Backoff(base: 0, cap: 0), wakeSettle: .milliseconds(100)),
                 logger: Logger(label: "uploader-wake-tests"))
    }

    /// Waits until the uploader has finished `count` passes.
    static func passes(_ uploader: Uploader, atLeast count: Int) async throws {
        try await eventually("\(count) passes", timeout: .seconds(60), every: .milliseconds(10),
                             detail: { "\(uploader.passesFinished) passes" }) { uploader.passesFinished >= count ? true : nil }
    }

    @Test func wakesUnderLoadAreTakenByOnePassASettleTime() async throws {
        let rig = try await UploaderSandboxTests.Rig.make()
        try rig.store.setUploadsPaused(true, actor: "test")
        let uploader = Self.uploader(rig, poll: .seconds(30))
        let loop = Task { try await uploader.run() }
        try await Self.passes(uploader, atLeast: 1)
        let before = uploader.passesFinished
        let start = ContinuousClock.now
        // A wake every millisecond for a second, from a thread of its own (not the two the tests share).
        await withCheckedContinuation { (wakesDone: CheckedContinuation<Void, Never>) in
            Thread {
                let end = Date().addingTimeInterval(1)
                while Date() < end {
                    uploader.wake()
                    usleep(1000)
                }
                wakesDone.resume()
            }.start()
        }
        try await Self.passes(uploader, atLeast: before + 2)
        let elapsed = ContinuousClock.now - start
        let passes = uploader.passesFinished - before
        loop.cancel()
        _ = try? await loop.value
        try await rig.shutdown()
        // One pass per 100 ms that really passed (a spinning loop made thousands a second).
        let bound = Int(elapsed / .milliseconds(100)) + 3
        #expect((2...bound).contains(passes), "\(passes) passes in \(elapsed)")
    }

    /// A stop while the loop waits for its hour-long poll ends it at once.
    @Test func aStopNeverWaitsOutThePollInterval() async throws {
        let rig = try await UploaderSandboxTests.Rig.make()
        let uploader = Self.uploader(rig, poll: .seconds(3600))
        let loop = Task { try await uploader.run() }
        try await Self.passes(uploader, atLeast: 1)
        let stopped = try await ContinuousClock().measure {
            loop.cancel()
            try await loop.value
        }
        try await rig.shutdown()
        #expect(stopped < .seconds(20), "the stop took \(stopped)")
    }
}

@Suite("Wakeup", .timeLimit(.minutes(1)))
struct WakeupTests {
    @Test func aSignalWakesAWaiterAndLeavesNothingPending() async throws {
        let wakeup = Wakeup()
        wakeup.signal()
        // Taken at once by the pending signal; this wait's timer is cancelled, and must not signal as it ends.
        try await wakeup.wait(timeout: .seconds(30))
        let waited = try await ContinuousClock().measure { try await wakeup.wait(timeout: .milliseconds(300)) }
        #expect(waited >= .milliseconds(250), "a wait with nothing signalled returned after \(waited)")
    }

    @Test func aTimeoutOnItsClockEndsTheWait() async throws {
        let (wakeup, clock) = (Wakeup(), ManualClock())
        let start = clock.now
        let waiting = Task { try await wakeup.wait(timeout: .milliseconds(300), clock: clock) }
        await clock.waitForSleepers()
        #expect(clock.nextDeadline == start.advanced(by: .milliseconds(300)))
        clock.advance(by: .milliseconds(300))
        try await waiting.value
    }

    @Test func aSignalFromAnotherThreadWakesTheWaiter() async throws {
        let wakeup = Wakeup()
        let signaller = Thread {
            usleep(50_000)
            wakeup.signal()
        }
        signaller.start()
        // With a timeout of a minute, returning well before it means the signal woke it.
        let waited = try await ContinuousClock().measure { try await wakeup.wait(timeout: .seconds(60)) }
        #expect(waited < .seconds(30), "the wait ended only at its timeout (\(waited))")
    }

    @Test func aCancelledWaitEndsAtOnce() async throws {
        let wakeup = Wakeup()
        let waiting = Task { try await wakeup.wait(timeout: .seconds(3600)) }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        // A later wait is not disturbed by the cancelled one.
        wakeup.signal()
        try await wakeup.wait(timeout: .seconds(3600))
    }
}
