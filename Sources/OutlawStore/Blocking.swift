import Foundation

/// Runs blocking store work (SQLite reads, and writes that wait for fsync) on a thread of its own. On Linux,
/// Swift's cooperative pool and Dispatch's non-overcommitting queues share as many threads as there are cores
/// (2 here): blocking them would stall device sessions, the uploader and, in tests, the in-process sandbox.
public enum Blocking {
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}
