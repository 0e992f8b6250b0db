import Metrics

/// The store's metrics: the group commit's transaction time (made once; recording is a lock and a bucket scan).
public enum StoreMetrics {
    static let commitDuration = Timer(label: "outlawd_commit_duration_seconds")

    /// Makes the series now, so it is served before the first commit.
    public static func register() {
        _ = commitDuration
    }

    static func committed(since started: ContinuousClock.Instant) {
        commitDuration.record(duration: started.duration(to: .now))
    }
}
