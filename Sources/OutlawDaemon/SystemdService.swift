import DeviceServer
import Foundation
import Logging
import NIOCore
import OutlawProtocol
import OutlawStore
import Reference
import ServiceLifecycle
import Systemd
import Upload

/// Tells systemd how the daemon is doing: READY=1 once listening, STATUS= with live figures, the watchdog
/// only while the event loop and the uploader really make progress, and STOPPING=1 on the way out.
final class SystemdService: Service, Sendable {
    let server: DeviceServer
    let services: DeviceServices
    let store: Store
    /// The uploader running now, if any: a reload may start or replace it.
    let currentUploader: @Sendable () -> Uploader?
    var uploader: Uploader? { currentUploader() }
    /// Logs the audit chain's head once a day (the start's head is logged before the services run).
    let witness: AuditWitness
    let eventLoop: any EventLoop
    let logger: Logger
    let notifier = SystemdNotifier()
    /// How long the uploader may go without a round or an answer before it counts as hung.
    let maxUploaderStall: TimeInterval
    let onReady: @Sendable (Int) -> Void

    init(server: DeviceServer, services: DeviceServices, store: Store, uploader: @escaping @Sendable () -> Uploader?, witness: AuditWitness,
         eventLoop: any EventLoop, logger: Logger, maxUploaderStall: TimeInterval, onReady: @escaping @Sendable (Int) -> Void)
    {
        self.onReady = onReady
        self.server = server
        self.services = services
        self.store = store
        currentUploader = uploader
        self.witness = witness
        self.eventLoop = eventLoop
        self.logger = logger
        self.maxUploaderStall = maxUploaderStall
    }

    /// How often STATUS= and the store's status row are written.
    static let statusInterval: Duration = .seconds(5)

    func run() async throws {
        await run(clock: ContinuousClock())
    }

    /// The service on `clock`: the status and watchdog loops wait on it, and end at once on graceful shutdown.
    func run<C: Clock>(clock: C) async where C.Duration == Duration {
        var port = 0
        for await bound in server.listeningPorts {
            port = bound
            break
        }
        // The first report before READY=1 and onReady: `outlawctl status` run as soon as the daemon is up finds it running.
        // Its reads take milliseconds on a long queue: on the store's pool, not on one of the two threads devices use.
        let status = (try? await Blocking.run { self.report() }) ?? ""
        _ = notifier.ready(status: status)
        onReady(port)
        logger.info("ready", metadata: ["status": "\(status)"])
        let watchdog = SystemdWatchdog.fromEnvironment()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if let watchdog {
                    group.addTask { await watchdog.run(clock: clock, isAlive: { await self.isAlive() }) }
                }
                group.addTask { await self.witness.run() }
                group.addTask {
                    await clock.every(Self.statusInterval, immediately: false) {
                        _ = try? await Blocking.run { self.report() }
                    }
                }
                await group.waitForAll()
            }
        }
        _ = notifier.stopping(status: "stopping: finishing answers owed to devices")
        _ = try? await Blocking.run { try self.store.clearDaemonStatus() }
    }

    /// STATUS= for systemctl, and the same facts in the store for `outlawctl status`; returns the status line.
    @discardableResult
    func report() -> String {
        let status = statusText()
        _ = notifier.status(status)
        try? store.recordDaemonStatus(DaemonStatus(pid: getpid(), updatedAt: Date(), connectedDevices: services.connectedDeviceCount,
                                                    version: OutlawBuild.version))
        return status
    }

    /// The event loop answers a round trip, and the uploader went round recently.
    func isAlive() async -> Bool {
        do {
            try await eventLoop.submit {}.get()
        } catch {
            return false
        }
        if let uploader, Date().timeIntervalSince(uploader.lastHeartbeat) > maxUploaderStall {
            logger.critical("the uploader has made no progress for \(Int(maxUploaderStall)) s; withholding the watchdog ping",
                            metadata: MessageID.uploaderStalled.metadata())
            return false
        }
        return true
    }

    /// One line for `systemctl status`: devices, what waits, how old, who is held.
    func statusText() -> String {
        var parts = ["\(services.connectedDeviceCount) devices connected"]
        if let stats = try? store.queueStats(countingFinished: false) {
            var waiting = "\(stats.queued + stats.uploading) events waiting"
            if let oldest = stats.oldestWaitingReceivedAt, stats.waiting > 0 {
                waiting += " (oldest \(Self.age(Date().timeIntervalSince(oldest))))"
            }
            parts.append(waiting)
            if stats.held > 0 { parts.append("\(stats.held) held (\(stats.heldUsers.joined(separator: ", ")))") }
            if stats.review > 0 { parts.append("\(stats.review) in review") }
            if stats.failed > 0 { parts.append("\(stats.failed) failed") }
        }
        if (try? store.uploadsPaused()) == true { parts.append("uploads paused") }
        if uploader == nil { parts.append("uploads off: no Metrc vendor key") }
        if let problem = try? store.setting(ReferenceSync.problemSetting) { parts.append(problem) }
        return parts.joined(separator: "; ")
    }

    static func age(_ seconds: TimeInterval) -> String {
        if seconds < 120 { return "\(Int(seconds)) s" }
        if seconds < 7200 { return "\(Int(seconds / 60)) min" }
        if seconds < 172_800 { return "\(Int(seconds / 3600)) h" }
        return "\(Int(seconds / 86_400)) days"
    }
}
