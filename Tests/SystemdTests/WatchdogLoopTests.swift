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

final class Counter: Sendable {
    private let storage = Mutex(0)
    func increment() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}

@Suite("Watchdog loop")
struct WatchdogLoopTests {
    @Test func pingsAtHalfTheIntervalOnlyWhileAlive() async throws {
        let pings = Counter()
        let alive = Flag(true)
        let watchdog = SystemdWatchdog(interval: .milliseconds(40), ping: { pings.increment() })
        #expect(watchdog.pingInterval == .milliseconds(20))
        let task = Task { await watchdog.run { alive.value } }

        // Real time on a loaded 2-core machine: wait for pings rather than count them in a fixed window.
        let pinging = try await TestSupport.eventually(timeout: .seconds(10), interval: .milliseconds(20)) {
            pings.value >= 3 ? true : nil
        }
        #expect(pinging == true, "pings at 20 ms expected, got \(pings.value)")

        alive.value = false
        try await Task.sleep(for: .milliseconds(300))  // a round already past isAlive may still ping
        let frozen = pings.value
        try await Task.sleep(for: .milliseconds(300))
        #expect(pings.value == frozen, "no ping while not alive")

        alive.value = true
        let resumed = try await TestSupport.eventually(timeout: .seconds(10), interval: .milliseconds(20)) {
            pings.value > frozen ? true : nil
        }
        #expect(resumed == true, "pinging resumes when alive again")

        task.cancel()
        await task.value  // run returns on cancellation
    }

    @Test func aHungLivenessCheckMeansNoPing() async throws {
        let pings = Counter()
        let watchdog = SystemdWatchdog(interval: .milliseconds(20), ping: { pings.increment() })
        let task = Task {
            await watchdog.run {
                // The event loop never answers.
                try? await Task.sleep(for: .seconds(3600))
                return true
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(pings.value == 0)
        task.cancel()
        await task.value
        #expect(pings.value == 0, "no ping after cancellation either")
    }

    @Test func runStopsWhenCancelled() async {
        let pings = Counter()
        let watchdog = SystemdWatchdog(interval: .seconds(3600), ping: { pings.increment() })
        let task = Task { await watchdog.run { true } }
        try? await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await task.value
        #expect(pings.value == 1, "one ping at start, then sleeping for half an hour until cancelled")
    }
}
