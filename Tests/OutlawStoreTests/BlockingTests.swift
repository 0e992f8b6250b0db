import Foundation
import Synchronization
import Testing

@testable import OutlawStore

/// `Blocking.run`: one bounded pool for every async store call.
@Suite("Blocking pool", .serialized, .timeLimit(.minutes(1)))
struct BlockingTests {
    final class Gauge: Sendable {
        private let state = Mutex((now: 0, most: 0, started: 0))
        func enter() {
            state.withLock {
                $0.now += 1
                $0.started += 1
                $0.most = max($0.most, $0.now)
            }
        }
        func leave() { state.withLock { $0.now -= 1 } }
        var most: Int { state.withLock { $0.most } }
        var started: Int { state.withLock { $0.started } }
    }

    @Test func manyMoreCallsThanThreadsAllFinishAndNeverMoreRunAtOnce() async throws {
        let gauge = Gauge()
        let calls = Blocking.threads * 4
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<calls {
                group.addTask {
                    try await Blocking.run {
                        gauge.enter()
                        defer { gauge.leave() }
                        usleep(20_000)
                        return i
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.sorted() == Array(0..<calls))
        #expect(gauge.most <= Blocking.threads)
        #expect(gauge.most > 1, "the calls ran side by side")
    }

    @Test func workRunsEvenWhenItsCallerIsCancelledWhileItWaitsForAThread() async throws {
        // Every thread held until the test lets go, so the next call waits in the queue.
        let gauge = Gauge()
        let release = DispatchSemaphore(value: 0)
        let holders = (0..<Blocking.threads).map { _ in
            Task {
                try await Blocking.run {
                    gauge.enter()
                    release.wait()
                    gauge.leave()
                }
            }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while gauge.started < Blocking.threads, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(gauge.started == Blocking.threads)

        let ran = Mutex(false)
        let write = Task { try await Blocking.run { ran.withLock { $0 = true }; return 7 } }
        write.cancel()
        for _ in holders { release.signal() }
        // A store write once asked for is done: the uploader takes back its unsent attempts as it stops.
        #expect(try await write.value == 7)
        #expect(ran.withLock { $0 })
        for holder in holders { try await holder.value }
    }
}

/// Backups run at the lowest CPU and disk priority on a thread of their own, and leave the pool's threads as they were.
@Suite("Low-priority copies", .timeLimit(.minutes(1)))
struct LowPriorityTests {
    @Test func workRunsAtTheLowestPriorityAndThePoolKeepsItsOwn() async throws {
        let inside = try await LowPriority.run {
            (LowPriority.currentNiceness(), LowPriority.currentIOPriority(), LowPriority.currentSchedulingPolicy())
        }
        #expect(inside.0 == LowPriority.niceness)
        #expect(inside.1 == LowPriority.idleIOPriority, "the copy's disk writes are in the idle class")
        #expect(inside.2 == LowPriority.idleSchedulingPolicy, "the copy runs only on a core nothing else wants")
        let pool = try await Blocking.run {
            (LowPriority.currentNiceness(), LowPriority.currentIOPriority(), LowPriority.currentSchedulingPolicy())
        }
        #expect(pool.0 < LowPriority.niceness, "a pool thread was lowered")
        #expect(pool.1 != LowPriority.idleIOPriority, "a pool thread's disk I/O was lowered")
        #expect(pool.2 != LowPriority.idleSchedulingPolicy, "a pool thread was moved to SCHED_IDLE")
        await #expect(throws: StoreError.self) { try await LowPriority.run { () -> Int in throw StoreError("refused") } }
        // outlawctl's form: the calling thread waits; the work runs lowered, and what it throws comes back.
        let waited = try LowPriority.runBlocking { (LowPriority.currentSchedulingPolicy(), LowPriority.currentNiceness()) }
        #expect(waited.0 == LowPriority.idleSchedulingPolicy && waited.1 == LowPriority.niceness)
        #expect(LowPriority.currentSchedulingPolicy() != LowPriority.idleSchedulingPolicy, "the waiting thread was lowered")
        #expect(throws: StoreError.self) { try LowPriority.runBlocking { () -> Int in throw StoreError("refused") } }
    }

    /// Retention's form: a step that uses the caller's own state runs lowered while the caller waits. Many calls in a
    /// row, since the trap this guards against (the closure still held by its thread when the wait ends) is a race.
    @Test func aWaitedStepRunsLoweredOnTheCallersStateAndNeverOutlivesTheWait() throws {
        var seen: [Int32] = []
        for round in 0..<200 {
            let returned = try LowPriority.runWaiting { () -> Int in
                seen.append(LowPriority.currentSchedulingPolicy())
                return round * 2
            }
            #expect(returned == round * 2)
        }
        #expect(seen.count == 200 && seen.allSatisfy { $0 == LowPriority.idleSchedulingPolicy }, "every step ran under SCHED_IDLE")
        #expect(LowPriority.currentSchedulingPolicy() != LowPriority.idleSchedulingPolicy, "the waiting thread was lowered")
        var reached = false
        #expect(throws: StoreError.self) {
            try LowPriority.runWaiting { () -> Int in
                reached = true
                throw StoreError("refused")
            }
        }
        #expect(reached)
    }
}
