import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The Metrc sandbox on a real TCP port: Metrc v2 endpoints plus the control API under `/_sandbox/`.
///
///     let server = MetrcSandboxServer(state: .demo())
///     let port = try await server.start()            // 127.0.0.1, a free port
///     ... HTTP against server.baseURL ...
///     try await server.shutdown()
public final class MetrcSandboxServer: Sendable {
    let engine: SandboxEngine
    public let configuration: SandboxConfiguration
    let logger: Logger
    private let runtime = Locked(Runtime())
    /// Writes (anything but GET) being handled now, and the most there ever were at once: a client's concurrency
    /// as Metrc would see it.
    private let writesAtOnce = Locked((now: 0, most: 0))

    struct Runtime: Sendable {
        var host = "127.0.0.1"
        var port = 0
        var serverChannel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>?
        var acceptTasks: [Task<Void, Never>] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
        var refusing = false
        /// The port, held while a refuse-mode outage has no listener on it.
        var reservation: PortReservation?
        var reopenTask: Task<Void, Never>?
        var stopped = false
    }

    public init(state: SandboxState, configuration: SandboxConfiguration = .init(),
                logger: Logger = Logger(label: "metrc-sandbox")) {
        self.configuration = configuration
        self.logger = logger
        self.engine = SandboxEngine(state: state, configuration: configuration, logger: logger)
    }

    /// The bound port (0 before `start`).
    public var port: Int { runtime.current.port }

    /// `http://HOST:PORT`, no trailing slash.
    public var baseURL: String {
        let current = runtime.current
        return "http://\(current.host):\(current.port)"
    }

    /// Binds and starts serving; returns the bound port (`port: 0` picks a free one).
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let bound = try await bind(host: host, port: port)
        runtime.withLock {
            $0.host = host
            $0.port = bound
            $0.stopped = false
        }
        logger.info("Metrc sandbox listening on http://\(host):\(bound)")
        return bound
    }

    /// Stops listening, closes every connection (hung ones too) and waits for them to finish.
    public func shutdown() async throws {
        let (channel, tasks, connections, reopen, reservation) = runtime.withLock { state in
            state.stopped = true
            let result = (state.serverChannel, state.acceptTasks, Array(state.connections.values), state.reopenTask, state.reservation)
            state.serverChannel = nil
            state.acceptTasks = []
            state.reopenTask = nil
            state.reservation = nil
            return result
        }
        reopen?.cancel()
        reservation?.release()
        try? await channel?.channel.close()
        for connection in connections { try? await connection.close() }
        for task in tasks { await task.value }
    }

    private func bind(host: String, port: Int) async throws -> Int {
        let serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            // So that a refuse-mode outage can hold the port while it closes the listener (PortReservation).
            .serverChannelOption(ChannelOptions.socketOption(PortReservation.reusePort), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let bound = serverChannel.channel.localAddress?.port ?? port
        let task = Task { await self.acceptLoop(serverChannel) }
        runtime.withLock {
            $0.serverChannel = serverChannel
            $0.acceptTasks.append(task)
        }
        return bound
    }

    private func acceptLoop(
        _ serverChannel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    ) async {
        do {
            try await serverChannel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } catch {
            logger.debug("accept loop ended: \(error)")
        }
    }

    // MARK: Connections

    enum Disposition: Sendable {
        case respond(SandboxResponse)
        case hang
        case drop
        case reset
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        let channel = connection.channel
        let id = ObjectIdentifier(channel)
        let accepted = runtime.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.connections[id] = channel
            return true
        }
        guard accepted else {
            try? await channel.close()
            return
        }
        defer { _ = runtime.withLock { $0.connections.removeValue(forKey: id) } }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                while let part = try await parts.next() {
                    guard case .head(let head) = part else { continue }
                    var body: [UInt8] = []
                    var tooLarge = false
                    reading: while let next = try await parts.next() {
                        switch next {
                        case .body(let buffer):
                            if body.count + buffer.readableBytes > configuration.maxBodyBytes {
                                tooLarge = true
                            } else {
                                body.append(contentsOf: buffer.readableBytesView)
                            }
                        case .end: break reading
                        case .head: break reading
                        }
                    }
                    let request = SandboxRequest(method: head.method.rawValue, uri: head.uri,
                                                 authorization: head.headers.first(name: "Authorization"), body: body)
                    let disposition: Disposition = tooLarge
                        ? .respond(.message("The request body is larger than \(configuration.maxBodyBytes) bytes.", status: 413))
                        : await handle(request)
                    switch disposition {
                    case .respond(let response):
                        let keepAlive = head.isKeepAlive && !tooLarge
                        try await write(response, version: head.version, keepAlive: keepAlive, to: outbound)
                        if !keepAlive { return }
                    case .hang:
                        while try await parts.next() != nil {}
                        return
                    case .drop:
                        return
                    case .reset:
                        if let provider = channel as? any SocketOptionProvider {
                            try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
                        }
                        return
                    }
                }
            }
        } catch {
            logger.debug("connection ended: \(error)")
        }
    }

    private func write(_ response: SandboxResponse, version: HTTPVersion, keepAlive: Bool,
                       to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        var headers = HTTPHeaders()
        for (name, value) in response.headers.sorted(by: { $0.key < $1.key }) where name.lowercased() != "content-length" {
            headers.add(name: name, value: value)
        }
        headers.add(name: "Content-Length", value: String(response.body.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status),
                                    headers: headers)
        try await outbound.write(.head(head))
        if !response.body.isEmpty {
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
        }
        try await outbound.write(.end(nil))
    }

    /// Faults, then admission (keys, license, permission, rate limits), latency, execution.
    func handle(_ request: SandboxRequest) async -> Disposition {
        if request.isControl { return .respond(await control(request)) }
        let isWrite = request.method.uppercased() != "GET"
        if isWrite {
            writesAtOnce.withLock { count in
                count.now += 1
                count.most = max(count.most, count.now)
            }
        }
        defer { if isWrite { writesAtOnce.withLock { $0.now -= 1 } } }
        let plan = await engine.planFaults(for: request)
        var applyThenFailStatus: Int?? = nil
        switch plan.terminal {
        case .respond(let status, let message)?:
            await sleep(milliseconds: plan.latencyMilliseconds)
            logger.info("fault: \(status) for \(request.method) \(request.path)")
            return .respond(.message(message, status: status))
        case .hang?:
            logger.info("fault: hanging \(request.method) \(request.path)")
            return .hang
        case .reset?:
            logger.info("fault: resetting connection of \(request.method) \(request.path)")
            return .reset
        case .applyThenFail(let status)?:
            applyThenFailStatus = .some(status)
        case nil:
            break
        }
        switch await engine.admit(request) {
        case .respond(let response):
            await sleep(milliseconds: plan.latencyMilliseconds)
            return .respond(response)
        case .proceed(let admitted):
            await sleep(milliseconds: plan.latencyMilliseconds)
            let (response, applied) = await engine.execute(admitted, request)
            if let ticket = admitted.ticket { await engine.release(ticket) }
            if applied, let failure = applyThenFailStatus {
                logger.info("fault: applied \(request.method) \(request.path), then failing")
                guard let status = failure else { return .drop }
                return .respond(.message(FaultInjector.defaultMessage(status), status: status))
            }
            return .respond(response)
        }
    }

    /// Answers `request` as the listener would (faults, keys, limits, the read or write itself, the write log), minus
    /// the socket: for benchmarks of the sandbox itself. Works without `start`. `nil` when a fault would hang, drop
    /// or reset the connection instead of answering.
    public func response(to request: SandboxRequest) async -> SandboxResponse? {
        switch await handle(request) {
        case .respond(let response): response
        case .hang, .drop, .reset: nil
        }
    }

    /// The most writes this server handled at once since it started or `resetMostWritesAtOnce`.
    public func mostWritesAtOnce() -> Int { writesAtOnce.withLock { $0.most } }

    public func resetMostWritesAtOnce() { writesAtOnce.withLock { $0.most = $0.now } }

    private func sleep(milliseconds: Int) async {
        guard milliseconds > 0 else { return }
        try? await Task.sleep(for: .milliseconds(milliseconds))
    }

    // MARK: Refusing outage

    /// Closes the listening socket (connections are refused) until `reopenListener` or the duration ends.
    func beginRefusing(durationMilliseconds: Int?) async {
        let channel = runtime.withLock { state -> NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>? in
            guard !state.refusing, !state.stopped else { return nil }
            state.refusing = true
            let channel = state.serverChannel
            state.serverChannel = nil
            return channel
        }
        guard let channel else { return }
        logger.info("fault: outage, refusing connections")
        // Held before the listener closes: a freed port can be another test's bind(0) or a client's source port by the
        // time the outage ends, and the sandbox could not listen again (seen once in the parallel suite).
        if let address = channel.channel.localAddress {
            do {
                let reservation = try PortReservation(address)
                let late = runtime.withLock { state -> Bool in
                    guard !state.stopped else { return true }
                    state.reservation = reservation
                    return false
                }
                if late { reservation.release() }
            } catch {
                logger.warning("fault: outage: the port is not held while it is closed: \(error)")
            }
        }
        try? await channel.channel.close()
        if let durationMilliseconds {
            let task = Task {
                try? await Task.sleep(for: .milliseconds(durationMilliseconds))
                if !Task.isCancelled { await self.endRefusing() }
            }
            runtime.withLock { $0.reopenTask = task }
        }
    }

    /// Listens again on the same port after a refusing outage.
    func endRefusing() async {
        let (wasRefusing, host, port) = runtime.withLock { state -> (Bool, String, Int) in
            let was = state.refusing && !state.stopped
            state.refusing = false
            return (was, state.host, state.port)
        }
        await engine.removeRefusingOutages()
        guard wasRefusing else { return }
        for attempt in 0..<50 {
            do {
                _ = try await bind(host: host, port: port)
                releaseReservation()
                logger.info("outage over, listening again on \(port)")
                return
            } catch {
                logger.debug("rebind attempt \(attempt) failed: \(error)")
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        releaseReservation()
        logger.error("could not listen again on port \(port)")
    }

    /// Lets go of the port a refuse-mode outage held, once a listener has it again (or never will).
    private func releaseReservation() {
        runtime.withLock { state -> PortReservation? in
            defer { state.reservation = nil }
            return state.reservation
        }?.release()
    }
}
