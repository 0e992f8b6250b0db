import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore
import ServiceLifecycle
import Synchronization

/// The reference sync's settings, from `[metrc]` and `[facility]`.
public struct ReferenceSyncConfiguration: Sendable {
    public var licenses: [String]
    public var interval: TimeInterval
    public var fullEvery: TimeInterval
    /// Pages of one list read at once (Metrc allows 10 concurrent GETs per facility).
    public var pagesAtOnce: Int
    /// How often outlawctl's requests are looked for.
    public var requestPoll: Duration

    public init(licenses: [String], interval: TimeInterval = 300, fullEvery: TimeInterval = 86_400, pagesAtOnce: Int = 10,
                requestPoll: Duration = .seconds(1)) {
        self.licenses = licenses
        self.interval = interval
        self.fullEvery = fullEvery
        self.pagesAtOnce = pagesAtOnce
        self.requestPoll = requestPoll
    }
}

/// Keeps the copy of Metrc's lists in the store with the Default key: a full read first and once a day,
/// overlapping windows between, on a schedule and when `outlawctl sync` asks. A failing sync keeps the last
/// good copy, logs, and tries again with backoff.
public final class ReferenceSync: Service, Sendable {
    let store: Store
    let client: MetrcClient
    let defaultKey: String?
    let configuration: ReferenceSyncConfiguration
    let logger: Logger
    /// The time of day, for windows and the dates recorded; the schedule waits on the `Clock` ``run(clock:)`` is given.
    let wallClock: @Sendable () -> Date
    private let lastReport = Mutex<SyncReport?>(nil)

    /// The store setting that says what is wrong with the sync (shown by `outlawctl status` and STATUS=).
    public static let problemSetting = Store.referenceSyncProblemSetting

    public init(store: Store, client: MetrcClient, defaultKey: String?, configuration: ReferenceSyncConfiguration,
                logger: Logger, wallClock: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.client = client
        self.defaultKey = defaultKey
        self.configuration = configuration
        self.logger = logger
        self.wallClock = wallClock
    }

    public var latestReport: SyncReport? { lastReport.withLock { $0 } }

    public func run() async throws {
        await run(clock: ContinuousClock())
    }

    /// The sync on `clock`'s schedule (``schedule(clock:interval:poll:round:retrying:)``) until graceful shutdown.
    public func run<C: Clock>(clock: C) async where C.Duration == Duration {
        let store = self.store
        _ = try? await Blocking.run { try store.retakeUnfinishedSyncRequests() }
        await cancelWhenGracefulShutdown {
            await Self.schedule(clock: clock, interval: .seconds(self.configuration.interval), poll: self.configuration.requestPoll) { due in
                let now = self.wallClock()
                let requests = (try? await Blocking.run { try store.takeSyncRequests(now: now) }) ?? []
                guard due || !requests.isEmpty else { return .idle }
                let report = await self.syncAll(forceFull: requests.contains { $0.full })
                if !requests.isEmpty, let json = try? JSONEncoder.report.encode(report) {
                    let finished = self.wallClock()
                    _ = try? await Blocking.run { try store.finishSyncRequests(result: String(decoding: json, as: UTF8.self), now: finished) }
                }
                return .synced(failed: report.failed)
            } retrying: { wait in
                self.logger.notice("reference sync: next try",
                                   metadata: MessageID.referenceSyncRetry.metadata(["retry_in_s": "\(wait.components.seconds)"]))
            }
        }
    }

    /// What one round of the schedule did.
    enum Round: Sendable {
        /// Nothing asked for a sync and none was due.
        case idle
        /// A sync ran (due, or asked for by `outlawctl sync`).
        case synced(failed: Bool)
    }

    /// When the sync runs, apart from what it does: `round(due)` takes `outlawctl sync`'s requests and syncs when there
    /// are any or `due` says a sync is due. The first round is due; after a sync the next is due `interval` later, or
    /// after a failure 30 s, 1, 2, 4 ... min later (never more than `interval`), and requests are looked for at once,
    /// then every `poll`. Returns at once on cancellation: a stop never waits out a poll, and no round starts after it.
    static func schedule<C: Clock>(clock: C, interval: Duration, poll: Duration, round: (_ due: Bool) async -> Round,
                                   retrying: (_ wait: Duration) -> Void = { _ in }) async where C.Duration == Duration {
        var failures = 0
        var nextDue = clock.now
        while !Task.isCancelled {
            switch await round(clock.now >= nextDue) {
            case .idle:
                do {
                    try await clock.sleep(for: poll)
                } catch {
                    return
                }
            case .synced(let failed):
                failures = failed ? failures + 1 : 0
                let wait = retryWait(failures: failures, interval: interval)
                nextDue = clock.now.advanced(by: wait)
                if failed, !Task.isCancelled { retrying(wait) }
            }
        }
    }

    /// The wait before the next sync after `failures` failed ones in a row (0: the interval).
    static func retryWait(failures: Int, interval: Duration) -> Duration {
        guard failures > 0 else { return interval }
        return min(interval, .seconds(30) * (1 << min(failures - 1, 10)))
    }

    /// Runs one sync of every kind of every license now.
    public func syncAll(forceFull: Bool) async -> SyncReport {
        let started = wallClock()
        let startedInstant = ContinuousClock.now
        guard let defaultKey else {
            let message = "no Default Metrc key: reference data cannot be downloaded"
            _ = try? await Blocking.run { try self.store.setSetting(Self.problemSetting, message) }
            logger.warning("reference sync skipped: \(message)", metadata: MessageID.referenceSyncSkipped.metadata())
            let report = SyncReport(startedAt: started, seconds: 0, kinds: [], error: message)
            lastReport.withLock { $0 = report }
            return report
        }
        var kinds: [KindSyncReport] = []
        for license in configuration.licenses {
            let known = (try? await Blocking.run { try self.store.referenceSyncStates(license: license) }) ?? []
            let states = Dictionary(known.map { ($0.kind, $0) }) { a, _ in a }
            let steps = SyncPlan.steps(kinds: ReferenceKind.allCases, states: states, now: wallClock(),
                                       fullEvery: configuration.fullEvery, forceFull: forceFull)
            let reports = await withTaskGroup(of: KindSyncReport.self) { group in
                for step in steps {
                    group.addTask { await self.sync(step, license: license, key: defaultKey) }
                }
                var all: [KindSyncReport] = []
                for await report in group { all.append(report) }
                return all.sorted { $0.kind < $1.kind }
            }
            kinds += reports
            log(license: license, reports)
        }
        let report = SyncReport(startedAt: started, seconds: (ContinuousClock.now - startedInstant).seconds, kinds: kinds)
        let problem: String?
        if let refused = kinds.first(where: { $0.error?.contains("refused") == true }) {
            problem = "the Default Metrc key was refused by Metrc (reference sync of \(refused.license))"
        } else if let failed = kinds.first(where: { $0.error != nil }) {
            problem = "reference sync failing for \(failed.license): \(failed.error ?? "")"
        } else {
            problem = nil
        }
        _ = try? await Blocking.run { try self.store.setSetting(Self.problemSetting, problem) }
        lastReport.withLock { $0 = report }
        return report
    }

    /// One log line per license and sync, never one per record.
    private func log(license: String, _ reports: [KindSyncReport]) {
        var metadata: Logger.Metadata = [
            "facility": "\(license)",
            "changed": "\(reports.reduce(0) { $0 + $1.changed })",
            "removed": "\(reports.reduce(0) { $0 + $1.removed })",
            "requests": "\(reports.reduce(0) { $0 + $1.requests })",
            "rate_limited": "\(reports.reduce(0) { $0 + $1.rateLimited })",
            "full": "\(reports.filter(\.full).map(\.kind.rawValue).joined(separator: ","))",
        ]
        let failed = reports.filter { $0.error != nil }
        if failed.isEmpty {
            logger.info("reference data synced", metadata: MessageID.referenceSynced.metadata(metadata))
        } else {
            metadata["failed_kinds"] = "\(failed.map(\.kind.rawValue).joined(separator: ","))"
            metadata["error"] = "\(failed[0].error ?? "")"
            logger.error("reference sync failed; the last good copy is still served", metadata: MessageID.referenceSyncFailed.metadata(metadata))
        }
    }

    /// Reads one kind and applies it; a failure is recorded and reported, never thrown.
    func sync(_ step: SyncPlan.Step, license: String, key: String) async -> KindSyncReport {
        var report = KindSyncReport(license: license, kind: step.kind, full: step.full)
        let tally = ReadTally()
        let started = ContinuousClock.now
        do {
            let changes = try await MetrcClient.$readTally.withValue(tally) {
                try await read(step, license: license, key: key)
            }
            report.fetched = changes.fetched
            report.changed = changes.changed
            report.removed = changes.removed
            let now = wallClock()
            try await Blocking.run {
                try self.store.recordReferenceSuccess(license: license, kind: step.kind, full: step.full, windowEnd: step.window.end, now: now)
            }
        } catch {
            report.error = Self.describe(error)
            let now = wallClock()
            let message = report.error ?? ""
            _ = try? await Blocking.run { try self.store.recordReferenceFailure(license: license, kind: step.kind, error: message, now: now) }
        }
        report.requests = tally.requests
        report.rateLimited = tally.rateLimited
        report.seconds = (ContinuousClock.now - started).seconds
        return report
    }

    static func describe(_ error: any Error) -> String {
        if let read = error as? MetrcReadError {
            if read.status == 401 || read.status == 403 { return "Default key refused by Metrc (\(read.status!))" }
            return read.description
        }
        return String(describing: error)
    }

    struct Counts {
        var fetched = 0
        var changed = 0
        var removed = 0
    }

    /// Applies pages as they arrive, 500 items a transaction, and remembers the keys seen for a full sync.
    final class Applier: Sendable {
        struct State {
            var buffer: [ReferenceItem] = []
            var seen = Set<String>()
            var counts = Counts()
        }

        let store: Store
        let license: String
        let kind: ReferenceKind
        let now: Date
        let state = Mutex(State())

        init(store: Store, license: String, kind: ReferenceKind, now: Date) {
            self.store = store
            self.license = license
            self.kind = kind
            self.now = now
        }

        func add(_ records: [[String: JSONValue]]) async throws {
            let items = records.compactMap { ReferenceLists.item(kind, $0) }
            let full: [ReferenceItem]? = state.withLock { s in
                s.counts.fetched += records.count
                for item in items { s.seen.insert(item.key.uppercased()) }
                s.buffer += items
                guard s.buffer.count >= 500 else { return nil }
                defer { s.buffer = [] }
                return s.buffer
            }
            if let full { try await apply(full, removed: []) }
        }

        func flush() async throws {
            let rest = state.withLock { s in
                defer { s.buffer = [] }
                return s.buffer
            }
            try await apply(rest, removed: [])
        }

        func apply(_ items: [ReferenceItem], removed: [String]) async throws {
            guard !items.isEmpty || !removed.isEmpty else { return }
            let (store, license, kind, now) = (self.store, self.license, self.kind, self.now)
            let changes = try await Blocking.run {
                try store.applyReference(license: license, kind: kind, items: items, removedKeys: removed, now: now)
            }
            state.withLock { s in
                s.counts.changed += changes.changed
                s.counts.removed += changes.removed
            }
        }

        var seen: Set<String> { state.withLock { $0.seen } }
        var counts: Counts { state.withLock { $0.counts } }
    }

    private func read(_ step: SyncPlan.Step, license: String, key: String) async throws -> Counts {
        let applier = Applier(store: store, license: license, kind: step.kind, now: wallClock())
        for endpoint in ReferenceLists.active(step.kind) {
            try await readPages(endpoint, license: license, key: key, window: step.window) { try await applier.add($0) }
        }
        try await applier.flush()
        if step.full {
            // Whatever the copy holds that Metrc no longer lists has left the active list.
            let seen = applier.seen
            let kind = step.kind
            let gone = try await Blocking.run { try self.store.activeReferenceKeys(license: license, kind: kind) }
                .filter { !seen.contains($0.uppercased()) }
            try await applier.apply([], removed: gone.sorted())
        } else if let inactive = ReferenceLists.inactive(step.kind) {
            let kind = step.kind
            try await readPages(inactive, license: license, key: key, window: step.window) { records in
                try await applier.apply([], removed: records.compactMap { ReferenceLists.key(kind, $0) })
            }
        }
        return applier.counts
    }

    /// Reads every page of a window; a window Metrc refuses as too wide is read as two halves, and one that fails
    /// on the way (no answer, 5xx) is read again twice, 1 then 2 s later, before the kind counts as failed: a blip
    /// should not leave a list a whole sync interval behind. (Reading a window again only upserts what it gives.)
    private func readPages(_ endpoint: ReferenceLists.Endpoint, license: String, key: String, window: SyncPlan.Window,
                           depth: Int = 0, each: @escaping @Sendable ([[String: JSONValue]]) async throws -> Void) async throws {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await readWindow(endpoint, license: license, key: key, window: window, depth: depth, each: each)
            } catch let error as MetrcReadError where SyncPlan.isWorthRetrying(error) && attempt < 3 {
                logger.debug("reference sync: reading \(endpoint.path) again", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(attempt))
            }
        }
    }

    private func readWindow(_ endpoint: ReferenceLists.Endpoint, license: String, key: String, window: SyncPlan.Window,
                            depth: Int, each: @escaping @Sendable ([[String: JSONValue]]) async throws -> Void) async throws {
        do {
            try await client.pages(path: endpoint.path, license: endpoint.licensed ? license : nil, userKey: key,
                                   since: window.start, until: window.end, concurrency: configuration.pagesAtOnce) { try await each($0) }
        } catch let error as MetrcReadError where SyncPlan.isTooWide(error) {
            guard depth < 32, let halves = SyncPlan.split(window) else { throw error }
            for half in halves {
                try await readPages(endpoint, license: license, key: key, window: half, depth: depth + 1, each: each)
            }
        }
    }
}

extension JSONEncoder {
    /// The encoder of sync reports (stored for outlawctl, printed with --json).
    public static var report: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
