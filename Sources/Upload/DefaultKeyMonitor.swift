import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore
import Synchronization

/// Watches the facility's Default key: checks it with Metrc at start, and again now and then while Metrc
/// refuses it, so the events held for it go out once it is replaced.
final class DefaultKeyMonitor: Sendable {
    let key: String?
    let store: Store
    let client: MetrcClient
    let logger: Logger
    let recheckInterval: TimeInterval
    let clock: @Sendable () -> Date
    private let checkedAt = Mutex<Date?>(nil)

    init(key: String?, store: Store, client: MetrcClient, logger: Logger, recheckInterval: TimeInterval,
         clock: @escaping @Sendable () -> Date)
    {
        self.key = key
        self.store = store
        self.client = client
        self.logger = logger
        self.recheckInterval = recheckInterval
        self.clock = clock
    }

    /// What the signing policy needs to know about the Default key now (a store read: on a thread of its own).
    func state() throws -> DefaultKeyState {
        guard let key else { return .missing }
        return try store.defaultKeyStatus() == .rejected ? .rejected : .usable(key)
    }

    /// Checks again when the key is refused and the last check is old enough.
    func recheckIfDue() async {
        let store = self.store
        guard key != nil, (try? await Blocking.run { try store.defaultKeyStatus() }) == .rejected else { return }
        let last = checkedAt.withLock { $0 }
        if let last, clock().timeIntervalSince(last) < recheckInterval { return }
        await check()
    }

    /// An upload signed with the Default key was refused: that counts as a check (store writes: on a thread of its own).
    func markRejected(now: Date) throws {
        try store.setDefaultKeyStatus(.rejected)
        if let key { try store.recordDefaultKeyCheck(key: key, result: .refused, now: now) }
        checkedAt.withLock { $0 = now }
    }

    /// Asks Metrc about the Default key: a good answer releases what was held for it. Every check is recorded
    /// (`Store.recordDefaultKeyCheck`) for the scheduled checks, `outlawctl key list` and `status`.
    func check() async {
        guard let key else {
            logger.warning("no Default Metrc key configured: users without a personal key wait (held)",
                           metadata: MessageID.defaultKeyNotConfigured.metadata())
            return
        }
        checkedAt.withLock { $0 = clock() }
        let result: KeyCheckResult
        let status: KeyStatus?
        switch await client.checkKey(key) {
        case .valid:
            (result, status) = (.accepted, .ok)
        case .rejected:
            (result, status) = (.refused, .rejected)
            logger.critical("Metrc refuses the facility's Default key: uploads it signs are held until it is replaced",
                            metadata: MessageID.defaultKeyRefusedByCheck.metadata())
        case .unreachable(let why):
            (result, status) = (.unreachable, nil)
            logger.warning("cannot reach Metrc to check the Default key; uploads will tell",
                           metadata: MessageID.defaultKeyCheckUnreachable.metadata(["error": "\(why)"]))
        }
        let (store, now) = (self.store, clock())
        do {
            try await Blocking.run {
                if let status { try? store.setDefaultKeyStatus(status) }
                try store.recordDefaultKeyCheck(key: key, result: result, now: now)
            }
        } catch {
            logger.error("cannot record the Default key's check: \(error)", metadata: MessageID.defaultKeyCheckNotRecorded.metadata())
        }
    }
}

extension Uploader {
    /// Checks the facility's Default key with Metrc now (the scheduled key check, `[keys] check_interval_hours`).
    public func checkDefaultKey() async {
        await defaultKey.check()
    }
}
