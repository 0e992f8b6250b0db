import Dispatch
import Foundation
import Logging
import OutlawConfig
import OutlawKeys
import OutlawProtocol
import OutlawStore
import ServiceLifecycle
import Synchronization
import Systemd

#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP as a sequence, caught from the moment this exists (by default a hangup would end the daemon). Hangups that
/// arrive during a reload make one more reload, not one each.
final class Hangups: Sendable {
    let signals: AsyncStream<Void>
    // Dispatch sources are thread-safe but not marked Sendable; this one is only kept alive and cancelled.
    private nonisolated(unsafe) let source: any DispatchSourceSignal

    init() async {
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "outlawd.sighup"))
        let (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        source.setEventHandler { continuation.yield() }
        // Registration is asynchronous: a hangup before it completes would still take the default action.
        await withCheckedContinuation { (registered: CheckedContinuation<Void, Never>) in
            source.setRegistrationHandler { registered.resume() }
            source.resume()
        }
        self.source = source
        self.signals = signals
    }

    deinit { source.cancel() }
}

/// `systemctl reload outlawd` (SIGHUP): reads the configuration file again and applies what changes without dropping
/// a connection (`DaemonConfiguration.reloadPlan`), between `RELOADING=1` and `READY=1`; an invalid file, or one that
/// changes what needs a restart, keeps the running configuration. It also runs the Metrc side (`MetrcServices`), so
/// that a reload bringing Metrc keys can start uploads, or replace the side that signs with the old keys.
final class ReloadService: Service, Sendable {
    let hangups: Hangups
    let writer: BatchWriter
    let keyPolicy: Reloadable<KeyHealthPolicy>
    /// `[backup]`, read by `BackupService` before each wait.
    let backup: Reloadable<DaemonConfiguration.Backup>
    /// `[retention]`, read by `RetentionService` before each run.
    let retention: Reloadable<DaemonConfiguration.Retention>?
    let metrc: Reloadable<MetrcServices?>
    let store: Store
    let logger: Logger
    let loadCredentials: @Sendable (DaemonConfiguration) -> MetrcCredentials
    let notifier = SystemdNotifier()
    private let running: Mutex<DaemonConfiguration>
    /// The listen address the file named at start: with a `--listen` override running, the file's own address is
    /// not a change.
    private let fileListen: String?

    init(configuration: DaemonConfiguration, hangups: Hangups, writer: BatchWriter, keyPolicy: Reloadable<KeyHealthPolicy>,
         metrc: Reloadable<MetrcServices?>, store: Store, logger: Logger, backup: Reloadable<DaemonConfiguration.Backup>,
         retention: Reloadable<DaemonConfiguration.Retention>? = nil,
         loadCredentials: @escaping @Sendable (DaemonConfiguration) -> MetrcCredentials = { MetrcCredentials.load($0) })
    {
        running = Mutex(configuration)
        fileListen = configuration.file.flatMap { try? DaemonConfiguration.load(path: $0) }.map { "\($0.server.host):\($0.server.port)" }
        self.hangups = hangups
        self.writer = writer
        self.keyPolicy = keyPolicy
        self.backup = backup
        self.retention = retention
        self.metrc = metrc
        self.store = store
        self.logger = logger
        self.loadCredentials = loadCredentials
    }

    enum Event: Sendable {
        case hangup
        /// The Metrc side failed: the daemon stops, as it did when those services ran in the main group.
        case failed(any Error)
    }

    /// One Metrc side running in a service group of its own, so it can stop without the rest of the daemon.
    struct Generation: Sendable {
        let side: MetrcServices
        let group: ServiceGroup
        /// Ends once the side has stopped and its client is shut down.
        let ended: AsyncStream<Void>
    }

    typealias Group = ThrowingTaskGroup<Void, any Error>

    func run() async throws {
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in self.hangups.signals.cancelOnGracefulShutdown() { sink.yield(.hangup) }
                sink.finish()
            }
            var generation: Generation?
            if let side = metrc.value { generation = start(side, in: &group, sink) }
            for await event in events {
                switch event {
                case .hangup: generation = await reload(generation, in: &group, sink)
                case .failed(let error): throw error
                }
            }
            // Graceful shutdown reached the Metrc side too (a task-local every child inherits): wait for it.
            try await group.waitForAll()
        }
    }

    func start(_ side: MetrcServices, in group: inout Group, _ sink: AsyncStream<Event>.Continuation) -> Generation {
        let serviceGroup = ServiceGroup(configuration: .init(services: side.services, logger: logger))
        let (ended, endedSink) = AsyncStream.makeStream(of: Void.self)
        group.addTask {
            defer { endedSink.finish() }
            do {
                try await serviceGroup.run()
            } catch {
                try? await side.client.shutdown()
                sink.yield(.failed(error))
                throw error
            }
            try? await side.client.shutdown()
        }
        metrc.set(side)
        return Generation(side: side, group: serviceGroup, ended: ended)
    }

    func stop(_ generation: Generation) async {
        await generation.group.triggerGracefulShutdown()
        for await _ in generation.ended {}
    }

    /// What a reload reads: the file's bytes (its SHA-256 is audited), the configuration they say, the Metrc keys.
    struct Read: Sendable {
        var configuration: DaemonConfiguration
        var bytes: Data
        var credentials: MetrcCredentials
    }

    static func read(_ file: String, loadCredentials: (DaemonConfiguration) -> MetrcCredentials) throws(ConfigError) -> Read {
        // Read once: the digest covers exactly the bytes applied.
        guard let bytes = FileManager.default.contents(atPath: file) else {
            let exists = FileManager.default.fileExists(atPath: file)
            throw ConfigError(file: file, key: nil, problem: exists ? "cannot be read (permissions?)" : "no such file")
        }
        guard let text = String(data: bytes, encoding: .utf8) else { throw ConfigError(file: file, key: nil, problem: "is not UTF-8 text") }
        let folder = URL(fileURLWithPath: file).standardizedFileURL.deletingLastPathComponent().path
        let configuration = try DaemonConfiguration.parse(text, file: file, relativeTo: folder)
        return Read(configuration: configuration, bytes: bytes, credentials: loadCredentials(configuration))
    }

    /// Why a reload keeps the running configuration: said in one error line naming the keys.
    struct Refusal: Error {
        let reason: String
        let keys: [String]
    }

    /// A file read and found applicable: what it says, and what changes.
    struct Accepted: Sendable {
        let read: Read
        let configuration: DaemonConfiguration
        let plan: ReloadPlan
    }

    /// Reads the file and compares it with the running configuration.
    func check(_ running: DaemonConfiguration, uploadsRunning: Bool) async throws(Refusal) -> Accepted {
        guard let file = running.file else { throw Refusal(reason: "outlawd runs without a configuration file", keys: []) }
        let read: Read
        do {
            let load = loadCredentials
            read = try await Blocking.run { try Self.read(file, loadCredentials: load) }
        } catch {
            throw Refusal(reason: "\(error)", keys: ((error as? ConfigError)?.key).map { [$0] } ?? [])
        }
        var new = read.configuration
        if "\(new.server.host):\(new.server.port)" == fileListen {
            (new.server.host, new.server.port) = (running.server.host, running.server.port)
        }
        let plan = DaemonConfiguration.reloadPlan(from: running, to: new, uploadsRunning: uploadsRunning)
        guard !plan.isRefused else {
            let keys = plan.needsRestart
            throw Refusal(reason: "\(keys.joined(separator: ", ")) \(keys.count == 1 ? "changes" : "change") only with a restart (systemctl restart outlawd)",
                          keys: keys)
        }
        return Accepted(read: read, configuration: new, plan: plan)
    }

    /// One reload, from `RELOADING=1` to `READY=1` whatever happens; returns the Metrc side running after it.
    func reload(_ generation: Generation?, in group: inout Group, _ sink: AsyncStream<Event>.Continuation) async -> Generation? {
        notifier.reloading()
        defer { notifier.ready() }
        let accepted: Accepted
        do {
            accepted = try await check(running.withLock { $0 }, uploadsRunning: generation != nil)
        } catch {
            logger.error("configuration not reloaded: \(error.reason); the running configuration stays",
                         metadata: MessageID.reloadRefused.metadata(["config_keys": "\(error.keys.joined(separator: ","))"]))
            return generation
        }
        let (read, new, plan) = (accepted.read, accepted.configuration, accepted.plan)
        let file = new.file ?? ""

        writer.setReviewRule(ReviewRule(eventTypes: Set(new.review.eventTypes), users: Set(new.review.users)))
        keyPolicy.set(KeyHealthPolicy(new.keys))
        backup.set(new.backup)
        retention?.set(new.retention)
        DaemonLogLevel.apply(new)
        generation?.side.uploader.setAlertAfterHours(new.metrc.alertAfterHours)
        let (next, uploads) = await replaceMetrcSide(generation, new: new, credentials: read.credentials, in: &group, sink)
        self.running.withLock { $0 = new }

        let digest = AuditWitness.hex(Secrets.sha256(read.bytes))
        let changed = plan.applied.isEmpty ? "none" : plan.applied.joined(separator: ",")
        let detail = "version=\(Daemon.version) config_sha256=\(digest) changed=\(changed)" + (uploads.map { " uploads=\($0)" } ?? "")
        do {
            let store = self.store
            try await Blocking.run { try store.audit(actor: "outlawd", action: .daemonReload, subject: file, detail: detail) }
        } catch {
            // The reload stands: batches keep flowing; the missing row is itself visible in the audit.
            logger.error("cannot write the daemon.reload audit row: \(error)", metadata: MessageID.reloadAuditFailed.metadata())
        }
        var metadata: Logger.Metadata = ["changed": "\(changed)", "config_sha256": "\(digest)"]
        if let uploads { metadata["uploads"] = "\(uploads)" }
        logger.notice("configuration reloaded", metadata: MessageID.reloaded.metadata(metadata))
        return next
    }

    /// Starts the Metrc side when it was missing and now can run, or replaces it when the keys changed. A key file
    /// that cannot be read now keeps the key read before. The second value says what happened to uploads, if anything.
    func replaceMetrcSide(_ generation: Generation?, new: DaemonConfiguration, credentials: MetrcCredentials,
                          in group: inout Group, _ sink: AsyncStream<Event>.Continuation) async -> (Generation?, String?)
    {
        // What still keeps uploads from running is said again (and shown by `outlawctl status`), or cleared.
        let effective = MetrcCredentials(
            vendorKey: credentials.vendorKey ?? generation?.side.vendorKey, defaultKey: credentials.defaultKey ?? generation?.side.defaultKey,
            vendorKeySource: credentials.vendorKeySource, defaultKeySource: credentials.defaultKeySource,
            vendorKeyLocation: credentials.vendorKeyLocation, defaultKeyLocation: credentials.defaultKeyLocation)
        let (store, logger) = (self.store, self.logger)
        _ = try? await Blocking.run { Daemon.announceUploadGaps(new, credentials: effective, store: store, logger: logger) }
        guard let generation else {
            guard let side = MetrcServices(configuration: new, credentials: credentials, store: store, keyPolicy: keyPolicy, logger: logger)
            else { return (nil, nil) }
            return (start(side, in: &group, sink), "started")
        }
        let vendorKey = effective.vendorKey ?? generation.side.vendorKey
        let defaultKey = effective.defaultKey
        guard vendorKey != generation.side.vendorKey || defaultKey != generation.side.defaultKey else { return (generation, nil) }
        // Never two uploaders at once: the old side finishes its pass and takes back what it had not sent.
        await stop(generation)
        guard let side = MetrcServices(configuration: new, credentials: effective, store: store, keyPolicy: keyPolicy, logger: logger) else {
            return (nil, "stopped")
        }
        return (start(side, in: &group, sink), "restarted")
    }
}
