extension Clock where Duration == Swift.Duration {
    /// Runs `body` every `interval` until the task is cancelled, and then returns at once: a stop never waits out an
    /// interval, and nothing runs after it (a run already started finishes).
    ///
    /// The first run is now, or with `immediately: false` one interval from now. Each next run is due one interval
    /// after the previous one was due or, when a slow run made it late, one interval from now: no burst to catch up.
    /// `interval` is read again for each wait, so a reload that changes it takes effect at the next one.
    ///
    /// Here rather than beside the store because the watchdog is one of its users; the daemon's loops import Systemd.
    public func every(_ interval: @autoclosure () -> Duration, immediately: Bool = true, _ body: () async -> Void) async {
        var next = now
        if !immediately {
            next = next.advanced(by: interval())
            do {
                try await sleep(until: next, tolerance: nil)
            } catch {
                return
            }
        }
        while !Task.isCancelled {
            await body()
            let period = interval()
            next = next.advanced(by: period)
            let current = now
            if next < current { next = current.advanced(by: period) }
            do {
                try await sleep(until: next, tolerance: nil)
            } catch {
                return
            }
        }
    }
}
