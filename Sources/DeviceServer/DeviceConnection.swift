import Foundation
import Logging
import NIOCore
import OutlawProtocol
import OutlawStore
import Synchronization

/// One device's session: reads lines in order, answers in the same order, pipelines batches up to `window`.
struct DeviceConnection {
    let channel: NIOAsyncChannel<InboundFrame, ByteBuffer>
    let configuration: DeviceServerConfiguration
    let services: DeviceServices
    let logger: Logger
    let remote: String
    /// Built once by the server: the same rules for every batch of every connection.
    let validator: BatchValidator
    /// This connection's place among those that have not said hello; given back at hello or close.
    let preAuth: PreAuthSlot

    /// How long a closing connection keeps reading (and dropping) what the device still sends after our last
    /// answer and FIN. Closing with unread input makes the kernel send a reset, which makes the device's kernel
    /// throw away answers it has received but the device has not read yet (acks lost: batches sent again).
    /// A device that reads our last lines closes within a round trip or two; 2 s covers a slow Wi-Fi without
    /// holding a stopping daemon back for long.
    static let drainTimeout: TimeAmount = .seconds(2)

    /// An answer owed to the device, in request order: ready now, or when its work finishes, or written by a
    /// handler that streams its lines (run by the writer once every earlier answer is written).
    enum Answer: Sendable {
        case now(Reply)
        case later(Task<Reply, Never>)
        case streamed(@Sendable (PullSink) async -> Reply)
    }

    /// What a non-batch request needs: an answer now, or work to run once everything before it is done.
    enum Request: Sendable {
        case now(Reply)
        case work(@Sendable () async -> Reply)
    }

    /// The session's mutable facts, touched only by the reader.
    struct Session {
        var device: Device?
        let id: String
        var batchesInFlight: [Task<Reply, Never>] = []
        /// The last non-batch request's work: later requests of its kind run after it.
        var barrier: Task<Reply, Never>?
    }

    typealias Frames = NIOAsyncChannelInboundStream<InboundFrame>.AsyncIterator

    func run() async {
        do {
            try await channel.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                let (answers, sink) = AsyncStream.makeStream(of: Answer.self)
                let budget = AnswerBudget(window: configuration.window)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let eventLoop = channel.channel.eventLoop
                    group.addTask {
                        defer { budget.close() }
                        try await Self.write(answers, to: outbound, eventLoop: eventLoop, budget: budget)
                    }
                    let device = await read(&frames, answer: sink, budget: budget)
                    preAuth.release()
                    sink.finish()
                    if let device { services.connected(device: device.name, delta: -1) }
                    try await group.waitForAll()
                }
                // Every answer is written (a failed write skips this: the connection is gone).
                await Self.closeGracefully(channel.channel, frames: &frames, configuration: configuration)
            }
        } catch {
            logger.debug("connection ended with an error", metadata: ["remote": "\(remote)", "error": "\(error)"])
        }
    }

    /// Writes the answers in request order; a streamed one runs here, so its lines come right after the answer
    /// before it and right before the one after it. Returns once the last answer is handed to the connection.
    private static func write(_ answers: AsyncStream<Answer>, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
                              eventLoop: any EventLoop, budget: AnswerBudget) async throws {
        for await answer in answers {
            let reply: Reply
            switch answer {
            case .now(let r): reply = r
            case .later(let task): reply = await task.value
            case .streamed(let handler):
                let lines = StreamedLines(outbound, eventLoop: eventLoop)
                reply = await handler(PullSink(send: lines.send))
                try lines.finish()
            }
            // Suspends while the connection is not writable (the channel's write-buffer water marks), so a
            // device that reads slowly holds the session back instead of piling answers up in memory.
            try await outbound.write(ByteBuffer(string: reply.line))
            budget.release()
        }
    }

    /// Ends a connection whose every answer is written without losing any of them: FIN after the last line,
    /// then input is read and dropped until the device closes, `drainTimeout` passes, or more than a window of
    /// full lines arrives; then the caller closes. See `drainTimeout` for why.
    static func closeGracefully(_ channel: any Channel, frames: inout Frames, configuration: DeviceServerConfiguration) async {
        // A device that honours the window has at most `window` requests we have not read, each one line.
        let maxBytes = (configuration.window + 1) * (configuration.maxLineBytes + 2)
        channel.pipeline.fireUserInboundEventTriggered(DrainRequest(maxBytes: maxBytes, timeout: drainTimeout))
        // The empty write completes once every line before it has reached the socket: only then FIN (under TLS,
        // close_notify first). NIO drops pending writes when asked to close output after the device has
        // half-closed, so waiting for them first matters.
        let outputClosed = channel.writeAndFlush(ByteBuffer()).flatMap { channel.close(mode: .output) }
        do {
            while try await frames.next() != nil {}
        } catch {
            // A read error ends the drain like the device's close does.
        }
        // Drained: the device closed, or the drain limit closed the channel (which fails this at once).
        _ = try? await outputClosed.get()
    }

    /// Reads until the session must close; every answer goes to `answer`, so the writer sends them in order.
    /// Returns the device the session authenticated, if any.
    private func read(_ frames: inout Frames, answer: AsyncStream<Answer>.Continuation, budget: AnswerBudget) async -> Device? {
        var session = Session(device: nil, id: Self.newSessionID())
        do {
            while let frame = try await frames.next() {
                // Every frame gets one answer at most. A line waits for its place while `window` answers are owed;
                // a frame that ends the session takes one regardless (it is the last).
                // The hello timer fires in every session; once the device has said hello it is answered by nothing,
                // so it must not take a place (a place never given back).
                if case .helloDeadline = frame, session.device != nil { continue }
                if case .line = frame {
                    do {
                        try await budget.reserve(timeout: .nanoseconds(Int64(configuration.idleTimeout * 1e9)))
                    } catch .stalled {
                        // The device sends and never reads: the writer waits on its socket forever, so close it.
                        logger.notice("closed a device connection that read none of its answers for \(Int(configuration.idleTimeout)) seconds",
                                      metadata: MessageID.connectionStalled.metadata(deviceMetadata(session)))
                        channel.channel.close(promise: nil)
                        break
                    } catch {
                        break
                    }
                } else {
                    budget.force()
                }
                let keepOpen = await handle(frame, session: &session, answer: answer)
                if !keepOpen { break }
            }
        } catch {
            logger.debug("read failed", metadata: ["remote": "\(remote)", "error": "\(error)"])
        }
        return session.device
    }

    /// Handles one frame; returns false when the connection is to be closed after what is owed is sent.
    private func handle(_ frame: InboundFrame, session: inout Session, answer: AsyncStream<Answer>.Continuation) async -> Bool {
        switch frame {
        case .tooLong:
            answer.yield(.now(.error(.lineTooLong, "a line is longer than \(configuration.maxLineBytes) bytes")))
            return false
        case .helloDeadline:
            guard session.device == nil else { return true }
            answer.yield(.now(.error(.helloTimeout, "no hello within \(Int(configuration.helloTimeout)) seconds")))
            return false
        case .idle:
            answer.yield(.now(.error(.idleTimeout, "no line for \(Int(configuration.idleTimeout)) seconds")))
            logger.info("closed an idle device connection", metadata: deviceMetadata(session))
            return false
        case .shutdown:
            answer.yield(.now(.bye))
            return false
        case .line(let bytes):
            let parsed = ClientMessage.parse(line: bytes)
            guard let device = session.device else { return await handshake(parsed, session: &session, answer: answer) }
            switch parsed {
            case .failure(.badJSON):
                answer.yield(.now(.error(.badJSON, "the line is not a UTF-8 JSON object; it was dropped")))
            case .failure(.unknownOp(let op)):
                let text = op.map { "unknown op \"\($0)\"" } ?? "every message needs a string op"
                answer.yield(.now(.error(.unknownOp, text)))
            case .success(let message):
                return await handle(message, device: device, session: &session, answer: answer)
            }
            return true
        }
    }

    private func handshake(_ parsed: Result<ClientMessage, ClientMessage.ParseError>, session: inout Session,
                           answer: AsyncStream<Answer>.Continuation) async -> Bool
    {
        guard case .success(.hello(let hello)) = parsed else {
            answer.yield(.now(.error(.helloRequired, "the first message must be hello")))
            return false
        }
        guard hello.proto == 1 else {
            answer.yield(.now(.error(.unsupportedProto, "this server speaks protocol version 1")))
            return false
        }
        // An address that keeps giving bad credentials waits longer each time, on its own.
        let address = remoteAddress
        let wait = services.addressThrottle.withLock { $0.admit(address, now: .now) }
        await DeviceServices.wait(wait, unlessClosed: channel.channel)
        var device: Device?
        if let name = hello.device, let token = hello.token, Names.isValidDeviceName(name) {
            device = try? await services.store.authenticateDevice(name: name, token: token)
        }
        services.addressThrottle.withLock { $0.ended(address, device == nil ? .failure : .success, now: .now) }
        guard let device else {
            // The same answer for unknown, disabled and wrong token: nothing to learn by probing.
            answer.yield(.now(.error(.unauthorized, "device not recognised")))
            logger.notice("refused a device",
                          metadata: MessageID.deviceRefused.metadata(["remote": "\(remote)", "device": "\(Names.shown(hello.device))"]))
            return false
        }
        preAuth.release()
        session.device = device
        services.connected(device: device.name, delta: 1)
        answer.yield(.now(.welcome(
            server: configuration.serverName, facility: configuration.facility, licenses: configuration.licenses,
            session: session.id, maxLineBytes: configuration.maxLineBytes, maxBatchEvents: configuration.maxBatchEvents,
            window: configuration.window)))
        logger.info("device connected", metadata: deviceMetadata(session).merging(["firmware": "\(Names.shown(hello.firmware))"]) { a, _ in a })
        return true
    }

    private func handle(_ message: ClientMessage, device: Device, session: inout Session,
                        answer: AsyncStream<Answer>.Continuation) async -> Bool
    {
        switch message {
        case .hello:
            answer.yield(.now(.error(.alreadyHello, "this connection has already said hello")))
        case .ping:
            answer.yield(.now(.pong(time: Timestamp.format(Date()))))
        case .bye:
            answer.yield(.now(.bye))
            return false
        case .batch(let object):
            await receiveBatch(object, device: device, session: &session, answer: answer)
        case .status(let request):
            answer.yield(ordered(status(request, device: device), session: &session))
        case .login(let request):
            answer.yield(ordered(login(request, device: device), session: &session))
        case .setKey(let request):
            answer.yield(ordered(setKey(request, device: device), session: &session))
        case .pull(let request):
            answer.yield(pull(request))
        }
        return true
    }

    private func receiveBatch(_ object: BatchMessage, device: Device, session: inout Session,
                              answer: AsyncStream<Answer>.Continuation) async
    {
        let received = ContinuousClock.now
        let validated: ValidatedBatch
        switch validator.validate(object, now: Date()) {
        case .failure(let rejection):
            answer.yield(.now(.nack(id: BatchValidator.echoedID(object), rejection)))
            DeviceMetrics.batch(rejection.code.rawValue)
            logger.notice("refused a batch", metadata: MessageID.batchInvalid.metadata(deviceMetadata(session).merging([
                "batch_id": "\(Names.shown(BatchValidator.echoedID(object)))", "nack": "\(rejection.code.rawValue)",
                "reason": "\(Names.shown(rejection.message))",
            ]) { a, _ in a }))
            return
        case .success(let batch):
            validated = batch
        }
        let writer = services.writer
        // While the writer is behind, read no further until this device's batches are answered: what it has yet
        // to send waits in the device (TCP back-pressure), not in our memory.
        if services.isBusy {
            for earlier in session.batchesInFlight { _ = await earlier.value }
            session.batchesInFlight.removeAll()
        }
        // Pipelining window: stop reading until the oldest batch in flight is answered.
        if session.batchesInFlight.count >= configuration.window {
            _ = await session.batchesInFlight.removeFirst().value
        }
        let logger = self.logger
        var metadata = deviceMetadata(session)
        let incoming = IncomingBatch(deviceID: device.id, session: session.id, batch: validated,
                                     requireTicket: configuration.requireLoginTicket)
        services.received(events: validated.events.count)
        let task = Task<Reply, Never> {
            let outcome = await writer.write(incoming)
            services.answered(events: validated.events.count)
            DeviceMetrics.answered(outcome, events: validated.events, since: received)
            metadata["batch_id"] = "\(validated.id)"
            metadata["outlaw_user"] = "\(validated.user)"
            metadata["events"] = "\(validated.events.count)"
            metadata["facility"] = "\(validated.license)"
            switch outcome {
            case .stored(let events):
                logger.info("batch stored", metadata: metadata)
                services.batchStored()
                return .ack(id: validated.id, events: events, duplicate: false)
            case .duplicate(let events):
                logger.info("batch received again; already stored", metadata: metadata)
                return .ack(id: validated.id, events: events, duplicate: true)
            case .rejected(let rejection):
                metadata["nack"] = "\(rejection.code.rawValue)"
                logger.notice("batch refused: \(rejection.message)", metadata: MessageID.batchRefused.metadata(metadata))
                return .nack(id: validated.id, rejection)
            }
        }
        session.batchesInFlight.append(task)
        answer.yield(.later(task))
    }

    /// Runs a non-batch request only after every earlier request of the session has finished, so its
    /// effects follow request order too: a `status` sees the batch sent just before it, a `login` the
    /// key set just before it. Batches among themselves still overlap (group commit).
    private func ordered(_ request: Request, session: inout Session) -> Answer {
        switch request {
        case .now(let reply):
            return .now(reply)
        case .work(let work):
            let prior = session.batchesInFlight + (session.barrier.map { [$0] } ?? [])
            let task = Task<Reply, Never> {
                for earlier in prior { _ = await earlier.value }
                return await work()
            }
            session.barrier = task
            return .later(task)
        }
    }

    private func status(_ request: ClientMessage.Status, device: Device) -> Request {
        guard let idValues = request.ids else {
            return .now(.error(.badRequest, "status needs ids: an array of batch ids"))
        }
        let ids = idValues.compactMap { $0 }
        guard ids.count == idValues.count else { return .now(.error(.badRequest, "every id must be a string")) }
        guard ids.count <= 1000 else { return .now(.error(.badRequest, "at most 1000 ids a request")) }
        let store = services.store
        return .work({
            let found = (try? await store.batchStatuses(deviceID: device.id, ids: ids)) ?? [:]
            // Archived wins: a batch whose rows are leaving the live store already answers as it will once they are gone.
            let archived = (try? await store.archivedBatchIDs(deviceID: device.id, ids: ids)) ?? []
            let items: [JSONValue] = ids.map { id in
                if archived.contains(id) { return ["id": .string(id), "state": "archived"] }
                guard let summary = found[id] else { return ["id": .string(id), "state": "unknown"] }
                return StatusReply.item(summary)
            }
            return Reply(op: "status", [("batches", .array(items))])
        })
    }

    private func login(_ request: ClientMessage.Login, device: Device) -> Request {
        guard let user = request.user, let pin = request.pin else {
            return .now(.error(.badRequest, "login needs user and pin strings"))
        }
        let services = self.services
        let remote = self.remote
        let logger = self.logger
        let lifetime = configuration.loginTicketLifetime
        let connection = channel.channel
        return .work({ await services.login(user: user, pin: pin, device: device, remote: remote, connection: connection,
                                            ticketLifetime: lifetime, logger: logger) })
    }

    /// The remote IP address without its port: what the limits before hello count by.
    var remoteAddress: String {
        guard let colon = remote.lastIndex(of: ":") else { return remote }
        return String(remote[..<colon])
    }

    private func setKey(_ request: ClientMessage.SetKey, device: Device) -> Request {
        // A Metrc key crosses the network only inside TLS, unless the operator explicitly allowed otherwise.
        guard configuration.tls != nil || configuration.allowKeysWithoutTLS else {
            return .now(.error(.tlsRequired, "set_key needs a TLS connection; a Metrc key must not cross the network in clear"))
        }
        guard let handler = services.setKeyHandler else {
            return .now(.error(.unavailable, "this daemon does not manage Metrc keys yet"))
        }
        let logger = self.logger
        let remote = self.remote
        return .work({
            let reply = await handler(request, device)
            // A set_key's PIN check is a login too: its failures are journal lines like a login's.
            if case .string(let text)? = reply["code"], let code = LoginRefusal(rawValue: text), code == .badCredentials || code == .locked {
                logger.notice("set_key refused: \(code == .locked ? "the actor's name is locked" : "wrong PIN or unknown actor")",
                              metadata: (code == .locked ? MessageID.setKeyActorLocked : MessageID.setKeyWrongPIN).metadata(
                                  ["device": "\(device.name)", "remote": "\(remote)", "outlaw_user": "\(Names.shown(request.actor))"]))
            }
            return reply
        })
    }

    /// Streamed by the writer, so it starts only once every earlier answer is written (hence every earlier
    /// request's work is done) and later answers wait for its last line. It is no barrier for the work of later
    /// requests: a pull only reads, so nothing later can depend on its effects.
    private func pull(_ request: ClientMessage.Pull) -> Answer {
        guard let handler = services.pullHandler else {
            return .now(.error(.unavailable, "reference data is not available from this daemon yet"))
        }
        return .streamed({ sink in await handler(request, sink) })
    }

    private func deviceMetadata(_ session: Session) -> Logger.Metadata {
        ["device": "\(session.device?.name ?? "")", "session": "\(session.id)", "remote": "\(remote)"]
    }

    static func newSessionID() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}

/// The connection side of one streamed answer: lines go straight to the writer; the first failed send fails
/// every later one, and sends after the handler has returned fail too (they would land among later answers).
final class StreamedLines: Sendable {
    private enum State {
        case open
        case failed(any Error)
        case finished
    }

    /// A send after the streamed answer's handler returned.
    struct Finished: Error, CustomStringConvertible {
        var description: String { "the streamed answer is complete; no more lines can be sent" }
    }

    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let eventLoop: any EventLoop
    private let state = Mutex<State>(.open)
    /// Bytes handed to the writer since the event loop last caught up with it.
    private let unconfirmed = Mutex(0)
    /// How far the sender may run ahead of the event loop.
    static let catchUpBytes = 64 * 1024

    init(_ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, eventLoop: any EventLoop) {
        self.outbound = outbound
        self.eventLoop = eventLoop
    }

    func send(_ reply: Reply) async throws {
        try state.withLock { state in
            switch state {
            case .open: return
            case .failed(let error): throw error
            case .finished: throw Finished()
            }
        }
        do {
            let line = ByteBuffer(string: reply.line)
            try await outbound.write(line)
            // The writer hands lines to the event loop asynchronously and suspends only once it has heard that the
            // channel is not writable: a sender faster than a busy event loop ran megabytes ahead of it (22 MB on
            // a loaded CI run). Waiting for the loop every 64 KiB (its queue is first in, first out) keeps what is
            // held here within the channel's water marks plus that.
            let catchUp = unconfirmed.withLock { bytes in
                bytes += line.readableBytes
                guard bytes >= Self.catchUpBytes else { return false }
                bytes = 0
                return true
            }
            if catchUp { try await eventLoop.submit {}.get() }
        } catch {
            state.withLock { state in
                if case .open = state { state = .failed(error) }
            }
            throw error
        }
    }

    /// Closes the sink; throws the error that broke the connection, if a send failed.
    func finish() throws {
        let previous = state.withLock { state in
            defer { state = .finished }
            return state
        }
        if case .failed(let error) = previous { throw error }
    }
}
