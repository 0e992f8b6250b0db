import CThreadPriority
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Long copies that must not slow ingest (backups) run at the lowest CPU and disk priority, on a thread of their own.
///
/// On Linux a priority belongs to a thread, and an unprivileged thread cannot raise its priority back: a pool
/// thread lowered once would stay low for the store work that follows, so a backup gets a thread for its run
/// (one every few hours, not one per call). The thread runs under `SCHED_IDLE`: a device's commit or an upload's
/// read that needs a core takes it the moment it wakes. Nice 19 alone was not enough: the scheduler let the copy
/// finish its slice first, and a paced ack waited up to 4 ms at each of its wake-ups (`perf sched`, 12-06).
/// Nothing at this priority may hold the store's writer: a device's commit would wait for a thread that only runs
/// when a core is idle.
public enum LowPriority {
    /// The nice value for background copies: the lowest priority there is.
    public static let niceness: Int32 = 19

    /// Runs `work` on a new thread at `niceness` and returns what it returns or throws.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            onLoweredThread(work) { continuation.resume(with: $0) }
        }
    }

    /// Runs `work` on a new thread at `niceness`, the calling thread waiting for it (a command-line tool's main thread).
    public static func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) throws -> T {
        let outcome = ThreadOutcome<T>()
        let done = DispatchSemaphore(value: 0)
        onLoweredThread(work) { result in
            outcome.result = result
            done.signal()
        }
        done.wait()
        return try outcome.result!.get()
    }

    /// Runs `work` on a new lowered thread while the calling thread waits: one step of a longer job whose other steps
    /// hold the store's writer and so stay at the caller's priority (retention writes an archive this way, then deletes).
    /// `work` may capture what the caller holds: it ends before this returns.
    public static func runWaiting<T>(_ work: () throws -> T) throws -> T {
        try withoutActuallyEscaping(work) { work in
            let call = WaitedCall(work)
            try runBlocking { try call.run() }
            return call.value!
        }
    }

    /// Starts a thread of its own for `work`, lowered before it runs, and hands `deliver` what it gave.
    private static func onLoweredThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T,
                                                     deliver: @escaping @Sendable (Result<T, any Error>) -> Void) {
        let thread = Thread {
            lowerThisThread()
            deliver(Result { try work() })
        }
        thread.name = "outlaw-lowprio"  // Linux keeps 15 characters of a thread name
        thread.start()
    }

    /// Lowers the calling thread (and the threads it starts later) to `SCHED_IDLE` at `niceness`, and its disk I/O to
    /// the idle class; a failure leaves it as it was.
    public static func lowerThisThread() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        _ = outlaw_sched_idle_self()
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

    /// The calling thread's scheduling policy (`sched_getscheduler`), for tests.
    public static func currentSchedulingPolicy() -> Int32 {
        #if os(Linux)
        return outlaw_sched_policy_self()
        #else
        return 0
        #endif
    }

    /// `SCHED_IDLE`.
    #if os(Linux)
    public static let idleSchedulingPolicy: Int32 = outlaw_sched_idle_policy()
    #else
    public static let idleSchedulingPolicy: Int32 = 0
    #endif

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

/// What a thread's work gave, written by the thread before it signals and read after the wait: the semaphore orders the two.
private final class ThreadOutcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// A closure and what it gave, handed to another thread while the caller waits for it (`runWaiting`): the caller's
/// wait orders every access, so nothing is shared at once.
private final class WaitedCall<T>: @unchecked Sendable {
    /// Released as soon as it has run: the thread that ran it may outlive the wait, and `withoutActuallyEscaping`
    /// traps if the closure is still held when the caller's wait ends.
    private var work: (() throws -> T)?
    var value: T?
    init(_ work: @escaping () throws -> T) { self.work = work }
    func run() throws {
        let work = self.work
        self.work = nil
        value = try work?()
    }
}
