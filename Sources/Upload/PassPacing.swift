/// The wait after a pass that found nothing to do: until a wake or the poll interval, and never sooner than the
/// settle time after that pass began. Under load every stored batch wakes the uploader, hundreds a second, and
/// one pass a settle time takes all their events with one read of the queue.
struct PassPacing: Sendable {
    let pollInterval: Duration
    let settle: Duration

    /// Throws `CancellationError` at once when the task is cancelled.
    func waitForNextPass<C: Clock>(after passStarted: C.Instant, wakeup: Wakeup, clock: C) async throws where C.Duration == Duration {
        try await wakeup.wait(timeout: pollInterval, clock: clock)
        let settled = passStarted.advanced(by: settle)
        if clock.now < settled { try await clock.sleep(until: settled, tolerance: nil) }
    }
}
