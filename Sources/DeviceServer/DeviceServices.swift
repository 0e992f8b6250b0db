import Foundation
import Logging
import NIOCore
import OutlawProtocol
import OutlawStore
import Synchronization

/// What a `login` answer tells the handheld about the user's Metrc key.
public struct LoginKey: Sendable, Equatable {
    public var metrcKey: MetrcKeyStatus
    /// `key_expires`: the personal key's expected expiry day, `YYYY-MM-DD`, when known.
    public var expires: String?
    /// `key_checked_at`: when Metrc last accepted the personal key, when known.
    public var checkedAt: Date?

    public init(metrcKey: MetrcKeyStatus, expires: String? = nil, checkedAt: Date? = nil) {
        self.metrcKey = metrcKey
        self.expires = expires
        self.checkedAt = checkedAt
    }
}

/// Where a `pull` handler writes its `data` lines, in order, straight to the device's connection.
public struct PullSink: Sendable {
    /// Writes one line; returns once the connection has taken it, suspending while the device reads slower
    /// than we write (TCP back-pressure). Throws once the connection is gone or the handler has returned,
    /// and for every call after that. Call it from one task at a time: lines go out in call order.
    public let send: @Sendable (Reply) async throws -> Void

    public init(send: @escaping @Sendable (Reply) async throws -> Void) {
        self.send = send
    }
}

/// Answers a `pull`: sends any number of `data` lines through the sink, then returns the final line
/// (`pulled`, or an `error` when it fails before sending anything). It runs only after every earlier request
/// of the connection has been answered, and later answers wait until it returns.
public typealias PullHandler = @Sendable (ClientMessage.Pull, PullSink) async -> Reply

/// What a device session needs from the rest of the daemon: the store, group commit, and later features' hooks.
public final class DeviceServices: Sendable {
    public let store: Store
    public let writer: BatchWriter
    /// Tells a logged-in user whose key signs their uploads (`personal`, `default`, `rejected`, `required`), and
    /// when known their personal key's expected expiry and last acceptance by Metrc.
    let metrcKeyStatus: @Sendable (User) async -> LoginKey
    let setKeyHandler: (@Sendable (ClientMessage.SetKey, Device) async -> Reply)?
    let pullHandler: PullHandler?
    let onBatchStored: @Sendable () -> Void
    private let connectedDevices = Mutex([String: Int]())
    /// Events of every connection read and not yet answered (`BatchWriter.busyBacklog` bounds them).
    private let eventsInFlight = Atomic<Int>(0)

    public init(store: Store, writer: BatchWriter,
                metrcKeyStatus: @escaping @Sendable (User) async -> LoginKey = { _ in LoginKey(metrcKey: .default) },
                setKeyHandler: (@Sendable (ClientMessage.SetKey, Device) async -> Reply)? = nil,
                pullHandler: PullHandler? = nil,
                onBatchStored: @escaping @Sendable () -> Void = {})
    {
        self.store = store
        self.writer = writer
        self.metrcKeyStatus = metrcKeyStatus
        self.setKeyHandler = setKeyHandler
        self.pullHandler = pullHandler
        self.onBatchStored = onBatchStored
        self.pinCheck = PINCheck(store: store)
    }

    /// How many devices hold a session now (a device may hold several).
    public var connectedDeviceCount: Int {
        connectedDevices.withLock { $0.count }
    }

    func connected(device: String, delta: Int) {
        connectedDevices.withLock { devices in
            let n = (devices[device] ?? 0) + delta
            devices[device] = n > 0 ? n : nil
        }
    }

    /// Whether more events are read and unanswered than the writer keeps up with: connections then read no
    /// further until their own batches are answered.
    var isBusy: Bool { eventsInFlight.load(ordering: .relaxed) > BatchWriter.busyBacklog }

    func received(events: Int) { eventsInFlight.add(events, ordering: .relaxed) }
    func answered(events: Int) { eventsInFlight.subtract(events, ordering: .relaxed) }

    func batchStored() {
        onBatchStored()
    }

    /// The PIN checks of devices, each device spaced on its own (`FailureThrottle`) when it keeps failing them; the
    /// web console's sign-in makes the same check (`PINCheck`), spaced per remote address.
    public let pinCheck: PINCheck<Int64>
    /// Spaces the hellos of a remote address that keeps giving bad device credentials. Hellos at once from an
    /// address that has not failed are not spaced: a facility's handhelds may share one address, and their burst is
    /// bounded by `max_unauthenticated_per_address`.
    let addressThrottle = Mutex(FailureThrottle<String, ContinuousClock.Instant>(runningCountsBeforeAFailure: false))

    /// Waits `duration`, or less if `connection` closes first: a throttled attempt must not hold a stopping daemon
    /// (the stop closes every connection after its grace) nor a session whose device has gone.
    static func wait(_ duration: Duration, unlessClosed connection: any Channel) async {
        guard duration > .zero else { return }
        let (seconds, attoseconds) = duration.components
        let waited = connection.eventLoop.scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {}
        connection.closeFuture.whenComplete { _ in waited.cancel() }
        _ = try? await waited.futureResult.get()
    }

    /// A `login` from `device`: the PIN check (throttled per device, locked per name), then on success a ticket
    /// bound to this device and user. Every failure and every lock is a journal line at notice.
    func login(user: String, pin: String, device: Device, remote: String, connection: any Channel, ticketLifetime: TimeInterval,
               logger: Logger) async -> Reply {
        let attempt: LoginAttempt
        do {
            attempt = try await pinCheck.check(LoginRequest(name: user, pin: pin, ticketDevice: device.id, ticketLifetime: ticketLifetime),
                                               source: device.id, metadata: ["device": "\(device.name)", "remote": "\(remote)"],
                                               logger: logger, wait: { await Self.wait($0, unlessClosed: connection) })
        } catch {
            return .error(.unavailable, "the server cannot check PINs right now; retry later")
        }
        func refused(_ code: LoginRefusal) -> Reply {
            Reply(op: "login", [("user", .string(user)), ("ok", false), ("code", .string(code.rawValue))])
        }
        switch attempt.outcome {
        case .ok(let u):
            let key = await metrcKeyStatus(u)
            var fields: [(String, JSONValue)] = [("user", .string(user)), ("ok", true), ("role", .string(u.role.rawValue)),
                                                 ("metrc_key", .string(key.metrcKey.rawValue))]
            if let expires = key.expires { fields.append(("key_expires", .string(expires))) }
            if let checkedAt = key.checkedAt { fields.append(("key_checked_at", .string(Timestamp.format(checkedAt)))) }
            if let ticket = attempt.ticket {
                fields.append(("ticket", .string(ticket.token)))
                fields.append(("ticket_expires", .string(Timestamp.format(ticket.expiresAt))))
            }
            return Reply(op: "login", fields)
        case .badCredentials: return refused(.badCredentials)
        case .inactiveUser: return refused(.inactiveUser)
        case .locked: return refused(.locked)
        }
    }
}

/// Builds the per-batch items of a `status` answer. Events rejected in review count as failed (they never reach
/// Metrc; `errors` says who rejected them and why).
enum StatusReply {
    static func item(_ summary: BatchSummary) -> JSONValue {
        var item: [String: JSONValue] = [
            "id": .string(summary.id), "state": .string(summary.state.rawValue),
            "events": [
                "total": .number(Double(summary.events.total)), "pending": .number(Double(summary.events.pending)),
                "uploaded": .number(Double(summary.events.uploaded)),
                "failed": .number(Double(summary.events.failed + summary.events.rejected)),
            ],
        ]
        if summary.state == .review {
            let n = summary.events.review
            item["reason"] = .string("\(n) event\(n == 1 ? "" : "s") wait\(n == 1 ? "s" : "") for review")
        } else if let reason = summary.heldReason {
            item["reason"] = .string(reason)
        }
        if !summary.errors.isEmpty {
            item["errors"] = .array(summary.errors.map { ["seq": .number(Double($0.seq)), "message": .string($0.message)] })
        }
        // Names missing from the copy of Metrc's lists when the batch was stored: the batch was kept anyway.
        if !summary.warnings.isEmpty {
            item["warnings"] = .array(summary.warnings.map { ["seq": .number(Double($0.seq)), "message": .string($0.message)] })
        }
        return .object(item)
    }
}
