import Foundation

/// The uploader's settings, from `[metrc]` and `[facility]`.
public struct UploaderConfiguration: Sendable {
    public var objectsPerRequest: Int
    public var concurrency: Int
    public var requirePersonalKeys: Bool
    public var alertAfterHours: Double
    /// How often the queue is looked at when nothing wakes the uploader (work requeued by outlawctl).
    public var pollInterval: Duration
    public var backoff: Backoff
    /// How often a rejected Default key is checked again.
    public var defaultKeyRecheck: TimeInterval
    /// The least time between the starts of two passes that a wake began: under load every stored batch wakes the
    /// uploader, hundreds a second, and one pass a settle time takes all their events with one read of the queue.
    public var wakeSettle: Duration

    public init(objectsPerRequest: Int = 100, concurrency: Int = 4, requirePersonalKeys: Bool = false, alertAfterHours: Double = 48,
                pollInterval: Duration = .seconds(1), backoff: Backoff = Backoff(), defaultKeyRecheck: TimeInterval = 300,
                wakeSettle: Duration = .milliseconds(100))
    {
        self.wakeSettle = wakeSettle
        self.objectsPerRequest = objectsPerRequest
        self.concurrency = concurrency
        self.requirePersonalKeys = requirePersonalKeys
        self.alertAfterHours = alertAfterHours
        self.pollInterval = pollInterval
        self.backoff = backoff
        self.defaultKeyRecheck = defaultKeyRecheck
    }
}
