import Console
import DeviceServer
import Foundation
import Logging
import Metrc
import NIOCore
import NIOPosix
import NIOSSL
import OutlawConfig
import OutlawKeys
import OutlawProtocol
import OutlawStore
import Reference
import ServiceLifecycle
import Synchronization
import Systemd
import Upload

/// Turns a configuration into running services and runs them until SIGTERM or SIGINT.
public struct Daemon {
    public let configuration: DaemonConfiguration
    public let credentials: MetrcCredentials
    public let logger: Logger

    public init(configuration: DaemonConfiguration, credentials: MetrcCredentials, logger: Logger) {
        self.configuration = configuration
        self.credentials = credentials
        self.logger = logger
    }

    /// Runs until a stop signal; `onReady` gets the bound device port once the daemon listens and systemd
    /// has been told it is ready.
    public func run(extraServices: [any Service] = [], onReady: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        DaemonLogLevel.apply(configuration)
        // From here on SIGHUP means reload (`ReloadService`), no longer the default action, which ends the process.
        let hangups = await Hangups()
        // Checked before anything is opened: a configuration that would listen in clear on the network never starts.
        let deviceConfiguration = try deviceServerConfiguration()
        let seal = try StoreKey.load(configuration)
        // Held until the process ends: a restore (outlawctl restore) or a second outlawd waits for this one to stop.
        let storeLock = try StoreLock(storePath: configuration.store.path,
                                      refusal: "the store \(configuration.store.path) is in use by another outlawd or an outlawctl restore")
        defer { withExtendedLifetime(storeLock) {} }
        let (storePath, pinRounds, logger) = (configuration.store.path, configuration.store.pinHashRounds, self.logger)
        // Opening migrates the schema, which over years of events can outlast TimeoutStartSec=: systemd would kill the
        // start, the migration roll back, and every restart end the same way.
        let startTimeout = StartTimeoutExtension(clock: ContinuousClock()) { SystemdNotifier().send($0) }
        let store = try await startTimeout.during("opening the store \(storePath) (a schema upgrade on a big store takes a while)", first: {
            logger.notice("the store is still opening after 10 s, probably upgrading its schema: systemd's start timeout is extended while it lasts",
                          metadata: MessageID.storeSlowToOpen.metadata(["path": "\(storePath)"]))
        }) {
            try await Blocking.run { try Store(path: storePath, pinRounds: pinRounds, seal: seal) }
        }
        try store.checkpointInBackground()
        logger.info("store open", metadata: ["path": "\(store.path)"])
        if seal == nil {
            if configuration.store.allowUnsealedKeys {
                logger.warning("no store key (store.key_file or the outlawd-store-key credential): personal Metrc keys are kept UNSEALED in the store (store.allow_unsealed_keys)",
                               metadata: MessageID.storeKeyMissingUnsealed.metadata())
            } else {
                logger.warning("no store key (store.key_file or the outlawd-store-key credential): personal Metrc keys are refused until one is configured",
                               metadata: MessageID.storeKeyMissing.metadata())
            }
            if let peppered = try? store.pepperedPINCount(), peppered > 0 {
                logger.error("\(peppered) PINs were set under a store key this daemon does not have: those people cannot log in until it is configured again or their PINs are reset",
                             metadata: MessageID.pepperedPINsWithoutStoreKey.metadata())
            }
        } else if let sealed = try? store.sealPlainKeys(), sealed > 0 {
            logger.notice("sealed personal Metrc keys stored before the store key was configured",
                          metadata: MessageID.plainKeysSealed.metadata(["keys": "\(sealed)"]))
        }
        let witness = AuditWitness(store: store, logger: logger)
        witness.recordStart(configuration)
        let review = ReviewRule(eventTypes: Set(configuration.review.eventTypes), users: Set(configuration.review.users))
        if !review.isEmpty {
            logger.info("review gate: matching events wait for outlawctl review", metadata: [
                "event_types": "\(configuration.review.eventTypes.map(\.rawValue).joined(separator: ","))",
                "users": "\(configuration.review.users.joined(separator: ","))",
            ])
        }
        let writer = BatchWriter(store: store, minFreeBytes: Int64(configuration.store.minFreeMegabytes) << 20, review: review,
                                 checkScans: configuration.facility.checkScansAgainstReference)

        // Every key checked with Metrc on the [keys] schedule; a reload may change the schedule.
        let keyPolicy = Reloadable(KeyHealthPolicy(configuration.keys))
        // The Metrc side: `ReloadService` runs it, and starts or replaces it when a reload brings Metrc keys.
        let metrc = Reloadable(MetrcServices(configuration: configuration, credentials: credentials, store: store,
                                             keyPolicy: keyPolicy, logger: logger))
        // No Metrc address or keys (a fresh installation): said once, naming the files; `outlawctl status` shows it too.
        Daemon.announceUploadGaps(configuration, credentials: credentials, store: store, logger: logger)
        let wake: @Sendable () -> Void = { metrc.value?.uploader.wake() }
        // Made for each use: the Metrc client that checks keys comes with the Metrc side, which a reload may start.
        let keys: @Sendable () -> KeyService = { [requirePersonalKeys = configuration.facility.requirePersonalKeys,
                                                   allowUnsealedKeys = configuration.store.allowUnsealedKeys] in
            KeyService(store: store, client: metrc.value?.client, requirePersonalKeys: requirePersonalKeys,
                       allowUnsealedKeys: allowUnsealedKeys, onChange: wake)
        }
        let pull = ReferencePull(store: store, defaultLicense: configuration.facility.license, licenses: configuration.facility.licenses)
        let services = DeviceServices(
            store: store, writer: writer,
            metrcKeyStatus: { user in await keys().loginStatus(user, policy: keyPolicy.value) },
            setKeyHandler: { message, _ in await keys().handle(message) },
            pullHandler: { request, sink in await pull.answer(request, send: sink.send) },
            onBatchStored: wake)
        let group = MultiThreadedEventLoopGroup.singleton
        let server = DeviceServer(configuration: deviceConfiguration, services: services, logger: logger, group: group)
        let systemd = SystemdService(server: server, services: services, store: store, uploader: { metrc.value?.uploader }, witness: witness,
                                     eventLoop: group.next(), logger: logger, maxUploaderStall: configuration.metrc.requestTimeoutSeconds * 2 + 60,
                                     onReady: onReady)
        // [backup]: the daemon's own copies of the store; a reload may change them.
        let backup = Reloadable(configuration.backup)
        // [retention]: old finished events leave for archive files; a reload may change it.
        let retention = Reloadable(configuration.retention)
        var list: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // Graceful shutdown runs in reverse: systemd hears STOPPING first, then devices get their answers, then uploads
        // (run by the reload service) stop.
        list.append(.init(service: ReloadService(configuration: configuration, hangups: hangups, writer: writer, keyPolicy: keyPolicy,
                                                 metrc: metrc, store: store, logger: logger, backup: backup, retention: retention)))
        // Stopped after the device server, so a copy being taken then delays no device's answers.
        list.append(.init(service: BackupService(store: store, settings: backup, logger: logger)))
        list.append(.init(service: RetentionService(store: store, settings: retention, storePath: configuration.store.path, logger: logger,
                                                    pause: RetentionService.testPause())))
        list.append(.init(service: server))
        list += DaemonMetrics.services(configuration, store: store, services: services, policy: { keyPolicy.value },
                                       metrc: { metrc.value.map { ($0.defaultKey, $0.referenceSync != nil) } }, logger: logger)
        if let console = try consoleServer(store: store, keys: keys, keyPolicy: keyPolicy, services: services) {
            list.append(.init(service: console))
        }
        list += extraServices.map { .init(service: $0) }
        list.append(.init(service: systemd))
        let serviceGroup = ServiceGroup(configuration: .init(services: list, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        // The reload service shuts the Metrc client down once uploads have stopped.
        try await serviceGroup.run()
    }

    /// The HTTPS web console (`[console] listen`) with the device port's certificate, through the same services as
    /// devices and outlawctl; nil when turned off, or without TLS (said in the journal).
    func consoleServer(store: Store, keys: @escaping @Sendable () -> KeyService, keyPolicy: Reloadable<KeyHealthPolicy>,
                       services: DeviceServices) throws -> ConsoleServer? {
        let c = configuration.console
        guard c.enabled else { return nil }
        guard let tls = try DeviceTLS.consoleConfiguration(configuration, environment: ProcessInfo.processInfo.environment) else {
            let line: Logger.Message = "the web console is not served: it needs TLS (server.tls_certificate_file and its key)"
            if c.listenGiven {
                logger.warning(line, metadata: MessageID.consoleNeedsTLS.metadata(["listen": "\(c.host):\(c.port)"]))
            } else {
                logger.info(line)
            }
            return nil
        }
        let app = ConsoleApp(
            store: store, keys: keys, keyPolicy: { keyPolicy.value },
            metrcKeyStatus: { user in await keys().loginStatus(user, policy: keyPolicy.value) },
            status: ConsoleStatusSettings(alertAfterHours: configuration.metrc.alertAfterHours, referenceSync: configuration.metrc.referenceSync,
                                          referenceSyncInterval: configuration.metrc.syncIntervalSeconds,
                                          licenses: configuration.facility.licenses, connectedDevices: { services.connectedDeviceCount }),
            logger: logger)
        return ConsoleServer(app: app, host: c.host, port: c.port, tls: tls, logger: logger, onListening: { [logger] port in
            logger.info("serving the web console", metadata: ["url": "https://\(c.host.contains(":") ? "[\(c.host)]" : c.host):\(port)/",
                                                              "console_port": "\(port)"])
        })
    }

    /// The socket systemd passed as `devices`, if any; otherwise `server.listen`. TLS 1.2 at least, its key from the
    /// systemd credential `outlawd-tls-key` when there is one; plain TCP beyond this machine only when allowed.
    func deviceServerConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DeviceServerConfiguration {
        let s = configuration.server
        var listener: DeviceServerConfiguration.Listener = .address(host: s.host, port: s.port)
        var loopbackOnly = DaemonConfiguration.isLoopback(s.host)
        if let fd = try ListenFDs.socket(named: "devices", unsetEnvironment: true) {
            listener = .descriptor(fd)
            loopbackOnly = ListenFDs.isLoopback(fd)
            logger.info("using the socket systemd passed (devices)")
        }
        // Loaded as `outlawd --check-config` loads it (ConfigCheck.swift).
        let tls = try DeviceTLS.context(configuration, environment: environment)
        if let certificate = s.tlsCertificateFile {
            logger.info("devices connect over TLS (1.2 or newer)", metadata: ["certificate": "\(certificate)"])
        } else if !loopbackOnly {
            guard s.allowPlaintext else { throw DeviceTLS.plaintextRefusal(configuration) }
            logger.warning("devices connect WITHOUT TLS (server.allow_plaintext): device tokens, PINs and tickets cross the network in clear",
                           metadata: MessageID.plaintextDevices.metadata())
        }
        if !s.requireLoginTicket {
            logger.warning("batches are taken without a login ticket (server.require_login_ticket = false): a device can name any user as a batch's collector",
                           metadata: MessageID.loginTicketsNotRequired.metadata())
        }
        var device = DeviceServerConfiguration(
            listener: listener, maxLineBytes: s.maxLineBytes, maxBatchEvents: s.maxBatchEvents, window: s.window,
            idleTimeout: s.idleTimeoutSeconds, helloTimeout: s.helloTimeoutSeconds, maxConnections: s.maxConnections,
            facility: configuration.facility.license, licenses: configuration.facility.licenses,
            serverName: "outlawd/\(Daemon.version)", allowKeysWithoutTLS: s.allowKeysWithoutTLS, tls: tls)
        device.requireLoginTicket = s.requireLoginTicket
        device.loginTicketLifetime = s.loginTicketHours * 3600
        device.maxUnauthenticatedPerAddress = s.maxUnauthenticatedPerAddress
        device.maxUnauthenticated = s.unauthenticatedLimit
        return device
    }

    /// The one version string of every executable (OutlawBuild), kept here for the daemon's callers.
    public static let version = OutlawBuild.version
}
