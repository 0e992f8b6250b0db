import Foundation

/// Polls `check` until it returns a value or `timeout` passes (then nil): for a test that waits for proof that
/// something happened, never for a fixed time.
public func eventually<T>(timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(50),
                          _ check: () async throws -> T?) async throws -> T? {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await check() { return value }
        if ContinuousClock.now >= deadline { return nil }
        try await Task.sleep(for: interval)
    }
}
