import Foundation
import Logging
import OutlawProtocol
import OutlawStore
import Synchronization

/// What a device session needs from the rest of the daemon: the store, group commit, and later features' hooks.
public final class DeviceServices: Sendable {
    public let store: Store
    public let writer: BatchWriter
    /// Tells a logged-in user whose key signs their uploads (`personal`, `default`, `rejected`, `required`).
    let metrcKeyStatus: @Sendable (User) async -> String
    let setKeyHandler: (@Sendable (ClientMessage.SetKey, Device) async -> Reply)?
    let pullHandler: (@Sendable (ClientMessage.Pull) async -> Reply)?
    let onBatchStored: @Sendable () -> Void
    private let connectedDevices = Mutex([String: Int]())

    public init(store: Store, writer: BatchWriter,
                metrcKeyStatus: @escaping @Sendable (User) async -> String = { _ in "default" },
                setKeyHandler: (@Sendable (ClientMessage.SetKey, Device) async -> Reply)? = nil,
                pullHandler: (@Sendable (ClientMessage.Pull) async -> Reply)? = nil,
                onBatchStored: @escaping @Sendable () -> Void = {})
    {
        self.store = store
        self.writer = writer
        self.metrcKeyStatus = metrcKeyStatus
        self.setKeyHandler = setKeyHandler
        self.pullHandler = pullHandler
        self.onBatchStored = onBatchStored
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

    func batchStored() {
        onBatchStored()
    }

    func login(user: String, pin: String) async -> Reply {
        let outcome: LoginOutcome
        do {
            outcome = try await store.login(name: user, pin: pin)
        } catch {
            return .error(.unavailable, "the server cannot check PINs right now; retry later")
        }
        func refused(_ code: String) -> Reply {
            Reply(op: "login", [("user", .string(user)), ("ok", false), ("code", .string(code))])
        }
        switch outcome {
        case .ok(let u):
            let key = await metrcKeyStatus(u)
            return Reply(op: "login", [("user", .string(user)), ("ok", true), ("role", .string(u.role.rawValue)),
                                       ("metrc_key", .string(key))])
        case .badCredentials: return refused("bad_credentials")
        case .inactiveUser: return refused("inactive_user")
        case .locked: return refused("locked")
        }
    }
}

/// Builds the per-batch items of a `status` answer.
enum StatusReply {
    static func item(_ summary: BatchSummary) -> JSONValue {
        var item: [String: JSONValue] = [
            "id": .string(summary.id), "state": .string(summary.state.rawValue),
            "events": [
                "total": .number(Double(summary.events.total)), "pending": .number(Double(summary.events.pending)),
                "uploaded": .number(Double(summary.events.uploaded)), "failed": .number(Double(summary.events.failed)),
            ],
        ]
        if let reason = summary.heldReason { item["reason"] = .string(reason) }
        if !summary.errors.isEmpty {
            item["errors"] = .array(summary.errors.map { ["seq": .number(Double($0.seq)), "message": .string($0.message)] })
        }
        return .object(item)
    }
}
