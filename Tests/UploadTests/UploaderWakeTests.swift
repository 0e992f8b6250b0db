import Foundation
import Logging
import MetrcSandbox
import OutlawStore
import Synchronization
import Testing
@testable import Upload

/// The upload loop under a stream of wakes: every stored batch wakes it, and under load that is hundreds a second.
/// Timing here only ever bounds from above, by the time that really passed: the suite runs beside everything else
/// on two cores, and a starved loop goes round less, never more.
@Suite("Uploader wakes")
struct UploaderWakeTests {
    @Test func wakesUnderLoadAreTakenByOnePassASettleTime() async throws {
        let rig = try await UploaderSandboxTests.Rig.make()
        try rig.store.setUploadsPaused(true, actor: "test")
        // The loop reads the clock twice a pass (its heartbeat and the long-wait check) while uploads are paused.
        let clockReads = Atomic<Int>(0)
        let uploader = Uploader(
            store: rig.store, client: rig.client, defaultKey: SandboxDemo.ownerKey,
            configuration: UploaderConfiguration(pollInterval: .seconds(30), backoff: Backoff(base: 0, cap: 0), wakeSettle: .milliseconds(100)),
            logger: Logger(label: "uploader-wake-tests"),
            clock: {
                clockReads.add(1, ordering: .relaxed)
                return Date()
            })
        let loop = Task { try await uploader.run() }
        try await Self.until { clockReads.load(ordering: .relaxed) > 0 }
        let before = clockReads.load(ordering: .relaxed)
        let start = ContinuousClock.now
        // A wake every millisecond for a second, from a thread of its own (not the two the tests share).
        let waker = Thread {
            let end = Date().addingTimeInterval(1)
            while Date() < end {
                uploader.wake()
                usleep(1000)
            }
        }
        waker.start()
        try await Task.sleep(for: .seconds(1))
        try await Self.until { clockReads.load(ordering: .relaxed) > before + 2 }
        let elapsed = ContinuousClock.now - start
        let passes = (clockReads.load(ordering: .relaxed) - before) / 2
        loop.cancel()
        _ = try? await loop.value
        try await rig.shutdown()
        // One pass per 100 ms that really passed (a spinning loop made thousands a second).
        let bound = Int(elapsed / .milliseconds(100)) + 3
        #expect((1...bound).contains(passes), "\(passes) passes in \(elapsed)")
    }

    /// Polls until `condition` holds (at most 60 s).
    static func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            try #require(ContinuousClock.now < deadline, "timed out")
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

@Suite("Wakeup")
struct WakeupTests {
    @Test func aSignalWakesAWaiterAndLeavesNothingPending() async throws {
        let wakeup = Wakeup()
        wakeup.signal()
        // Taken at once by the pending signal; this wait's timer is cancelled, and must not signal as it ends.
        await wakeup.wait(timeout: .seconds(30))
        try await Task.sleep(for: .milliseconds(200))
        let waited = await ContinuousClock().measure { await wakeup.wait(timeout: .milliseconds(300)) }
        #expect(waited >= .milliseconds(250), "a wait with nothing signalled returned after \(waited)")
    }

    @Test func aSignalFromAnotherThreadWakesTheWaiter() async {
        let wakeup = Wakeup()
        let signaller = Thread {
            usleep(50_000)
            wakeup.signal()
        }
        signaller.start()
        // With a timeout of an hour, returning at all means the signal woke it.
        await wakeup.wait(timeout: .seconds(3600))
    }
}
