import Foundation
import Synchronization

/// Lets producers (a stored batch, a key change) wake the uploader early; it otherwise polls.
public final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    public func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal (or at once if one came since the last wait), or after `timeout`.
    public func wait(timeout: Duration) async {
        let timer = Task {
            // A timer cancelled because a signal came first must not signal: that would leave a wake pending, the
            // next wait would return at once and cancel its own timer, and the loop would spin.
            do { try await Task.sleep(for: timeout) } catch { return }
            self.signal()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.pending {
                    s.pending = false
                    return true
                }
                s.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
        timer.cancel()
    }
}
