import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What became of one notification.
public enum NotifyOutcome: Sendable, Equatable {
    /// The service manager's socket took the datagram.
    case sent
    /// `NOTIFY_SOCKET` is unset: not started by systemd as `Type=notify`, nothing to do.
    case notUnderSystemd
    /// Sending failed; `errno` is the positive error number.
    case failed(errno: Int32)
}

/// Talks to the service manager with `sd_notify(3)`.
///
/// Every call is a no-op (``NotifyOutcome/notUnderSystemd``) when `NOTIFY_SOCKET` is unset, so the
/// daemon can call it unconditionally. `sd_notify` reads `NOTIFY_SOCKET` at each call.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// True when `NOTIFY_SOCKET` is set in this process's environment.
    public var isEnabled: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// `READY=1`, with an optional `STATUS=` in the same datagram.
    @discardableResult
    public func ready(status: String? = nil) -> NotifyOutcome {
        var assignments: [(String, String)] = [("READY", "1")]
        if let status { assignments.append(("STATUS", status)) }
        return send(assignments)
    }

    /// `STATUS=` free-form text shown by `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> NotifyOutcome {
        send([("STATUS", text)])
    }

    /// `STOPPING=1`, with an optional `STATUS=`.
    @discardableResult
    public func stopping(status: String? = nil) -> NotifyOutcome {
        var assignments: [(String, String)] = [("STOPPING", "1")]
        if let status { assignments.append(("STATUS", status)) }
        return send(assignments)
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC now), as systemd's reload protocol asks, and an
    /// optional `STATUS=`; `READY=1` ends the reload.
    @discardableResult
    public func reloading(status: String? = nil) -> NotifyOutcome {
        var assignments: [(String, String)] = [("RELOADING", "1"), ("MONOTONIC_USEC", "\(Self.monotonicMicroseconds())")]
        if let status { assignments.append(("STATUS", status)) }
        return send(assignments)
    }

    /// CLOCK_MONOTONIC in microseconds: the clock systemd compares `MONOTONIC_USEC` with.
    public static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// `WATCHDOG=1`: the keep-alive ping.
    @discardableResult
    public func watchdogPing() -> NotifyOutcome {
        send([("WATCHDOG", "1")])
    }

    /// `WATCHDOG=trigger`: ask systemd to act as if the watchdog timed out.
    @discardableResult
    public func watchdogTrigger() -> NotifyOutcome {
        send([("WATCHDOG", "trigger")])
    }

    /// Sends `KEY=VALUE` lines in one datagram, in the given order.
    /// A newline inside a value would start a new assignment, so it is replaced by a space.
    @discardableResult
    public func send(_ assignments: [(String, String)]) -> NotifyOutcome {
        let text = assignments.map { key, value in
            "\(key)=\(Self.singleLine(value))"
        }.joined(separator: "\n")
        return sendRaw(text)
    }

    /// Sends `KEY=VALUE` lines in one datagram, ordered by key.
    @discardableResult
    public func send(_ assignments: [String: String]) -> NotifyOutcome {
        send(assignments.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// Sends `state` exactly as given (newline-separated assignments).
    @discardableResult
    public func sendRaw(_ state: String) -> NotifyOutcome {
        let result = sd_notify(0, state)
        if result > 0 { return .sent }
        if result == 0 { return .notUnderSystemd }
        return .failed(errno: -result)
    }

    static func singleLine(_ value: String) -> String {
        guard value.contains(where: \.isNewline) else { return value }
        return String(value.map { $0.isNewline ? " " : $0 })
    }
}
