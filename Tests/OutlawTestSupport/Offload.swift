import Foundation

/// Runs blocking work (socket reads, waiting for a process) on a thread of its own, never on Swift's
/// cooperative pool. On Linux that pool and `DispatchQueue.global()` share the same few worker threads
/// (2 here), so tests blocking them would starve the in-process Metrc sandbox the daemon is waiting on.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}
