import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The service watchdog (`WatchdogSec=`): pings `WATCHDOG=1` at half the interval systemd asked for,
/// but only while the daemon says it is alive, so that a hung daemon stops pinging and is killed.
public struct SystemdWatchdog: Sendable {
    /// The interval systemd expects pings within (`WATCHDOG_USEC`).
    public let interval: Duration
    private let ping: @Sendable () -> Void

    /// A watchdog with an explicit interval; `ping` defaults to sending `WATCHDOG=1`.
    public init(interval: Duration, ping: (@Sendable () -> Void)? = nil) {
        self.interval = interval
        self.ping = ping ?? { _ = SystemdNotifier().watchdogPing() }
    }

    /// The watchdog systemd configured for this process (`sd_watchdog_enabled(3)`: `WATCHDOG_USEC` set
    /// and `WATCHDOG_PID` unset or ours), or nil when there is none.
    public static func fromEnvironment() -> SystemdWatchdog? {
        guard let usec = enabledInterval() else { return nil }
        return SystemdWatchdog(interval: .microseconds(Int64(clamping: usec)))
    }

    /// The raw `sd_watchdog_enabled` answer in microseconds, nil when disabled or malformed.
    public static func enabledInterval() -> UInt64? {
        var usec: UInt64 = 0
        let r = sd_watchdog_enabled(0, &usec)
        guard r > 0, usec > 0 else { return nil }
        return usec
    }

    /// How often ``run(clock:isAlive:)`` pings: half of ``interval``.
    public var pingInterval: Duration { interval / 2 }

    /// Pings every ``pingInterval`` while `isAlive()` returns true; returns on cancellation without waiting out an interval.
    ///
    /// `isAlive` should prove the event loop and the uploader really make progress (e.g. a round trip
    /// through each). If it returns false, or never returns, no ping is sent and systemd kills the
    /// service once ``interval`` has passed since the last ping. A later `true` resumes pinging.
    public func run<C: Clock>(
        clock: C,
        isAlive: @Sendable () async -> Bool
    ) async where C.Duration == Duration {
        // A slow isAlive that made a round late does not make a burst: the next round is then an interval from now.
        await clock.every(pingInterval) {
            if await isAlive(), !Task.isCancelled {
                ping()
            }
        }
    }

    /// ``run(clock:isAlive:)`` on the continuous clock.
    public func run(isAlive: @Sendable () async -> Bool) async {
        await run(clock: ContinuousClock(), isAlive: isAlive)
    }
}
