import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Long copies that must not slow ingest (backups) run at the lowest CPU priority, on a thread of their own.
///
/// On Linux a nice value belongs to a thread, and an unprivileged thread cannot raise its priority back: a pool
/// thread lowered once would stay low for the store work that follows, so a backup gets a thread for its run
/// (one every few hours, not one per call). With the copy at nice 19, a device's commit or an upload's read
/// that needs a core takes it at once instead of sharing it.
public enum LowPriority {
    /// The nice value for background copies: the lowest priority there is.
    public static let niceness: Int32 = 19

    /// Runs `work` on a new thread at `niceness` and returns what it returns or throws.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                lowerThisThread()
                continuation.resume(with: Result { try work() })
            }
            thread.name = "outlawd-backup"
            thread.start()
        }
    }

    /// Lowers the calling thread (and the threads it starts later) to `niceness`; a failure leaves it as it was.
    public static func lowerThisThread() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        #endif
    }

    /// The calling thread's nice value (for tests), as `getpriority` reports it.
    public static func currentNiceness() -> Int32 {
        #if os(Linux)
        return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        #else
        return 0
        #endif
    }
}
