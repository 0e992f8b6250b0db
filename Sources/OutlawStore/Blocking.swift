import NIOPosix

/// Runs blocking store work (SQLite reads, and writes that wait for fsync) on one bounded pool of threads, never on
/// Swift's cooperative pool. On Linux, that pool and Dispatch's non-overcommitting queues share as many threads as
/// there are cores (2 here): blocking them would stall device sessions, the uploader and, in tests, the in-process
/// sandbox.
public enum Blocking {
    /// The pool's size. SQLite runs one write and GRDB five reads (its default `maximumReaderCount`) at a time, so more
    /// threads would only wait for a connection; 16 leaves ten beside those six for writes queued for the one writer
    /// (the uploader records up to `concurrency` attempts ahead, a reference sync applies up to ten pages at once,
    /// hellos and logins write), so a device's read is not queued behind them. The batch writer, the checkpointer and
    /// PIN hashing have threads of their own and do not count here.
    public static let threads = 16

    /// Started on first use and never stopped: a process-lifetime resource, like NIO's singletons (whose blocking pool
    /// has one thread per core, too few for this).
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        return pool
    }()

    /// Runs `work` on the pool and returns what it returns or throws.
    ///
    /// The work runs even if the calling task is cancelled while it waits for a thread: a store write once asked for
    /// is done (the uploader takes back its unsent attempts as it stops). `NIOThreadPool.runIfActive` would drop it.
    /// `work` must never wait for other work on this pool, or a full pool deadlocks: store calls wait only for
    /// SQLite's connections, which the work holding them gives back without waiting for the pool.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            pool.submit { state in
                guard case .active = state else {
                    continuation.resume(throwing: NIOThreadPoolError.ThreadPoolInactive())
                    return
                }
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
