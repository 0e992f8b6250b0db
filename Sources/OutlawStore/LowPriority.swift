import CIOPriority
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Long copies that must not slow ingest (backups) run at the lowest CPU and disk priority, on a thread of their own.
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

    /// Lowers the calling thread (and the threads it starts later) to `niceness`, and its disk I/O to the idle class;
    /// a failure leaves it as it was.
    public static func lowerThisThread() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        // The idle I/O class: the disk's scheduler (mq-deadline, BFQ) sends the copy's writes only when no other I/O
        // waits, so a commit's fsync is not queued behind a megabyte of copy. Any user may take it (ioprio_set(2)).
        _ = outlaw_ioprio_set_self(idleIOPriority)
        #endif
    }

    /// The calling thread's I/O priority as `ioprio_get(2)` gives it (class << 13 | data), for tests.
    public static func currentIOPriority() -> Int32 {
        #if os(Linux)
        return outlaw_ioprio_get_self()
        #else
        return 0
        #endif
    }

    /// `IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0)`.
    public static let idleIOPriority: Int32 = 3 << 13

    /// The calling thread's nice value (for tests), as `getpriority` reports it.
    public static func currentNiceness() -> Int32 {
        #if os(Linux)
        return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        #else
        return 0
        #endif
    }
}
