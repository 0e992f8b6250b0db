import NIOPosix

/// Runs blocking work (socket reads, waiting for a process) on the tests' pool, never on Swift's cooperative pool.
/// On Linux that pool and `DispatchQueue.global()` share the same few worker threads (2 here), so tests blocking them
/// would starve the in-process Metrc sandbox the daemon is waiting on.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Offload.pool.submit { state in
            guard case .active = state else {
                continuation.resume(throwing: NIOThreadPoolError.ThreadPoolInactive())
                return
            }
            continuation.resume(with: Result { try body() })
        }
    }
}

enum Offload {
    /// Not the store's pool (`Blocking`), and larger: each call waits for a peer (a daemon's answer, a process's exit)
    /// until it comes or times out, suites run in parallel holding dozens at once, and a call queued behind a full
    /// pool could be the one its own test's other call waits for (a reader while a sender floods). Started on first
    /// use, never stopped.
    static let threads = 128

    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        return pool
    }()
}
