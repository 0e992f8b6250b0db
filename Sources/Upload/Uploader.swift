import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore
import ServiceLifecycle
import Synchronization

/// Sends stored events to Metrc, each signed with its collector's key, and records every outcome: the upload
/// loop. Each pass is an `UploadPass`, whose actions this loop performs as child tasks; the queue is read by
/// `QueueReader`, each request lives in `RequestSender`, and the Default key and the long-wait alert are parts of
/// their own.
public final class Uploader: Service, Sendable {
    let store: Store
    let configuration: UploaderConfiguration
    let logger: Logger
    /// The wall time, for records and the heartbeat; waits take a `Clock` (`run(clock:)`).
    let now: @Sendable () -> Date
    let reconciler: Reconciler
    let defaultKey: DefaultKeyMonitor
    let longWait: LongWaitAlert
    let reader: QueueReader
    let sender: RequestSender
    public let wakeup = Wakeup()
    private let heartbeat = Mutex(Date())
    private let passes = Atomic<Int>(0)

    public init(store: Store, client: MetrcClient, defaultKey: String?, configuration: UploaderConfiguration, logger: Logger,
                now: @escaping @Sendable () -> Date = Date.init)
    {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.now = now
        let recorder = AttemptRecorder(store: store, logger: logger)
        let keyMonitor = DefaultKeyMonitor(key: defaultKey, store: store, client: client, logger: logger,
                                           recheckInterval: configuration.defaultKeyRecheck, clock: now)
        self.defaultKey = keyMonitor
        reconciler = Reconciler(store: store, client: client, logger: logger, backoff: configuration.backoff, clock: now)
        longWait = LongWaitAlert(store: store, logger: logger, afterHours: configuration.alertAfterHours)
        reader = QueueReader(store: store, configuration: configuration, defaultKey: keyMonitor, reconciler: reconciler, logger: logger, now: now)
        sender = RequestSender(
            client: client, recorder: recorder,
            manicureBases: ManicureBases(store: store, client: client, logger: logger, backoff: configuration.backoff, now: now),
            rejectedKey: RejectedKeyHandler(store: store, recorder: recorder, defaultKey: keyMonitor, logger: logger),
            backoff: configuration.backoff, logger: logger, now: now)
    }

    /// When the upload loop last went round or recorded an answer; the watchdog tells a hung uploader from a busy one by it.
    public var lastHeartbeat: Date { heartbeat.withLock { $0 } }

    /// Passes finished since start (`outlawd_upload_passes_total` counts them for operators).
    var passesFinished: Int { passes.load(ordering: .relaxed) }

    public func run() async throws {
        try await run(clock: ContinuousClock())
    }

    /// The loop on `clock`: a pass, then, if it found nothing to do, a wait for a wake or the poll interval and the
    /// settle time (`PassPacing`). Ends at once when the task is cancelled or the service group shuts down.
    public func run<C: Clock>(clock: C) async throws where C.Duration == Duration {
        await recover()
        await defaultKey.check()
        let pacing = PassPacing(pollInterval: configuration.pollInterval, settle: configuration.wakeSettle)
        await cancelWhenGracefulShutdown {
            do {
                while true {
                    let started = clock.now
                    if await self.passOnce() {
                        try Task.checkCancellation()
                    } else {
                        try await pacing.waitForNextPass(after: started, wakeup: self.wakeup, clock: clock)
                    }
                }
            } catch {
                // Cancelled: the daemon is stopping.
            }
        }
        logger.info("uploader stopped")
    }

    /// Asks the uploader to look at the queue now (new batch, key change).
    public func wake() { wakeup.signal() }

    /// The long-wait alert's age from now on (`alert_after_hours`, changed by a reload).
    public func setAlertAfterHours(_ hours: Double) { longWait.setAfterHours(hours) }

    /// Events left uploading by a stop have an unknown outcome: they are read back before any resend.
    func recover() async {
        let (store, now) = (self.store, self.now())
        do {
            let (inFlight, held) = try await Blocking.run { try store.recoverAfterRestart(now: now) }
            if inFlight > 0 {
                logger.warning("events were being uploaded when outlawd stopped; their outcome is checked before any resend",
                               metadata: MessageID.uploadsInterrupted.metadata(["events": "\(inFlight)"]))
            }
            if held > 0 { logger.info("held events are checked again", metadata: ["events": "\(held)"]) }
        } catch {
            logger.error("cannot recover the upload queue: \(error)", metadata: MessageID.uploadQueueNotRecovered.metadata())
        }
    }

    /// One pass with its heartbeat, count and long-wait check; whether it sent or decided anything.
    func passOnce() async -> Bool {
        beat()
        var worked = false
        do {
            worked = try await pass()
        } catch {
            logger.error("upload round failed: \(error)", metadata: MessageID.uploadRoundFailed.metadata())
        }
        UploadMetrics.passes.increment()
        passes.add(1, ordering: .relaxed)
        await longWait.check(now: now())
        return worked
    }

    func beat() { heartbeat.withLock { $0 = now() } }
}
