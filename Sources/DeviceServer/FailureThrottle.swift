/// Slows down one source that keeps failing (a device's PIN guesses, an address's bad hellos) on its own, so it
/// cannot guess fast nor lock everyone's names for them, while every other source goes at full speed.
///
/// Pure: the caller passes the time, so tests drive it with instants of their own. Each attempt takes the next
/// slot of its source, and attempts still running count as failures until they end: however many connections a
/// source opens, once it has `freeFailures` failures its attempts are spaced by a delay that starts at `baseDelay`
/// and doubles with each further failure, up to `maxDelay`. A success, or `forgetAfter` without an attempt, starts the source afresh.
/// With `runningCountsBeforeAFailure` false, attempts still running count only once the source has failed: a source
/// that many honest clients share (every handheld behind one NAT address, reconnecting together after a restart)
/// is not slowed for being busy; its first burst is bounded by the caller's cap on attempts at once.
public struct FailureThrottle<Key: Hashable & Sendable, Instant: InstantProtocol & Sendable>: Sendable
where Instant.Duration == Duration {
    struct Source: Sendable {
        var failures = 0
        var running = 0
        var lastActivity: Instant
        var nextSlot: Instant
    }

    /// How an attempt ended.
    public enum Result: Sendable {
        case failure, success, neither
    }

    public let freeFailures: Int
    public let baseDelay: Duration
    public let maxDelay: Duration
    public let forgetAfter: Duration
    /// Sources remembered at most; past this the one idle longest is forgotten (memory stays bounded).
    public let capacity: Int
    public let runningCountsBeforeAFailure: Bool
    private var sources: [Key: Source] = [:]

    public init(freeFailures: Int = 3, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(60),
                forgetAfter: Duration = .seconds(15 * 60), capacity: Int = 10_000, runningCountsBeforeAFailure: Bool = true)
    {
        self.runningCountsBeforeAFailure = runningCountsBeforeAFailure
        self.freeFailures = freeFailures
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.forgetAfter = forgetAfter
        self.capacity = capacity
    }

    /// How long this attempt must wait before it runs; its slot is taken by this call, and it counts as running
    /// until `ended`.
    public mutating func admit(_ key: Key, now: Instant) -> Duration {
        var source = sources[key] ?? Source(lastActivity: now, nextSlot: now)
        if source.running == 0, source.lastActivity.advanced(by: forgetAfter) < now {
            source = Source(lastActivity: now, nextSlot: now)
        }
        let start = max(now, source.nextSlot)
        source.running += 1
        let counted = source.failures == 0 && !runningCountsBeforeAFailure ? 0 : source.failures + source.running
        source.nextSlot = start.advanced(by: delay(afterFailures: counted))
        source.lastActivity = now
        sources[key] = source
        evictIfFull()
        return now.duration(to: start)
    }

    /// An admitted attempt of `key` ended.
    public mutating func ended(_ key: Key, _ result: Result, now: Instant) {
        guard var source = sources[key] else { return }
        source.running = max(0, source.running - 1)
        source.lastActivity = now
        switch result {
        case .failure: source.failures += 1
        case .success: source.failures = 0
        case .neither: break
        }
        if source.failures == 0, source.running == 0 {
            sources[key] = nil
        } else {
            sources[key] = source
        }
    }

    /// The failures counted for `key` now (0 once forgotten).
    public func failures(of key: Key, now: Instant) -> Int {
        guard let source = sources[key], source.running > 0 || source.lastActivity.advanced(by: forgetAfter) >= now else { return 0 }
        return source.failures
    }

    /// The spacing between attempts once a source has failed (or has running) `failures` times.
    public func delay(afterFailures failures: Int) -> Duration {
        guard failures >= freeFailures else { return .zero }
        let doublings = min(failures - freeFailures, 30)
        return min(baseDelay * (1 << doublings), maxDelay)
    }

    private mutating func evictIfFull() {
        guard sources.count > capacity,
              let idle = sources.filter({ $0.value.running == 0 }).min(by: { $0.value.lastActivity < $1.value.lastActivity })?.key
        else { return }
        sources[idle] = nil
    }
}
