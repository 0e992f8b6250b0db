import Dispatch
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import OutlawProtocol
import Prometheus
import ServiceLifecycle
import Synchronization

/// Serves `GET /metrics` in Prometheus's text format over HTTP/1.1: a `Service` the daemon runs beside the device server.
public final class MetricsEndpoint: Service, Sendable {
    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    /// Brings the gauges up to date before a scrape; it may block on the store.
    let refresh: @Sendable () -> Void
    let logger: Logger
    let group: any EventLoopGroup
    /// Scrapes run here, one at a time: `refresh` blocks on store reads, which must stall neither an event loop
    /// (devices share them) nor Swift's cooperative pool. A serial queue gets a thread of its own on Linux.
    private let queue = DispatchQueue(label: "outlawd.metrics")
    private let open = Atomic<Int>(0)
    /// Connections being served, and whether the endpoint is stopping: a stop closes them (Prometheus keeps its
    /// one open between scrapes), and one accepted while stopping is closed at once.
    private let connections = Mutex<(stopping: Bool, channels: [ObjectIdentifier: any Channel])>((false, [:]))
    private let listening: AsyncStream<Int>.Continuation
    /// Yields the bound port once the endpoint listens.
    public let listeningPorts: AsyncStream<Int>

    /// Prometheus keeps one connection; a few more leave room for a person with curl, and no more are kept open.
    static let maxConnections = 8
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public init(host: String, port: Int, registry: PrometheusCollectorRegistry = MetricsBackend.registry, logger: Logger,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, refresh: @escaping @Sendable () -> Void = {})
    {
        self.host = host
        self.port = port
        self.registry = registry
        self.logger = logger
        self.group = group
        self.refresh = refresh
        (listeningPorts, listening) = AsyncStream.makeStream(of: Int.self)
    }

    public func run() async throws {
        let server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
        do {
            server = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 16)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // A connection that sends nothing for a minute is closed (Prometheus scrapes far more often).
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(60)))
                        try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            // Metrics help the operator; storing batches is the job. A taken port must not stop the daemon.
            logger.error("cannot serve /metrics: \(error); outlawd runs on without metrics",
                         metadata: MessageID.metricsNotServed.metadata(["metrics_listen": "\(host):\(port)"]))
            listening.finish()
            try? await gracefulShutdown()
            return
        }
        let bound = server.channel.localAddress?.port ?? port
        listening.yield(bound)
        listening.finish()
        logger.info("serving metrics", metadata: ["metrics_port": "\(bound)", "metrics_host": "\(host)", "path": "/metrics"])
        // A stop closes the listener first, so the accept loop ends after serving (or closing) every connection
        // already accepted: a channel the loop never took would trap in debug builds (an unfinished writer).
        try? await withGracefulShutdownHandler {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
            let open = self.connections.withLock { state in
                state.stopping = true
                return Array(state.channels.values)
            }
            for channel in open { channel.close(promise: nil) }
        }
        logger.info("metrics endpoint stopped")
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        defer { open.subtract(1, ordering: .relaxed) }
        let key = ObjectIdentifier(connection.channel)
        let stopping = connections.withLock { state in
            if !state.stopping { state.channels[key] = connection.channel }
            return state.stopping
        }
        defer { _ = connections.withLock { $0.channels.removeValue(forKey: key) } }
        // Closed through executeThenClose, which finishes the channel's writer (dropping it unfinished traps).
        guard open.add(1, ordering: .relaxed).newValue <= Self.maxConnections, !stopping else {
            try? await connection.executeThenClose { _, _ in }
            return
        }
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            for try await part in inbound {
                switch part {
                case .head(let request):
                    head = request
                case .body:
                    continue  // a scrape has no body; any is read and dropped
                case .end:
                    guard let request = head else { continue }
                    head = nil
                    let (status, body) = await answer(request)
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: status == .ok ? Self.contentType : "text/plain; charset=utf-8")
                    headers.add(name: "Content-Length", value: String(body.readableBytes))
                    if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
                    if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
                    try await outbound.write(.head(HTTPResponseHead(version: request.version, status: status, headers: headers)))
                    if request.method != .HEAD { try await outbound.write(.body(.byteBuffer(body))) }
                    try await outbound.write(.end(nil))
                    if !request.isKeepAlive { return }
                }
            }
        }
    }

    func answer(_ request: HTTPRequestHead) async -> (HTTPResponseStatus, ByteBuffer) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else { return (.notFound, ByteBuffer(string: "outlawd serves /metrics only\n")) }
        guard request.method == .GET || request.method == .HEAD else {
            return (.methodNotAllowed, ByteBuffer(string: "GET or HEAD\n"))
        }
        return (.ok, ByteBuffer(bytes: await scrape()))
    }

    /// The gauges refreshed and every family rendered, on the endpoint's own queue.
    public func scrape() async -> [UInt8] {
        await withCheckedContinuation { continuation in
            queue.async {
                self.refresh()
                continuation.resume(returning: self.registry.emitToBuffer())
            }
        }
    }
}

/// Closes a connection when `IdleStateHandler` says it has been quiet too long.
final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
