import Logging
import Metrc
import OutlawConfig
import OutlawKeys
import OutlawStore
import Reference
import ServiceLifecycle
import Upload

/// The daemon's Metrc side for one vendor key and Default key: the client, the uploader, the key checks and the
/// reference sync. `ReloadService` runs it, and replaces it whole when a reload brings new keys.
struct MetrcServices: Sendable {
    let client: MetrcClient
    let uploader: Uploader
    let keyHealth: KeyHealthMonitor
    let referenceSync: ReferenceSync?
    /// The keys it signs with, to tell whether a reload brings others.
    let vendorKey: String
    let defaultKey: String?

    /// Nil without a vendor key or a Metrc address: batches are then stored and wait for them.
    init?(configuration: DaemonConfiguration, credentials: MetrcCredentials, store: Store, keyPolicy: Reloadable<KeyHealthPolicy>,
          logger: Logger)
    {
        guard let vendorKey = credentials.vendorKey, let baseURL = configuration.metrc.baseURL else { return nil }
        let m = configuration.metrc
        client = MetrcClient(configuration: MetrcClientConfiguration(
            baseURL: baseURL, vendorKey: vendorKey, requestTimeout: m.requestTimeoutSeconds,
            readLimits: ReadLimits(perSecondPerFacility: m.getsPerSecondPerFacility, concurrentPerFacility: m.concurrentGetsPerFacility,
                                   perSecondPerVendorKey: m.getsPerSecondPerVendorKey,
                                   concurrentPerVendorKey: m.concurrentGetsPerVendorKey)))
        uploader = Uploader(
            store: store, client: client, defaultKey: credentials.defaultKey,
            configuration: UploaderConfiguration(
                objectsPerRequest: m.objectsPerRequest, concurrency: m.concurrency,
                requirePersonalKeys: configuration.facility.requirePersonalKeys, alertAfterHours: m.alertAfterHours),
            logger: logger)
        // Every key checked with Metrc on the [keys] schedule; warnings ahead of expected expiries.
        keyHealth = KeyHealthMonitor(store: store, client: client, uploader: uploader, defaultKey: credentials.defaultKey,
                                     policy: keyPolicy, logger: logger)
        referenceSync = m.referenceSync ? ReferenceSync(
            store: store, client: client, defaultKey: credentials.defaultKey,
            configuration: ReferenceSyncConfiguration(
                licenses: configuration.facility.licenses, interval: m.syncIntervalSeconds,
                fullEvery: m.fullSyncHours * 3600, pagesAtOnce: m.concurrentGetsPerFacility),
            logger: logger) : nil
        self.vendorKey = vendorKey
        defaultKey = credentials.defaultKey
    }

    /// In the order a service group starts them; graceful shutdown runs in reverse, so uploads stop last.
    var services: [ServiceGroupConfiguration.ServiceConfiguration] {
        [.init(service: uploader), .init(service: keyHealth)] + (referenceSync.map { [.init(service: $0)] } ?? [])
    }
}
