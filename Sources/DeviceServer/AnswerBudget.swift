import Synchronization

/// Counts the answers a connection owes its device, of every kind (ping, status, login, pull, batch), so the reader
/// stops once `window` are owed: a device that sends and never reads fills its own socket, not our memory.
final class AnswerBudget: Sendable {
    /// Why `reserve` gave no place.
    enum Refusal: Error {
        /// The writer is gone: no more answers will be written.
        case closed
        /// No answer was written for the whole wait: the device does not read.
        case stalled
    }

    private struct State {
        var owed = 0
        var closed = false
        var waiter: CheckedContinuation<Void, any Error>?
        var generation = 0
        var timer: Task<Void, Never>?
    }

    let window: Int
    private let state = Mutex(State())

    init(window: Int) {
        self.window = max(1, window)
    }

    /// Takes a place for one more answer, waiting while `window` are owed, for at most `timeout` without an answer
    /// written.
    func reserve(timeout: Duration) async throws(Refusal) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let result: Result<Void, Refusal>? = state.withLock { s in
                    if s.closed { return .failure(.closed) }
                    if s.owed < window {
                        s.owed += 1
                        return .success(())
                    }
                    s.generation += 1
                    let generation = s.generation
                    s.waiter = continuation
                    s.timer = Task { [weak self] in
                        try? await Task.sleep(for: timeout)
                        if !Task.isCancelled { self?.expire(generation) }
                    }
                    return nil
                }
                if let result { continuation.resume(with: result.mapError { $0 }) }
            }
        } catch let refusal as Refusal {
            throw refusal
        } catch {
            throw .closed
        }
    }

    /// A place taken without waiting: for the one answer that ends a session.
    func force() {
        state.withLock { $0.owed += 1 }
    }

    /// One answer is written.
    func release() {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { s in
            s.owed -= 1
            guard let w = s.waiter, s.owed < window else { return nil }
            s.waiter = nil
            s.timer?.cancel()
            s.timer = nil
            s.owed += 1
            return w
        }
        waiter?.resume()
    }

    /// No more answers will be written: a waiting reader is let go.
    func close() {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { s in
            s.closed = true
            s.timer?.cancel()
            s.timer = nil
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(throwing: Refusal.closed)
    }

    private func expire(_ generation: Int) {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { s in
            guard s.generation == generation, let w = s.waiter else { return nil }
            s.waiter = nil
            s.timer = nil
            return w
        }
        waiter?.resume(throwing: Refusal.stalled)
    }
}
