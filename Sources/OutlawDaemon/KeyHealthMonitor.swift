import Foundation
import Logging
import Metrics
import Metrc
import OutlawKeys
import OutlawProtocol
import OutlawStore
import ServiceLifecycle
import Synchronization
import Upload

/// Runs `KeyHealthPolicy`'s schedule (`[keys]`): checks every personal key and the Default key with Metrc's cheap
/// key check, one at a time with a pause between, marks a refused personal key `rejected` (its owner's uploads
/// wait for a new key), and logs a warning once a day for each key nearing its expected expiry.
final class KeyHealthMonitor: Service, Sendable {
    let store: Store
    let client: MetrcClient
    let uploader: Uploader
    let defaultKey: String?
    /// `[keys]`, shared with the login answers; a reload replaces it and each look reads it again.
    let policySetting: Reloadable<KeyHealthPolicy>
    let logger: Logger
    let clock: @Sendable () -> Date
    /// Between two checks: never more than one in flight, never a burst.
    let pause: Duration
    /// The day each key's expiry warning was last logged. In memory: a restarted daemon warns again that day, once.
    private let warned = Mutex<[String: String]>([:])
    /// After Metrc gave no answer, no check before this (the other keys would get none either).
    private let quietUntil = Mutex<Date?>(nil)

    init(store: Store, client: MetrcClient, uploader: Uploader, defaultKey: String?, policy: Reloadable<KeyHealthPolicy>, logger: Logger,
         clock: @escaping @Sendable () -> Date = Date.init, pause: Duration = .seconds(1))
    {
        self.store = store
        self.client = client
        self.uploader = uploader
        self.defaultKey = defaultKey
        policySetting = policy
        self.logger = logger
        self.clock = clock
        self.pause = pause
    }

    var policy: KeyHealthPolicy { policySetting.value }

    /// How often the schedule is looked at: half the interval, from half a second to a minute.
    var tick: Duration { .milliseconds(Int(1000 * max(0.5, min(60, policy.checkInterval / 2)))) }

    func run() async throws {
        // The uploader checks the Default key as it starts; the first look comes one tick later.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: self.tick)
                } catch {
                    return
                }
                await self.pass()
            }
        }
    }

    /// One look: the checks that are due, then the expiry warnings owed today.
    func pass() async {
        do {
            try await checkDue()
            try warnExpiring()
        } catch {
            logger.error("key health: cannot read the keys: \(error)", metadata: MessageID.keyHealthUnreadable.metadata())
        }
        Self.passes.increment()
    }

    /// Key health looks completed: proof that the monitor looked since a change, before checking it did nothing.
    static let passes = Counter(label: "outlawd_key_health_passes_total")

    func checkDue() async throws {
        if let until = quietUntil.withLock({ $0 }), clock() < until { return }
        for record in try store.keyHealth() where policy.isDue(KeyFacts(record), now: clock()) {
            guard !Task.isCancelled else { return }
            guard await check(record) else { return }
            try? await Task.sleep(for: pause)
        }
        if let defaultKey, policy.isDue(try defaultFacts(defaultKey), now: clock()) {
            await uploader.checkDefaultKey()
            if try store.defaultKeyHealth(key: defaultKey)?.lastCheckResult == .unreachable { quiet() }
        }
    }

    /// The Default key as the policy sees it; never checked (or replaced since) counts as due.
    func defaultFacts(_ key: String) throws -> KeyFacts {
        guard let health = try store.defaultKeyHealth(key: key) else { return KeyFacts(setAt: clock(), status: .unverified) }
        return KeyFacts(health, status: try store.defaultKeyStatus())
    }

    func quiet() {
        let until = clock().addingTimeInterval(min(policy.checkInterval, policy.unreachableRetry))
        quietUntil.withLock { $0 = until }
    }

    /// Checks one personal key and records the answer. Returns false when there was no answer (Metrc's, or the
    /// key could not be read): the checks pause for a while rather than fail for every key in a row.
    func check(_ record: KeyHealthRecord) async -> Bool {
        let metadata: Logger.Metadata = ["outlaw_user": "\(record.user)"]
        let key: String
        do {
            guard let signing = try store.signingKeys(userIDs: [record.userID])[record.userID] else { return true }
            key = signing.key
        } catch {
            logger.error("cannot read \(record.user)'s personal key to check it: \(error)",
                         metadata: MessageID.personalKeyUnreadable.metadata(metadata))
            quiet()
            return false
        }
        let answer = await client.checkKey(key)
        let now = clock()
        do {
            switch answer {
            case .valid(_, let expiresAt):
                try store.recordKeyCheck(userID: record.userID, setAt: record.setAt, result: .accepted, metrcExpiresAt: expiresAt, now: now)
                logger.debug("Metrc accepts \(record.user)'s personal key", metadata: metadata)
            case .rejected:
                if let held = try store.markUserKeyRejected(userID: record.userID, setAt: record.setAt, now: now) {
                    logger.error("Metrc refuses \(record.user)'s personal key (scheduled check): their uploads are held until a new key is set (outlawctl key set \(record.user))",
                                 metadata: MessageID.personalKeyRefusedByCheck.metadata(metadata.merging(["held": "\(held)"]) { a, _ in a }))
                }
            case .unreachable(let why):
                try store.recordKeyCheck(userID: record.userID, setAt: record.setAt, result: .unreachable, now: now)
                logger.warning("cannot reach Metrc to check \(record.user)'s personal key; checked again later",
                               metadata: MessageID.personalKeyCheckUnreachable.metadata(metadata.merging(["error": "\(why)"]) { a, _ in a }))
                quiet()
                return false
            }
        } catch {
            logger.error("cannot record the check of \(record.user)'s personal key: \(error)",
                         metadata: MessageID.personalKeyCheckNotRecorded.metadata(metadata))
        }
        return true
    }

    /// One warning a day for each key within `warn_days` of its expected expiry.
    func warnExpiring() throws {
        let now = clock()
        for record in try store.keyHealth() {
            warn("user:\(record.user):\(record.setAt.timeIntervalSince1970)", KeyFacts(record), now: now) { w in
                logger.warning("""
                    \(record.user)'s personal Metrc key \(w.daysLeft < 0 ? "was" : "is") expected to expire \(w.when) (\(w.expires)): \
                    a new key from Metrc's web console, set with outlawctl key set \(record.user), keeps their uploads going
                    """, metadata: MessageID.personalKeyExpiring.metadata(["outlaw_user": "\(record.user)", "expires": "\(w.expires)", "days_left": "\(w.daysLeft)"]))
            }
        }
        if let defaultKey, let health = try store.defaultKeyHealth(key: defaultKey) {
            warn("default:\(health.fingerprint)", KeyFacts(health, status: try store.defaultKeyStatus()), now: now) { w in
                logger.warning("""
                    the facility's Default Metrc key \(w.daysLeft < 0 ? "was" : "is") expected to expire \(w.when) (\(w.expires), \
                    counted from \(policy.day(health.since)), when outlawd first used it): replace the credential before then
                    """, metadata: MessageID.defaultKeyExpiring.metadata(["expires": "\(w.expires)", "days_left": "\(w.daysLeft)"]))
            }
        }
    }

    private func warn(_ id: String, _ facts: KeyFacts, now: Date, log: (ExpiryWarning) -> Void) {
        let last = warned.withLock { $0[id] }
        guard let warning = policy.warning(facts, now: now, lastWarnedDay: last) else { return }
        log(warning)
        warned.withLock { $0[id] = warning.day }
    }
}
