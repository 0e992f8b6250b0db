import Foundation
import OutlawProtocol
import Synchronization

/// Group commit: batches offered while a transaction is being written wait and go into the next one together.
public final class BatchWriter: Sendable {
    typealias Waiter = (IncomingBatch, CheckedContinuation<BatchOutcome, Never>)

    struct State {
        var pending: [Waiter] = []
        var writing = false
    }

    /// Events in one transaction at most (a batch is never split). A bigger group saves no fsync that matters
    /// but makes every batch in it wait for the last one's rows before any is acknowledged.
    public static let eventsPerTransaction = 4_000
    /// Past this many events received and not yet answered, connections read no further until their batches are
    /// answered (TCP back-pressure), so memory follows the disk's pace rather than the devices' windows.
    public static let busyBacklog = 2 * eventsPerTransaction

    private let store: Store
    private let state = Mutex(State())
    /// Refuse new batches (nack `unavailable`) when the store's disk has less free space than this.
    private let minFreeBytes: Int64
    private let clock: @Sendable () -> Date
    /// Which uploadable events are stored in `review` rather than `queued` (`[review]`); a reload replaces it, and
    /// each transaction reads it once, so a batch is never judged by two rules.
    private let review: Mutex<ReviewRule>
    /// Check each event's names against the copy of Metrc's lists (`[facility] check_scans_against_reference`).
    private let checkScans: Bool
    // SQLite's commit blocks on fsync: keep that off Swift's small cooperative thread pool.
    private let queue = DispatchQueue(label: "outlawd.batch-writer")

    public init(store: Store, minFreeBytes: Int64 = 64 << 20, review: ReviewRule = .none, checkScans: Bool = false,
                clock: @escaping @Sendable () -> Date = Date.init)
    {
        self.store = store
        self.checkScans = checkScans
        self.minFreeBytes = minFreeBytes
        self.review = Mutex(review)
        self.clock = clock
    }

    /// The review rule batches are stored under now.
    public var reviewRule: ReviewRule { review.withLock { $0 } }

    /// Batches committed from now on are stored under `rule` (a reload of `[review]`).
    public func setReviewRule(_ rule: ReviewRule) { review.withLock { $0 = rule } }

    /// Returns once the batch is durably committed (or refused); safe to call from many connections at once.
    public func write(_ incoming: IncomingBatch) async -> BatchOutcome {
        var batch = incoming
        // The scan check reads, on the caller's task: the one writer only writes.
        if checkScans { batch.scanWarnings = (try? store.scanWarnings(batch.batch)) ?? [:] }
        return await withCheckedContinuation { continuation in
            let startWriter = state.withLock { s in
                s.pending.append((batch, continuation))
                if s.writing { return false }
                s.writing = true
                return true
            }
            if startWriter {
                queue.async { self.drain() }
            }
        }
    }

    /// How many of the waiting batches (their event counts, oldest first) go into the next transaction: as many
    /// as fit in `limit` events, and always the first, however big.
    static func groupSize(_ eventCounts: some Sequence<Int>, limit: Int = eventsPerTransaction) -> Int {
        var events = 0
        var count = 0
        for n in eventCounts {
            if count > 0, events + n > limit { break }
            events += n
            count += 1
        }
        return count
    }

    private func drain() {
        while true {
            let group: [Waiter] = state.withLock { s in
                let count = Self.groupSize(s.pending.lazy.map(\.0.batch.events.count))
                let taken = Array(s.pending.prefix(count))
                s.pending.removeFirst(count)
                if taken.isEmpty { s.writing = false }
                return taken
            }
            if group.isEmpty { return }
            let outcomes: [BatchOutcome]
            if let free = freeBytes(), free < minFreeBytes {
                outcomes = group.map { _ in .rejected(code: .unavailable, message: "the server's disk is nearly full; retry later") }
            } else {
                do {
                    let started = ContinuousClock.now
                    outcomes = try store.commit(group.map(\.0), now: clock(), review: reviewRule)
                    StoreMetrics.committed(since: started)
                } catch {
                    outcomes = group.map { _ in .rejected(code: .unavailable, message: "the server cannot store right now; retry later") }
                }
            }
            for (waiter, outcome) in zip(group, outcomes) { waiter.1.resume(returning: outcome) }
        }
    }

    private func freeBytes() -> Int64? {
        var stats = statvfs()
        let folder = URL(fileURLWithPath: store.path).deletingLastPathComponent().path
        guard statvfs(folder, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }
}
