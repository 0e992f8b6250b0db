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
        // Checked before anything is opened: a configuration that would listen in clear on the network never starts.
        let deviceConfiguration = try deviceServerConfiguration()
        let seal = try StoreKey.load(configuration)
        let store = try Store(path: configuration.store.path, pinRounds: configuration.store.pinHashRounds, seal: seal)
        try store.checkpointInBackground()
        logger.info("store open", metadata: ["path": "\(store.path)"])
        if seal == nil {
            if configuration.store.allowUnsealedKeys {
                logger.warning("no store key (store.key_file or the outlawd-store-key credential): personal Metrc keys are kept UNSEALED in the store (store.allow_unsealed_keys)")
            } else {
                logger.warning("no store key (store.key_file or the outlawd-store-key credential): personal Metrc keys are refused until one is configured")
            }
            if let peppered = try? store.pepperedPINCount(), peppered > 0 {
                logger.error("\(peppered) PINs were set under a store key this daemon does not have: those people cannot log in until it is configured again or their PINs are reset")
            }
        } else if let sealed = try? store.sealPlainKeys(), sealed > 0 {
            logger.notice("sealed personal Metrc keys stored before the store key was configured", metadata: ["keys": "\(sealed)"])
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

        var client: MetrcClient?
        var uploader: Uploader?
        if configuration.metrc.baseURL == nil {
            logger.error("no Metrc address (metrc.base_url): batches are stored but not uploaded until one is configured")
        }
        if let vendorKey = credentials.vendorKey, let baseURL = configuration.metrc.baseURL {
            let m = configuration.metrc
            let metrc = MetrcClient(configuration: MetrcClientConfiguration(
                baseURL: baseURL, vendorKey: vendorKey, requestTimeout: m.requestTimeoutSeconds,
                readLimits: ReadLimits(perSecondPerFacility: m.getsPerSecondPerFacility, concurrentPerFacility: m.concurrentGetsPerFacility,
                                       perSecondPerVendorKey: m.getsPerSecondPerVendorKey,
                                       concurrentPerVendorKey: m.concurrentGetsPerVendorKey)))
            client = metrc
            if credentials.defaultKey == nil {
                logger.warning("no Default Metrc key: users without a personal key wait (held)",
                               metadata: ["looked_in": "\(credentials.defaultKeySource)"])
            }
            uploader = Uploader(
                store: store, client: metrc, defaultKey: credentials.defaultKey,
                configuration: UploaderConfiguration(
                    objectsPerRequest: configuration.metrc.objectsPerRequest, concurrency: configuration.metrc.concurrency,
                    requirePersonalKeys: configuration.facility.requirePersonalKeys, alertAfterHours: configuration.metrc.alertAfterHours),
                logger: logger)
        } else if credentials.vendorKey == nil {
            logger.error("no Metrc vendor key: batches are stored but not uploaded until one is configured",
                         metadata: ["looked_in": "\(credentials.vendorKeySource)"])
        }
        let wake: @Sendable () -> Void = { [uploader] in uploader?.wake() }
        let keys = KeyService(store: store, client: client, requirePersonalKeys: configuration.facility.requirePersonalKeys,
                              allowUnsealedKeys: configuration.store.allowUnsealedKeys, onChange: wake)
        // Every key checked with Metrc on the [keys] schedule; warnings ahead of expected expiries.
        let keyPolicy = KeyHealthPolicy(configuration.keys)
        var keyHealth: KeyHealthMonitor?
        if let client, let uploader {
            keyHealth = KeyHealthMonitor(store: store, client: client, uploader: uploader, defaultKey: credentials.defaultKey,
                                         policy: keyPolicy, logger: logger)
        }
        var referenceSync: ReferenceSync?
        if let client, configuration.metrc.referenceSync {
            referenceSync = ReferenceSync(
                store: store, client: client, defaultKey: credentials.defaultKey,
                configuration: ReferenceSyncConfiguration(
                    licenses: configuration.facility.licenses, interval: configuration.metrc.syncIntervalSeconds,
                    fullEvery: configuration.metrc.fullSyncHours * 3600, pagesAtOnce: configuration.metrc.concurrentGetsPerFacility),
                logger: logger)
        }
        let pull = ReferencePull(store: store, defaultLicense: configuration.facility.license, licenses: configuration.facility.licenses)
        let services = DeviceServices(
            store: store, writer: writer,
            metrcKeyStatus: { user in await keys.loginStatus(user, policy: keyPolicy) },
            setKeyHandler: { message, _ in await keys.handle(message) },
            pullHandler: { request, sink in await pull.answer(request, send: sink.send) },
            onBatchStored: wake)
        let group = MultiThreadedEventLoopGroup.singleton
        let server = DeviceServer(configuration: deviceConfiguration, services: services, logger: logger, group: group)
        let systemd = SystemdService(server: server, services: services, store: store, uploader: uploader, witness: witness,
                                     eventLoop: group.next(), logger: logger, maxUploaderStall: configuration.metrc.requestTimeoutSeconds * 2 + 60,
                                     onReady: onReady)
        var list: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // Graceful shutdown runs in reverse: systemd hears STOPPING first, then devices get their answers, then uploads stop.
        if let uploader { list.append(.init(service: uploader)) }
        if let keyHealth { list.append(.init(service: keyHealth)) }
        if let referenceSync { list.append(.init(service: referenceSync)) }
        list.append(.init(service: server))
        list += extraServices.map { .init(service: $0) }
        list.append(.init(service: systemd))
        let serviceGroup = ServiceGroup(configuration: .init(services: list, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            try? await client?.shutdown()
            throw error
        }
        try? await client?.shutdown()
    }

    /// The socket systemd passed as `devices`, if any; otherwise `server.listen`. TLS 1.2 at least, its key from the
    /// systemd credential `outlawd-tls-key` when there is one; plain TCP beyond this machine only when allowed.
    func deviceServerConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DeviceServerConfiguration {
        let s = configuration.server
        let file = configuration.file ?? "configuration"
        var listener: DeviceServerConfiguration.Listener = .address(host: s.host, port: s.port)
        var loopbackOnly = DaemonConfiguration.isLoopback(s.host)
        if let fd = try ListenFDs.socket(named: "devices", unsetEnvironment: true) {
            listener = .descriptor(fd)
            loopbackOnly = ListenFDs.isLoopback(fd)
            logger.info("using the socket systemd passed (devices)")
        }
        var tls: NIOSSLContext?
        if let certificate = s.tlsCertificateFile {
            let credential = environment["CREDENTIALS_DIRECTORY"].map { $0 + "/outlawd-tls-key" }
            let keyFile = credential.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil } ?? s.tlsKeyFile
            guard let keyFile else {
                throw ConfigError(file: file, key: "server.tls_key_file",
                                  problem: "TLS needs its private key: the outlawd-tls-key credential or server.tls_key_file")
            }
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
                var tlsConfiguration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
                tlsConfiguration.minimumTLSVersion = .tlsv12
                tls = try NIOSSLContext(configuration: tlsConfiguration)
                logger.info("devices connect over TLS (1.2 or newer)", metadata: ["certificate": "\(certificate)"])
            } catch {
                throw ConfigError(file: file, key: "server.tls_certificate_file",
                                  problem: "cannot load the TLS certificate or key: \(error)")
            }
        } else if !loopbackOnly {
            guard s.allowPlaintext else {
                throw ConfigError(file: file, key: "server.tls_certificate_file",
                                  problem: "devices would connect without TLS on a network address (device tokens and PINs in clear): configure TLS, or set server.allow_plaintext = true")
            }
            logger.warning("devices connect WITHOUT TLS (server.allow_plaintext): device tokens, PINs and tickets cross the network in clear")
        }
        if !s.requireLoginTicket {
            logger.warning("batches are taken without a login ticket (server.require_login_ticket = false): a device can name any user as a batch's collector")
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

    public static let version = "0.1.0"
}
