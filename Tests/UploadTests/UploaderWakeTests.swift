import Foundation
import Logging
import MetrcSandbox
import OutlawStore
import Synchronization
import Testing
@testable import Upload

/// The upload loop under a stream of wakes: every stored batch wakes it, and under load that is hundreds a second.
@Suite("Uploader wakes")
struct UploaderWakeTests {
    @Test func wakesUnderLoadAreTakenByOnePassASettleTime() async throws {
        let rig = try await UploaderSandboxTests.Rig.make()
        try rig.store.setUploadsPaused(true, actor: "test")
        // The loop reads the clock twice a pass (its heartbeat and the long-wait check) while uploads are paused.
        let clockReads = Atomic<Int>(0)
        let uploader = Uploader(
            store: rig.store, client: rig.client, defaultKey: SandboxDemo.ownerKey,
            configuration: UploaderConfiguration(pollInterval: .seconds(5), backoff: Backoff(base: 0, cap: 0), wakeSettle: .milliseconds(100)),
            logger: Logger(label: "uploader-wake-tests"),
            clock: {
                clockReads.add(1, ordering: .relaxed)
                return Date()
            })
        let loop = Task { try await uploader.run() }
        try await Task.sleep(for: .milliseconds(300))
        let before = clockReads.load(ordering: .relaxed)
        let start = ContinuousClock.now
        var wakes = 0
        while ContinuousClock.now - start < .seconds(1) {
            uploader.wake()
            wakes += 1
            try await Task.sleep(for: .milliseconds(2))
        }
        let passes = (clockReads.load(ordering: .relaxed) - before) / 2
        loop.cancel()
        _ = try? await loop.value
        try await rig.shutdown()
        // About ten passes in a second of wakes, not one a wake.
        #expect(wakes > 50)
        #expect((2...16).contains(passes), "\(passes) passes for \(wakes) wakes")
    }
}

@Suite("Wakeup")
struct WakeupTests {
    @Test func aSignalWakesAWaiterAndLeavesNothingPending() async throws {
        let wakeup = Wakeup()
        let signaller = Task {
            try await Task.sleep(for: .milliseconds(50))
            wakeup.signal()
        }
        let clock = ContinuousClock()
        let first = await clock.measure { await wakeup.wait(timeout: .seconds(10)) }
        try await signaller.value
        #expect(first < .seconds(5))
        // The first wait's timer was cancelled by the signal; it must not count as a wake.
        try await Task.sleep(for: .milliseconds(50))
        let second = await clock.measure { await wakeup.wait(timeout: .milliseconds(300)) }
        #expect(second >= .milliseconds(250), "a wait with nothing signalled returned after \(second)")
    }

    @Test func aSignalBeforeTheWaitIsKept() async {
        let wakeup = Wakeup()
        wakeup.signal()
        let waited = await ContinuousClock().measure { await wakeup.wait(timeout: .seconds(10)) }
        #expect(waited < .seconds(5))
    }
}
