import Foundation

/// Runs blocking work (socket reads, waiting for a process) on a Dispatch thread, never on Swift's
/// cooperative pool: with 2 cores that pool has 2 threads, and tests blocking them would starve the
/// in-process Metrc sandbox the daemon is waiting on.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
