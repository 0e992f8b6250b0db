import Foundation
import Logging
import NIOCore
import OutlawProtocol
import OutlawStore

/// One device's session: reads lines in order, answers in the same order, pipelines batches up to `window`.
struct DeviceConnection {
    let channel: NIOAsyncChannel<InboundFrame, ByteBuffer>
    let configuration: DeviceServerConfiguration
    let services: DeviceServices
    let logger: Logger
    let remote: String
    /// Built once by the server: the same rules for every batch of every connection.
    let validator: BatchValidator

    /// An answer owed to the device, in request order: ready now, or when its work finishes.
    enum Answer: Sendable {
        case now(Reply)
        case later(Task<Reply, Never>)
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

    func run() async {
        do {
            try await channel.executeThenClose { inbound, outbound in
                let (answers, sink) = AsyncStream.makeStream(of: Answer.self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await answer in answers {
                            let reply: Reply
                            switch answer {
                            case .now(let r): reply = r
                            case .later(let task): reply = await task.value
                            }
                            try await outbound.write(ByteBuffer(string: reply.line))
                        }
                    }
                    let device = await read(inbound, answer: sink)
                    sink.finish()
                    if let device { services.connected(device: device.name, delta: -1) }
                    try await group.waitForAll()
                }
            }
        } catch {
            logger.debug("connection ended with an error", metadata: ["remote": "\(remote)", "error": "\(error)"])
        }
    }

    /// Reads until the session must close; every answer goes to `answer`, so the writer sends them in order.
    /// Returns the device the session authenticated, if any.
    private func read(_ inbound: NIOAsyncChannelInboundStream<InboundFrame>, answer: AsyncStream<Answer>.Continuation) async -> Device? {
        var session = Session(device: nil, id: Self.newSessionID())
        do {
            for try await frame in inbound {
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
        var device: Device?
        if let name = hello.device, let token = hello.token, ClientMessage.isValidDeviceName(name) {
            device = try? await services.store.authenticateDevice(name: name, token: token)
        }
        guard let device else {
            // The same answer for unknown, disabled and wrong token: nothing to learn by probing.
            answer.yield(.now(.error(.unauthorized, "device not recognised")))
            logger.notice("refused a device", metadata: ["remote": "\(remote)", "device": "\(hello.device ?? "")"])
            return false
        }
        session.device = device
        services.connected(device: device.name, delta: 1)
        answer.yield(.now(.welcome(
            server: configuration.serverName, facility: configuration.facility, licenses: configuration.licenses,
            session: session.id, maxLineBytes: configuration.maxLineBytes, maxBatchEvents: configuration.maxBatchEvents,
            window: configuration.window)))
        logger.info("device connected", metadata: deviceMetadata(session).merging(["firmware": "\(hello.firmware ?? "")"]) { a, _ in a })
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
            answer.yield(ordered(login(request), session: &session))
        case .setKey(let request):
            answer.yield(ordered(setKey(request, device: device), session: &session))
        case .pull(let request):
            answer.yield(ordered(pull(request), session: &session))
        }
        return true
    }

    private func receiveBatch(_ object: [String: JSONValue], device: Device, session: inout Session,
                              answer: AsyncStream<Answer>.Continuation) async
    {
        let validated: ValidatedBatch
        switch validator.validate(object, now: Date()) {
        case .failure(let rejection):
            answer.yield(.now(.nack(id: BatchValidator.echoedID(object), rejection)))
            logger.notice("refused a batch", metadata: deviceMetadata(session).merging([
                "batch_id": "\(BatchValidator.echoedID(object) ?? "")", "nack": "\(rejection.code.rawValue)",
                "reason": "\(rejection.message)",
            ]) { a, _ in a })
            return
        case .success(let batch):
            validated = batch
        }
        // Pipelining window: stop reading until the oldest batch in flight is answered.
        if session.batchesInFlight.count >= configuration.window {
            _ = await session.batchesInFlight.removeFirst().value
        }
        let writer = services.writer
        let logger = self.logger
        var metadata = deviceMetadata(session)
        let incoming = IncomingBatch(deviceID: device.id, session: session.id, batch: validated)
        let task = Task<Reply, Never> {
            let outcome = await writer.write(incoming)
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
            case .rejected(let code, let message):
                metadata["nack"] = "\(code.rawValue)"
                logger.notice("batch refused: \(message)", metadata: metadata)
                return .nack(id: validated.id, BatchRejection(code, message))
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
            let items: [JSONValue] = ids.map { id in
                guard let summary = found[id] else { return ["id": .string(id), "state": "unknown"] }
                return StatusReply.item(summary)
            }
            return Reply(op: "status", [("batches", .array(items))])
        })
    }

    private func login(_ request: ClientMessage.Login) -> Request {
        guard let user = request.user, let pin = request.pin else {
            return .now(.error(.badRequest, "login needs user and pin strings"))
        }
        let services = self.services
        return .work({ await services.login(user: user, pin: pin) })
    }

    private func setKey(_ request: ClientMessage.SetKey, device: Device) -> Request {
        // A Metrc key crosses the network only inside TLS, unless the operator explicitly allowed otherwise.
        guard configuration.tls != nil || configuration.allowKeysWithoutTLS else {
            return .now(.error(.tlsRequired, "set_key needs a TLS connection; a Metrc key must not cross the network in clear"))
        }
        guard let handler = services.setKeyHandler else {
            return .now(.error(.unavailable, "this daemon does not manage Metrc keys yet"))
        }
        return .work({ await handler(request, device) })
    }

    private func pull(_ request: ClientMessage.Pull) -> Request {
        guard let handler = services.pullHandler else {
            return .now(.error(.unavailable, "reference data is not available from this daemon yet"))
        }
        return .work({ await handler(request) })
    }

    private func deviceMetadata(_ session: Session) -> Logger.Metadata {
        ["device": "\(session.device?.name ?? "")", "session": "\(session.id)", "remote": "\(remote)"]
    }

    static func newSessionID() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
