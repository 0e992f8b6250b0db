import Foundation

/// Capped exponential backoff with jitter, for retrying Metrc without limit of time.
public struct Backoff: Sendable, Equatable {
    public var base: TimeInterval
    public var cap: TimeInterval

    public init(base: TimeInterval = 2, cap: TimeInterval = 600) {
        self.base = base
        self.cap = cap
    }

    /// The wait before attempt `attempt + 1` after `attempt` failures; `jitter` in 0...1 spreads retries
    /// (half to all of the capped delay) so many events do not hit a recovering Metrc at once.
    public func delay(afterAttempts attempt: Int, jitter: Double) -> TimeInterval {
        let exponent = Double(max(0, min(attempt - 1, 30)))
        let raw = min(cap, base * pow(2, exponent))
        return raw * (0.5 + 0.5 * min(max(jitter, 0), 1))
    }
}
