import Foundation
import Synchronization

/// Lets producers (a stored batch, a key change) wake the uploader early; it otherwise polls. One waiter at a time.
public final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var waits: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w.continuation
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal (or at once if one came since the last wait), or after `timeout` on `clock`;
    /// throws `CancellationError` at once when the task is cancelled (a stop never waits out a poll interval).
    public func wait<C: Clock>(timeout: C.Duration, clock: C) async throws {
        // A wake already pending (the common case under load) needs no timer.
        let (pending, id) = state.withLock { s in
            s.waits += 1
            defer { s.pending = false }
            return (s.pending, s.waits)
        }
        if pending { return try Task.checkCancellation() }
        // The timeout ends this wait only, never by signalling: a timer that fired just as a signal came would
        // otherwise leave a wake pending, the next wait would return at once, and the loop would spin.
        let timer = Task {
            do { try await clock.sleep(for: timeout) } catch { return }
            self.end(id)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.pending {
                        s.pending = false
                        return true
                    }
                    s.waiter = (id, continuation)
                    return false
                }
                if resumeNow {
                    continuation.resume()
                } else if Task.isCancelled {
                    end(id)  // cancelled before the waiter was in place: the handler found nothing to end
                }
            }
        } onCancel: {
            self.end(id)
        }
        try Task.checkCancellation()
    }

    /// ``wait(timeout:clock:)`` on the continuous clock.
    public func wait(timeout: Duration) async throws {
        try await wait(timeout: timeout, clock: ContinuousClock())
    }

    /// Resumes wait `id` if it is still waiting.
    private func end(_ id: UInt64) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter, w.id == id else { return nil }
            s.waiter = nil
            return w.continuation
        }
        waiter?.resume()
    }
}
