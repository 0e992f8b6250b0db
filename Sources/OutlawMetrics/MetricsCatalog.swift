/// One metric family outlawd exports: its `# HELP` text and, for a histogram, its buckets.
public struct MetricFamily: Sendable {
    public let name: String
    public let help: String
    /// Histogram buckets (upper bounds); empty for counters and gauges.
    public let buckets: [Duration]

    public init(_ name: String, _ help: String, buckets: [Duration] = []) {
        self.name = name
        self.help = help
        self.buckets = buckets
    }
}

/// Every metric outlawd exports. swift-metrics carries neither help text nor buckets, and `promtool check metrics`
/// wants a `# HELP` line for each family, so the backend looks them up here by name. Labels take values from small
/// fixed sets only (results, states, kinds, actions, event types): never a user, device, tag or key.
public enum MetricsCatalog {
    public static let all: [MetricFamily] = [
        // Counters.
        MetricFamily("outlawd_batches_total",
                     "Batches answered, by result: stored, duplicate (stored before, acknowledged again) or the nack code."),
        MetricFamily("outlawd_events_total",
                     "Events by type and result: stored (acknowledged), then per Metrc answer uploaded, failed, requeued or held."),
        MetricFamily("outlawd_metrc_requests_total",
                     "Requests to Metrc by action and HTTP status class (error: no answer at all)."),
        MetricFamily("outlawd_logins_total",
                     "Handheld logins by result: ok, bad_credentials, inactive_user, locked, unavailable."),
        MetricFamily("outlawd_upload_passes_total",
                     "Upload passes completed, whether or not they sent anything: proof the uploader looked at the queue."),
        MetricFamily("outlawd_key_health_passes_total",
                     "Key health looks completed: proof the monitor looked at the keys' schedule."),
        // Histograms.
        MetricFamily("outlawd_ack_duration_seconds",
                     "Time from reading a batch line to the store's answer (ack or nack), pipelining waits included.",
                     buckets: [.milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                               .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                               .milliseconds(2500), .seconds(5), .seconds(10)]),
        MetricFamily("outlawd_commit_duration_seconds",
                     "Time of one group-commit transaction (a savepoint per batch, one fsync).",
                     buckets: [.microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
                               .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                               .seconds(1), .milliseconds(2500)]),
        MetricFamily("outlawd_metrc_request_duration_seconds",
                     "Time of one Metrc request by action, answered or not.",
                     buckets: [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                               .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60)]),
        // Gauges.
        MetricFamily("outlawd_events_waiting", "Events not finished, by state: queued, uploading, held, review."),
        MetricFamily("outlawd_oldest_waiting_seconds", "Age of the oldest unfinished event; 0 when none waits."),
        MetricFamily("outlawd_backlog_alert_after_seconds",
                     "metrc.alert_after_hours in seconds: an unfinished event older than this is an alert."),
        MetricFamily("outlawd_devices_connected", "Devices holding a session now."),
        MetricFamily("outlawd_keys", "Metrc keys by kind (personal, default) and status (ok, unverified, rejected)."),
        MetricFamily("outlawd_keys_expiring", "Metrc keys not rejected and within keys.warn_days of their expected expiry (or past it), by kind."),
        MetricFamily("outlawd_reference_age_seconds",
                     "Seconds since each reference list last synced with Metrc (the stalest license; since the start when never)."),
        MetricFamily("outlawd_build_info", "Always 1; the version label names the running outlawd."),
    ]

    static let byName: [String: MetricFamily] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The family of a metric name, nil for one not listed (it is served without help text).
    public static func family(_ name: String) -> MetricFamily? { byName[name] }
}
