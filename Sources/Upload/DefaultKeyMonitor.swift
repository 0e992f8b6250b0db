import Foundation
import Logging
import Metrc
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

    /// What the signing policy needs to know about the Default key now.
    func state() throws -> DefaultKeyState {
        guard let key else { return .missing }
        return try store.defaultKeyStatus() == .rejected ? .rejected : .usable(key)
    }

    /// Checks again when the key is refused and the last check is old enough.
    func recheckIfDue() async {
        guard key != nil, (try? store.defaultKeyStatus()) == .rejected else { return }
        let last = checkedAt.withLock { $0 }
        if let last, clock().timeIntervalSince(last) < recheckInterval { return }
        await check()
    }

    /// An upload signed with the Default key was refused: that counts as a check.
    func markRejected(now: Date) throws {
        try store.setDefaultKeyStatus(.rejected)
        checkedAt.withLock { $0 = now }
    }

    /// Asks Metrc about the Default key: a good answer releases what was held for it.
    func check() async {
        guard let key else {
            logger.warning("no Default Metrc key configured: users without a personal key wait (held)")
            return
        }
        checkedAt.withLock { $0 = clock() }
        switch await client.checkKey(key) {
        case .valid:
            try? store.setDefaultKeyStatus(.ok)
        case .rejected:
            try? store.setDefaultKeyStatus(.rejected)
            logger.critical("Metrc refuses the facility's Default key: uploads it signs are held until it is replaced")
        case .unreachable(let why):
            logger.warning("cannot reach Metrc to check the Default key; uploads will tell", metadata: ["error": "\(why)"])
        }
    }
}
