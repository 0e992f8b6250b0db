import Foundation
import Synchronization

/// Metrc's GET limits (its rate-limiting notice): per facility and per vendor key, a second and at once.
public struct ReadLimits: Sendable, Equatable {
    public var perSecondPerFacility: Int
    public var concurrentPerFacility: Int
    public var perSecondPerVendorKey: Int
    public var concurrentPerVendorKey: Int

    public init(perSecondPerFacility: Int = 50, concurrentPerFacility: Int = 10, perSecondPerVendorKey: Int = 150,
                concurrentPerVendorKey: Int = 30) {
        self.perSecondPerFacility = max(1, perSecondPerFacility)
        self.concurrentPerFacility = max(1, concurrentPerFacility)
        self.perSecondPerVendorKey = max(1, perSecondPerVendorKey)
        self.concurrentPerVendorKey = max(1, concurrentPerVendorKey)
    }
}

/// The pure bookkeeping of the GET budget: which reads may start now, and when to look again.
///
/// A read uses its second from the moment it starts until one second after its answer arrived. Metrc
/// counts a request when it admits it, which is after we send and before we read the answer, so two reads
/// we count a second apart are at least a second apart for Metrc too: however the network delays them,
/// Metrc never sees more than the limit in any second.
struct ReadBudgetState: Sendable {
    let limits: ReadLimits
    private(set) var inFlightVendor = 0
    private(set) var inFlightFacility: [String: Int] = [:]
    /// When recent answers arrived (seconds), oldest first.
    private var vendorAnswers: [Double] = []
    private var facilityAnswers: [String: [Double]] = [:]
    /// After a 429: no read for this facility (or, for nil, none at all) before this time.
    private var pausedUntil: [String: Double] = [:]
    private var vendorPausedUntil = 0.0

    init(limits: ReadLimits) {
        self.limits = limits
    }

    /// Starts a read for `facility` (nil: a call without a license) and returns nil, or returns the earliest
    /// time worth asking again. A read blocked only by concurrency gets `now` back: ask again after a finish.
    mutating func start(facility: String?, now: Double) -> Double? {
        prune(now)
        var wait = max(vendorPausedUntil, facility.flatMap { pausedUntil[$0] } ?? 0)
        if wait > now { return wait }
        wait = now
        var blocked = false
        if inFlightVendor >= limits.concurrentPerVendorKey { blocked = true }
        if inFlightVendor + vendorAnswers.count >= limits.perSecondPerVendorKey {
            blocked = true
            if let oldest = vendorAnswers.first { wait = max(wait, oldest + 1) }
        }
        if let facility {
            let inFlight = inFlightFacility[facility] ?? 0
            let answers = facilityAnswers[facility] ?? []
            if inFlight >= limits.concurrentPerFacility { blocked = true }
            if inFlight + answers.count >= limits.perSecondPerFacility {
                blocked = true
                if let oldest = answers.first { wait = max(wait, oldest + 1) }
            }
        }
        if blocked { return wait }
        inFlightVendor += 1
        if let facility { inFlightFacility[facility, default: 0] += 1 }
        return nil
    }

    /// The answer of a started read arrived (or it failed) at `now`.
    mutating func finish(facility: String?, now: Double) {
        inFlightVendor = max(0, inFlightVendor - 1)
        vendorAnswers.append(now)
        if let facility {
            inFlightFacility[facility] = max(0, (inFlightFacility[facility] ?? 0) - 1)
            facilityAnswers[facility, default: []].append(now)
        }
    }

    /// Metrc answered 429: every read of that facility (of the vendor key when the facility is nil) waits
    /// `retryAfter` seconds when Metrc gave them, else `fallback`, so one 429 never becomes a storm.
    mutating func rateLimited(facility: String?, now: Double, retryAfter: Double?, fallback: Double) {
        let until = now + max(0, retryAfter ?? fallback)
        if let facility {
            pausedUntil[facility] = max(pausedUntil[facility] ?? 0, until)
        } else {
            vendorPausedUntil = max(vendorPausedUntil, until)
        }
    }

    private mutating func prune(_ now: Double) {
        while let first = vendorAnswers.first, first + 1 <= now { vendorAnswers.removeFirst() }
        for (facility, answers) in facilityAnswers {
            let kept = answers.drop { $0 + 1 <= now }
            facilityAnswers[facility] = kept.isEmpty ? nil : Array(kept)
        }
    }
}

/// The one GET budget every read of the daemon draws from: the sync, read-backs and key checks alike.
public final class ReadBudget: Sendable {
    private struct Locked {
        var budget: ReadBudgetState
        /// Reads waiting for another to finish (blocked by concurrency only).
        var waiters: [CheckedContinuation<Step, Never>] = []
    }

    private enum Step {
        case started
        case sleep(Double)
        case again
    }

    private let state: Mutex<Locked>
    private let now: @Sendable () -> Double

    public init(limits: ReadLimits = ReadLimits(), now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.state = Mutex(Locked(budget: ReadBudgetState(limits: limits)))
        self.now = now
    }

    public var limits: ReadLimits { state.withLock { $0.budget.limits } }

    /// Waits until a read for `facility` may start and starts it; pair with `finish`.
    func acquire(facility: String?) async throws {
        while true {
            let now = self.now
            // Deciding and queueing under one lock: a finish in between cannot be missed.
            let step = await withCheckedContinuation { (continuation: CheckedContinuation<Step, Never>) in
                state.withLock { s in
                    let t = now()
                    guard let next = s.budget.start(facility: facility, now: t) else {
                        return continuation.resume(returning: .started)
                    }
                    if next > t {
                        continuation.resume(returning: .sleep(next - t))
                    } else {
                        s.waiters.append(continuation)
                    }
                }
            }
            switch step {
            case .started: return
            case .again: continue
            case .sleep(let seconds): try await Task.sleep(nanoseconds: UInt64(min(seconds, 60) * 1e9))
            }
        }
    }

    func finish(facility: String?) {
        let t = now()
        let woken = state.withLock { s in
            s.budget.finish(facility: facility, now: t)
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in woken { waiter.resume(returning: .again) }
    }

    func rateLimited(facility: String?, retryAfter: Double?, attempt: Int) {
        let t = now()
        // Without Retry-After: 1, 2, 4, 8 s.
        let fallback = min(8, pow(2, Double(max(0, attempt - 1))))
        state.withLock { $0.budget.rateLimited(facility: facility, now: t, retryAfter: retryAfter, fallback: fallback) }
    }
}

/// Counts the GETs a piece of work made, and the 429s among them (the sync reports both per kind).
public final class ReadTally: Sendable {
    private let counts = Mutex((requests: 0, rateLimited: 0))

    public init() {}

    public var requests: Int { counts.withLock { $0.requests } }
    public var rateLimited: Int { counts.withLock { $0.rateLimited } }

    func count(status: Int?) {
        counts.withLock { c in
            c.requests += 1
            if status == 429 { c.rateLimited += 1 }
        }
    }
}
