import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import OutlawProtocol
import ServiceLifecycle
import Synchronization

/// The TCP server handhelds connect to; a `Service` whose graceful shutdown stops accepting and lets sessions finish.
public final class DeviceServer: Service, Sendable {
    let configuration: DeviceServerConfiguration
    let services: DeviceServices
    let logger: Logger
    let group: any EventLoopGroup
    /// Open sessions, and whether the server is stopping (one lock, so no session misses the stop).
    private let connections = Mutex<(stopping: Bool, channels: [ObjectIdentifier: any Channel])>((false, [:]))
    private let validator: BatchValidator
    private let preAuth: PreAuthLimits
    private let preAuthLogged = Mutex<ContinuousClock.Instant?>(nil)
    private let boundPort = Mutex<Int?>(nil)
    private let listening: AsyncStream<Int>.Continuation
    /// Yields the bound port once the server is listening.
    public let listeningPorts: AsyncStream<Int>

    public init(configuration: DeviceServerConfiguration, services: DeviceServices, logger: Logger,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
    {
        self.configuration = configuration
        self.services = services
        self.logger = logger
        self.group = group
        validator = BatchValidator(maxBatchEvents: configuration.maxBatchEvents, defaultLicense: configuration.facility,
                                   licenses: Set(configuration.licenses))
        (listeningPorts, listening) = AsyncStream.makeStream(of: Int.self)
        preAuth = PreAuthLimits(perAddress: configuration.maxUnauthenticatedPerAddress, total: configuration.maxUnauthenticated)
    }

    /// How long a session may take to send what it owes once the daemon is stopping.
    public static let shutdownGrace: TimeAmount = .seconds(10)

    /// The port the server listens on, once it does.
    public var port: Int? { boundPort.withLock { $0 } }

    public func run() async throws {
        let configuration = self.configuration
        let logger = self.logger
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorHandler(logger: logger))
                }
            }
        if case .address = configuration.listener {
            // A socket from systemd comes configured by the .socket unit (Backlog=, NoDelay=).
            bootstrap = bootstrap
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        }
        bootstrap = bootstrap
            // A device that half-closes still gets every answer owed, and a closing session can read until the
            // device's FIN (graceful close: DeviceConnection.closeGracefully).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // Writes suspend once this much waits unsent, so a device that reads slowly (a streamed pull of
            // 100,000 plants) holds the writer back instead of the answer piling up in memory.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<InboundFrame, ByteBuffer>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                if let tls = configuration.tls {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                }
                try channel.pipeline.syncOperations.addHandler(
                    IdleStateHandler(readTimeout: .nanoseconds(Int64(configuration.idleTimeout * 1e9))))
                try channel.pipeline.syncOperations.addHandler(
                    FrameHandler(maxLineBytes: configuration.maxLineBytes,
                                 helloTimeout: .nanoseconds(Int64(configuration.helloTimeout * 1e9))))
                // A few lines read ahead, not NIO's default ten: a line may be a megabyte, and the rest of a
                // device's window waits in its socket (TCP back-pressure) rather than in our memory.
                return try NIOAsyncChannel<InboundFrame, ByteBuffer>(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(backPressureStrategy: .init(lowWatermark: 1, highWatermark: 3)))
            }
        }
        let server: NIOAsyncChannel<NIOAsyncChannel<InboundFrame, ByteBuffer>, Never>
        switch configuration.listener {
        case .address(let host, let port):
            server = try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
        case .descriptor(let fd):
            server = try await bootstrap.bind(fd, childChannelInitializer: initializer)
        }
        let port = server.channel.localAddress?.port ?? 0
        boundPort.withLock { $0 = port }
        listening.yield(port)
        logger.info("listening for devices", metadata: ["port": "\(port)"])

        try await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("stopping: no new device connections; open sessions finish what they owe")
            server.channel.close(promise: nil)
            let open = self.connections.withLock { state in
                state.stopping = true
                return Array(state.channels.values)
            }
            for channel in open { Self.stop(channel) }
        }
        logger.info("device server stopped")
    }

    /// Asks a session to finish what it owes and say bye. A device that reads none of what it is owed would hold the
    /// stop until systemd's kill: its session gets `shutdownGrace`, then its connection is closed (it resends what
    /// has no ack).
    static func stop(_ channel: any Channel) {
        channel.pipeline.fireUserInboundEventTriggered(ShutdownRequest())
        channel.eventLoop.scheduleTask(in: DeviceServer.shutdownGrace) { channel.close(promise: nil) }
    }

    private func serve(_ connection: NIOAsyncChannel<InboundFrame, ByteBuffer>) async {
        let channel = connection.channel
        let key = ObjectIdentifier(channel)
        let (admitted, stopping) = connections.withLock { state -> (Bool, Bool) in
            guard state.channels.count < configuration.maxConnections else { return (false, state.stopping) }
            state.channels[key] = channel
            return (true, state.stopping)
        }
        // Accepted just before the listener closed, but registered after the stop went round: it is stopped here,
        // or its session would wait for the idle timeout (a stop that took minutes after a flat-out bench run).
        if admitted, stopping { Self.stop(channel) }
        let address = channel.remoteAddress?.ipAddress ?? "?"
        let remote = "\(address):\(channel.remoteAddress?.port ?? 0)"
        guard admitted else {
            logger.warning("refused a connection: too many open",
                           metadata: MessageID.tooManyConnections.metadata(["remote": "\(remote)", "max_connections": "\(configuration.maxConnections)"]))
            await refuse(connection)
            return
        }
        defer { _ = connections.withLock { $0.channels.removeValue(forKey: key) } }
        guard let slot = preAuth.admit(address) else {
            // One line a minute at most: a flood must not flood the journal too.
            if preAuthLogged.withLock({ last in
                let now = ContinuousClock.now
                guard last.map({ $0.duration(to: now) >= .seconds(60) }) ?? true else { return false }
                last = now
                return true
            }) {
                logger.warning("refusing connections: too many have not said hello (per address or in all)",
                               metadata: MessageID.tooManyBeforeHello.metadata(["remote": "\(remote)", "pre_hello_from_address": "\(preAuth.count(address))",
                                          "max_unauthenticated_per_address": "\(configuration.maxUnauthenticatedPerAddress)"]))
            }
            await refuse(connection)
            return
        }
        defer { slot.release() }
        await DeviceConnection(channel: connection, configuration: configuration, services: services, logger: logger,
                               remote: remote, validator: validator, preAuth: slot).run()
    }

    private func refuse(_ connection: NIOAsyncChannel<InboundFrame, ByteBuffer>) async {
        try? await connection.executeThenClose { _, outbound in
            try await outbound.write(ByteBuffer(string: Reply.error(.busy, "too many connections; retry later").line))
        }
    }
}

/// Keeps the listener alive through errors of single connections (e.g. EMFILE on accept, a socket option
/// refused): they are logged and the server goes on accepting, instead of ending the accept loop.
final class AcceptErrorHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.error("a device connection could not be accepted: \(error)", metadata: MessageID.acceptFailed.metadata())
    }
}
