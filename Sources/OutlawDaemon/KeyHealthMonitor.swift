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
    /// The time of day, for the policy and the dates recorded; the schedule waits on the `Clock` ``run(clock:)`` is given.
    let wallClock: @Sendable () -> Date
    /// Between two checks: never more than one in flight, never a burst.
    let pause: Duration
    /// The day each key's expiry warning was last logged. In memory: a restarted daemon warns again that day, once.
    private let warned = Mutex<[String: String]>([:])
    /// After Metrc gave no answer, no check before this (the other keys would get none either).
    private let quietUntil = Mutex<Date?>(nil)

    init(store: Store, client: MetrcClient, uploader: Uploader, defaultKey: String?, policy: Reloadable<KeyHealthPolicy>, logger: Logger,
         wallClock: @escaping @Sendable () -> Date = Date.init, pause: Duration = .seconds(1))
    {
        self.store = store
        self.client = client
        self.uploader = uploader
        self.defaultKey = defaultKey
        policySetting = policy
        self.logger = logger
        self.wallClock = wallClock
        self.pause = pause
    }

    var policy: KeyHealthPolicy { policySetting.value }

    /// How often the schedule is looked at: half the interval, from half a second to a minute.
    var tick: Duration { Self.tick(policy) }

    static func tick(_ policy: KeyHealthPolicy) -> Duration {
        .milliseconds(Int(1000 * max(0.5, min(60, policy.checkInterval / 2))))
    }

    func run() async throws {
        await run(clock: ContinuousClock())
    }

    /// The schedule on `clock`; ends at once on graceful shutdown, even between two checks.
    func run<C: Clock>(clock: C) async where C.Duration == Duration {
        await cancelWhenGracefulShutdown {
            // The uploader checks the Default key as it starts; the first look comes one tick later. The tick is read
            // again for each wait: a reload of [keys] takes effect at the next one.
            await clock.every(self.tick, immediately: false) {
                await self.pass(clock: clock)
            }
        }
    }

    /// One look: the checks that are due, then the expiry warnings owed today.
    func pass<C: Clock>(clock: C) async where C.Duration == Duration {
        do {
            try await checkDue(clock: clock)
            try await warnExpiring()
        } catch {
            logger.error("key health: cannot read the keys: \(error)", metadata: MessageID.keyHealthUnreadable.metadata())
        }
        Self.passes.increment()
    }

    /// Key health looks completed: proof that the monitor looked since a change, before checking it did nothing.
    static let passes = Counter(label: "outlawd_key_health_passes_total")

    /// The checks that are due, one at a time, `pause` apart on `clock`. The store's reads and writes run on its pool.
    func checkDue<C: Clock>(clock: C) async throws where C.Duration == Duration {
        if let until = quietUntil.withLock({ $0 }), wallClock() < until { return }
        let store = self.store
        for record in try await Blocking.run({ try store.keyHealth() }) where policy.isDue(KeyFacts(record), now: wallClock()) {
            guard !Task.isCancelled else { return }
            guard await check(record) else { return }
            do {
                try await clock.sleep(for: pause)
            } catch {
                return
            }
        }
        if let defaultKey, policy.isDue(try await defaultFacts(defaultKey), now: wallClock()) {
            await uploader.checkDefaultKey()
            if try await Blocking.run({ try store.defaultKeyHealth(key: defaultKey) })?.lastCheckResult == .unreachable { quiet() }
        }
    }

    /// The Default key as the policy sees it; never checked (or replaced since) counts as due.
    func defaultFacts(_ key: String) async throws -> KeyFacts {
        let store = self.store
        let (health, status) = try await Blocking.run { (try store.defaultKeyHealth(key: key), try store.defaultKeyStatus()) }
        guard let health else { return KeyFacts(setAt: wallClock(), status: .unverified) }
        return KeyFacts(health, status: status)
    }

    func quiet() {
        let until = wallClock().addingTimeInterval(min(policy.checkInterval, policy.unreachableRetry))
        quietUntil.withLock { $0 = until }
    }

    /// Checks one personal key and records the answer. Returns false when there was no answer (Metrc's, or the
    /// key could not be read): the checks pause for a while rather than fail for every key in a row.
    func check(_ record: KeyHealthRecord) async -> Bool {
        let metadata: Logger.Metadata = ["outlaw_user": "\(record.user)"]
        let key: String
        let store = self.store
        do {
            guard let signing = try await Blocking.run({ try store.signingKeys(userIDs: [record.userID])[record.userID] }) else { return true }
            key = signing.key
        } catch {
            logger.error("cannot read \(record.user)'s personal key to check it: \(error)",
                         metadata: MessageID.personalKeyUnreadable.metadata(metadata))
            quiet()
            return false
        }
        let answer = await client.checkKey(key)
        let now = wallClock()
        do {
            switch answer {
            case .valid(_, let expiresAt):
                _ = try await Blocking.run {
                    try store.recordKeyCheck(userID: record.userID, setAt: record.setAt, result: .accepted, metrcExpiresAt: expiresAt, now: now)
                }
                logger.debug("Metrc accepts \(record.user)'s personal key", metadata: metadata)
            case .rejected:
                if let held = try await Blocking.run({ try store.markUserKeyRejected(userID: record.userID, setAt: record.setAt, now: now) }) {
                    logger.error("Metrc refuses \(record.user)'s personal key (scheduled check): their uploads are held until a new key is set (outlawctl key set \(record.user))",
                                 metadata: MessageID.personalKeyRefusedByCheck.metadata(metadata.merging(["held": "\(held)"]) { a, _ in a }))
                }
            case .unreachable(let why):
                _ = try await Blocking.run { try store.recordKeyCheck(userID: record.userID, setAt: record.setAt, result: .unreachable, now: now) }
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
    func warnExpiring() async throws {
        let now = wallClock()
        let store = self.store
        let defaultKey = self.defaultKey
        let (records, defaultHealth) = try await Blocking.run { () -> ([KeyHealthRecord], (DefaultKeyHealth, KeyStatus?)?) in
            let records = try store.keyHealth()
            guard let defaultKey, let health = try store.defaultKeyHealth(key: defaultKey) else { return (records, nil) }
            return (records, (health, try store.defaultKeyStatus()))
        }
        for record in records {
            warn("user:\(record.user):\(record.setAt.timeIntervalSince1970)", KeyFacts(record), now: now) { w in
                logger.warning("""
                    \(record.user)'s personal Metrc key \(w.daysLeft < 0 ? "was" : "is") expected to expire \(w.when) (\(w.expires)): \
                    a new key from Metrc's web console, set with outlawctl key set \(record.user), keeps their uploads going
                    """, metadata: MessageID.personalKeyExpiring.metadata(["outlaw_user": "\(record.user)", "expires": "\(w.expires)", "days_left": "\(w.daysLeft)"]))
            }
        }
        if case let (health, status)? = defaultHealth {
            warn("default:\(health.fingerprint)", KeyFacts(health, status: status), now: now) { w in
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
