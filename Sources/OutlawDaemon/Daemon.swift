import DeviceServer
import Foundation
import Logging
import NIOCore
import NIOPosix
import OutlawConfig
import OutlawProtocol
import OutlawStore
import ServiceLifecycle

/// Turns a configuration into running services and runs them until SIGTERM or SIGINT.
public struct Daemon {
    public let configuration: DaemonConfiguration
    public let logger: Logger
    /// A listening socket handed over by systemd (`devices`), used instead of `server.listen`.
    public let listenDescriptor: Int32?

    public init(configuration: DaemonConfiguration, logger: Logger, listenDescriptor: Int32? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.listenDescriptor = listenDescriptor
    }

    public func run(extraServices: [any Service] = []) async throws {
        let store = try Store(path: configuration.store.path)
        logger.info("store open", metadata: ["path": "\(store.path)"])
        let writer = BatchWriter(store: store, minFreeBytes: Int64(configuration.store.minFreeMegabytes) << 20)
        let services = DeviceServices(store: store, writer: writer)
        let server = DeviceServer(configuration: deviceServerConfiguration(), services: services, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server)] + extraServices.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }

    func deviceServerConfiguration() -> DeviceServerConfiguration {
        let s = configuration.server
        let listener: DeviceServerConfiguration.Listener = listenDescriptor.map { .descriptor($0) }
            ?? .address(host: s.host, port: s.port)
        return DeviceServerConfiguration(
            listener: listener, maxLineBytes: s.maxLineBytes, maxBatchEvents: s.maxBatchEvents, window: s.window,
            idleTimeout: s.idleTimeoutSeconds, helloTimeout: s.helloTimeoutSeconds, maxConnections: s.maxConnections,
            facility: configuration.facility.license, licenses: configuration.facility.licenses,
            serverName: "outlawd/\(Daemon.version)", allowKeysWithoutTLS: s.allowKeysWithoutTLS)
    }

    public static let version = "0.1.0"
}
