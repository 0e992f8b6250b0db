import DeviceServer
import Foundation
import Logging
import Metrc
import Metrics
import OutlawConfig
import OutlawKeys
import OutlawMetrics
import OutlawProtocol
import OutlawStore
import ServiceLifecycle
import Synchronization
import Upload

/// The gauges read from the store (backlog, keys, reference data) and the device count, brought up to date by the
/// metrics endpoint before a scrape, on its own queue. The store is read at most every `minInterval`, so scraping
/// often costs nothing more; nothing runs when nobody scrapes.
final class DaemonMetrics: Sendable {
    let store: Store
    let services: DeviceServices
    /// Read at each refresh: a reload may change the key schedule, or start the Metrc side.
    let policy: @Sendable () -> KeyHealthPolicy
    /// The Metrc side now, if any: the Default key it signs with (its health is found by fingerprint) and whether
    /// it syncs reference lists.
    let metrc: @Sendable () -> (defaultKey: String?, referenceSync: Bool)?
    let licenses: [String]
    let started = Date()
    let minInterval: TimeInterval
    private let lastRefresh = Mutex<Date?>(nil)

    static let keyKinds = ["personal", "default"]
    static let keyStatuses: [KeyStatus] = [.ok, .unverified, .rejected]

    let waiting: [EventState: Gauge]
    let oldestWaiting = Gauge(label: "outlawd_oldest_waiting_seconds")
    let devices = Gauge(label: "outlawd_devices_connected")
    let keys: [String: [KeyStatus: Gauge]]
    let expiring: [String: Gauge]

    /// The endpoint, when `[metrics]` has one, refreshing these gauges before each scrape.
    static func services(_ configuration: DaemonConfiguration, store: Store, services: DeviceServices,
                         policy: @escaping @Sendable () -> KeyHealthPolicy,
                         metrc: @escaping @Sendable () -> (defaultKey: String?, referenceSync: Bool)?,
                         logger: Logger) -> [ServiceGroupConfiguration.ServiceConfiguration]
    {
        let m = configuration.metrics
        guard m.enabled else { return [] }
        if !DaemonConfiguration.isLoopback(m.host) {
            logger.warning("metrics are served on a network address without TLS or authentication: let only Prometheus reach it",
                           metadata: MessageID.metricsOnNetworkAddress.metadata(["metrics_listen": "\(m.host):\(m.port)"]))
        }
        let gauges = DaemonMetrics(configuration: configuration, store: store, services: services, policy: policy, metrc: metrc)
        return [.init(service: MetricsEndpoint(host: m.host, port: m.port, logger: logger, refresh: { gauges.refresh() }))]
    }

    init(configuration: DaemonConfiguration, store: Store, services: DeviceServices, policy: @escaping @Sendable () -> KeyHealthPolicy,
         metrc: @escaping @Sendable () -> (defaultKey: String?, referenceSync: Bool)?, minInterval: TimeInterval = 5)
    {
        self.store = store
        self.services = services
        self.policy = policy
        self.metrc = metrc
        self.minInterval = minInterval
        licenses = configuration.facility.licenses
        waiting = Dictionary(uniqueKeysWithValues: EventState.unfinished.map {
            ($0, Gauge(label: "outlawd_events_waiting", dimensions: [("state", $0.rawValue)]))
        })
        keys = Dictionary(uniqueKeysWithValues: Self.keyKinds.map { kind in
            (kind, Dictionary(uniqueKeysWithValues: Self.keyStatuses.map {
                ($0, Gauge(label: "outlawd_keys", dimensions: [("kind", kind), ("status", $0.rawValue)]))
            }))
        })
        expiring = Dictionary(uniqueKeysWithValues: Self.keyKinds.map { ($0, Gauge(label: "outlawd_keys_expiring", dimensions: [("kind", $0)])) })
        Self.setBacklogAlertAfter(hours: configuration.metrc.alertAfterHours)
        // Every counter and histogram series exists from the start, at zero.
        DeviceMetrics.register()
        StoreMetrics.register()
        MetrcMetrics.register()
        UploadMetrics.register()
    }

    /// `metrc.alert_after_hours` for the backlog alert rule (at start, and by a reload that changes it).
    static func setBacklogAlertAfter(hours: Double) {
        Gauge(label: "outlawd_backlog_alert_after_seconds").record(hours * 3600)
    }

    /// Called before each scrape, off the cooperative pool: it blocks on store reads.
    func refresh(now: Date = Date()) {
        devices.record(Double(services.connectedDeviceCount))
        let due = lastRefresh.withLock { last in
            if let last, now.timeIntervalSince(last) < minInterval, now >= last { return false }
            last = now
            return true
        }
        guard due else { return }
        if let stats = try? store.queueStats(countingFinished: false) {
            let counts: [EventState: Int] = [.queued: stats.queued, .uploading: stats.uploading, .held: stats.held, .review: stats.review]
            for (state, gauge) in waiting { gauge.record(Double(counts[state] ?? 0)) }
            let oldest = stats.waiting > 0 ? stats.oldestWaitingReceivedAt.map { max(0, now.timeIntervalSince($0)) } ?? 0 : 0
            oldestWaiting.record(oldest)
        }
        let side = metrc()
        refreshKeys(now: now, defaultKey: side?.defaultKey)
        if side?.referenceSync == true { refreshReference(now: now) }
    }

    func refreshKeys(now: Date, defaultKey: String?) {
        guard let records = try? store.keyHealth() else { return }
        let policy = self.policy()
        var counts: [String: [KeyStatus: Int]] = [:]
        var expiringCounts: [String: Int] = [:]
        for record in records {
            counts["personal", default: [:]][record.status, default: 0] += 1
            if policy.isExpiring(KeyFacts(record), now: now) { expiringCounts["personal", default: 0] += 1 }
        }
        if let defaultKey {
            let status = try? store.defaultKeyStatus()
            counts["default", default: [:]][status ?? .unverified, default: 0] += 1
            if let health = try? store.defaultKeyHealth(key: defaultKey), policy.isExpiring(KeyFacts(health, status: status), now: now) {
                expiringCounts["default", default: 0] += 1
            }
        }
        for (kind, gauges) in keys {
            for (status, gauge) in gauges { gauge.record(Double(counts[kind]?[status] ?? 0)) }
        }
        for (kind, gauge) in expiring { gauge.record(Double(expiringCounts[kind] ?? 0)) }
    }

    /// Per kind, the stalest license's age; a list never synced counts from the daemon's start. Served only while
    /// the sync runs (a gauge at 0 would say fresh), so its handles are looked up here, every `minInterval` at most.
    func refreshReference(now: Date) {
        guard let states = try? store.referenceSyncStates() else { return }
        for kind in ReferenceKind.allCases {
            let ages = licenses.map { license in
                let last = states.first { $0.license == license && $0.kind == kind }?.lastSuccessAt ?? started
                return max(0, now.timeIntervalSince(last))
            }
            Gauge(label: "outlawd_reference_age_seconds", dimensions: [("kind", kind.rawValue)]).record(ages.max() ?? 0)
        }
    }
}
