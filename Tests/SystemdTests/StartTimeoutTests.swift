import OutlawTestSupport
import Testing

@testable import Systemd

/// `StartTimeoutExtension` on a manual clock: a long start step extends systemd's start timeout at each interval while it
/// runs, a short one sends nothing, and nothing is sent after the step has ended, however it ended.
@Suite("Start timeout extension", .timeLimit(.minutes(1)))
struct StartTimeoutTests {
    struct Refused: Error {}

    /// A step the test ends by hand, and what was sent meanwhile.
    final class Rig: Sendable {
        let clock = ManualClock()
        let sent = Shared<[[String]]>([])
        let firsts = Counter()
        let release = Shared<CheckedContinuation<Void, Never>?>(nil)
        let extender: StartTimeoutExtension<ManualClock>

        init() {
            let sent = self.sent
            extender = StartTimeoutExtension(clock: clock, interval: .seconds(10)) { message in
                sent.update { $0.append(message.map { "\($0.0)=\($0.1)" }) }
            }
        }

        /// Starts a step that waits until `end()`, then throws or returns 7.
        func start(throwing: Bool = false) -> Task<Int, any Error> {
            let (release, firsts) = (self.release, self.firsts)
            return Task {
                try await extender.during("opening the store", first: { firsts.increment() }) {
                    await withCheckedContinuation { release.value = $0 }
                    if throwing { throw Refused() }
                    return 7
                }
            }
        }

        /// Waits until the step is waiting and the ticker sleeps: every send due so far has happened.
        func settle() async {
            while release.value == nil { await Task.yield() }
            await clock.waitForSleepers()
        }

        func end() { release.update { $0?.resume(); $0 = nil } }
    }

    @Test func aLongStepExtendsTheTimeoutEachIntervalAndNothingAfterItEnds() async throws {
        let rig = Rig()
        let step = rig.start()
        await rig.settle()
        rig.clock.advance(by: .seconds(9))
        await rig.clock.waitForSleepers()
        #expect(rig.sent.value.isEmpty, "nothing within the first interval")
        rig.clock.advance(by: .seconds(1))
        await rig.clock.waitForSleepers()
        // Three intervals from now, so one late tick does not let the timeout fire.
        #expect(rig.sent.value == [["EXTEND_TIMEOUT_USEC=30000000", "STATUS=opening the store"]])
        for _ in 0..<3 {
            rig.clock.advance(by: .seconds(10))
            await rig.clock.waitForSleepers()
        }
        #expect(rig.sent.value.count == 4)
        #expect(rig.firsts.value == 1, "the journal line comes once")

        rig.end()
        #expect(try await step.value == 7)
        rig.clock.advance(by: .seconds(60))
        #expect(rig.clock.sleeperCount == 0, "the ticker ended with the step")
        #expect(rig.sent.value.count == 4)
    }

    @Test func aShortStepSendsNothingAndAFailedOneStopsTheExtensions() async throws {
        let quick = Rig()
        let done = quick.start()
        await quick.settle()
        quick.end()
        #expect(try await done.value == 7)
        #expect(quick.sent.value.isEmpty && quick.firsts.value == 0)
        #expect(quick.clock.sleeperCount == 0)

        let failing = Rig()
        let failed = failing.start(throwing: true)
        await failing.settle()
        failing.clock.advance(by: .seconds(10))
        await failing.clock.waitForSleepers()
        #expect(failing.sent.value.count == 1)
        failing.end()
        await #expect(throws: Refused.self) { try await failed.value }
        #expect(failing.clock.sleeperCount == 0)
        failing.clock.advance(by: .seconds(60))
        #expect(failing.sent.value.count == 1)
    }

    @Test func theExtensionIsThreeIntervalsInMicroseconds() {
        let half = StartTimeoutExtension(clock: ManualClock(), interval: .milliseconds(500)) { _ in }
        #expect(half.notification(status: "x").map { "\($0.0)=\($0.1)" } == ["EXTEND_TIMEOUT_USEC=1500000", "STATUS=x"])
    }
}
