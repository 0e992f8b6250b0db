import Foundation

/// Polls `check` until it returns a value or `timeout` passes (then nil): for a test that waits for proof that
/// something happened, never for a fixed time. The one poll-until-deadline loop of the end-to-end tests.
public func eventually<T>(timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(50),
                          _ check: () async throws -> T?) async throws -> T? {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await check() { return value }
        if ContinuousClock.now >= deadline { return nil }
        // The poll interval between two looks for the proof; nothing is ever concluded from this wait alone.
        try await Task.sleep(for: interval)
    }
}

/// `eventually` that throws `TimedOut` naming `what` (and `detail()`, evaluated then: the last state seen, a log)
/// when `check` never returns a value.
@discardableResult
public func eventually<T>(_ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(50),
                          detail: () -> String = { "" }, _ check: () async throws -> T?) async throws -> T {
    if let value = try await eventually(timeout: timeout, every: interval, check) { return value }
    let more = detail()
    throw TimedOut(description: "timed out after \(timeout) waiting for \(what)" + (more.isEmpty ? "" : "\n\(more)"))
}

/// What the throwing `eventually` throws.
public struct TimedOut: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}
