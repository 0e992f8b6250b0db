/// Keeps systemd's start timeout (`TimeoutStartSec=`, 60 s in outlawd.service) from killing a start whose one long
/// step is still going: a store's schema migration over years of events can outlast it, and a start killed there rolls
/// the migration back, so every restart would begin it again and end the same way.
///
/// While the step runs, every `interval` it sends `EXTEND_TIMEOUT_USEC=` for three intervals from then, with a
/// `STATUS=` saying what the start waits for (systemd 236 and later). A step that ends within the first interval (every
/// normal start) sends nothing. Clock-generic like `Watchdog`, so tests drive it with a manual clock.
public struct StartTimeoutExtension<C: Clock>: Sendable where C.Duration == Duration {
    /// How the notification leaves: `SystemdNotifier.send` in the daemon, a recorder in tests.
    public typealias Send = @Sendable ([(String, String)]) -> Void

    let clock: C
    let interval: Duration
    let send: Send

    public init(clock: C, interval: Duration = .seconds(10), send: @escaping Send) {
        self.clock = clock
        self.interval = interval
        self.send = send
    }

    /// The notification sent at each interval while a step that `status` describes runs.
    public func notification(status: String) -> [(String, String)] {
        let microseconds = (interval * 3).components.seconds * 1_000_000 + (interval * 3).components.attoseconds / 1_000_000_000_000
        return [("EXTEND_TIMEOUT_USEC", "\(microseconds)"), ("STATUS", status)]
    }

    /// Runs `step`, extending the start timeout while it lasts; nothing is sent once it has returned or thrown.
    /// `first` runs once, just before the first extension (the daemon's journal line saying why its start is slow).
    public func during<T: Sendable>(_ status: String, first: @escaping @Sendable () -> Void = {},
                                    _ step: @escaping @Sendable () async throws -> T) async throws -> T {
        let (clock, interval, send, message) = (self.clock, self.interval, self.send, self.notification(status: status))
        let ticker = Task {
            var sent = 0
            await clock.every(interval, immediately: false) {
                if sent == 0 { first() }
                sent += 1
                send(message)
            }
        }
        do {
            let value = try await step()
            ticker.cancel()
            await ticker.value
            return value
        } catch {
            ticker.cancel()
            await ticker.value
            throw error
        }
    }
}
