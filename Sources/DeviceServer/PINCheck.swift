import Foundation
import Logging
import OutlawProtocol
import OutlawStore
import Synchronization

/// One PIN check as every way in makes it (a handheld's `login`, the web console's sign-in): the store's lock per
/// name (five wrong PINs within 15 minutes lock it, whoever asks), a `FailureThrottle` per source (a device, a remote
/// address) so one source cannot guess fast, the login counters, and the same journal lines.
public final class PINCheck<Source: Hashable & Sendable>: Sendable {
    public typealias Throttle = FailureThrottle<Source, ContinuousClock.Instant>
    let store: Store
    let throttle: Mutex<Throttle>

    public init(store: Store, throttle: Throttle = Throttle()) {
        self.store = store
        self.throttle = Mutex(throttle)
    }

    /// Checks `request`'s PIN; `wait` sleeps the throttle's delay (a device's wait also ends when its connection
    /// closes). Throws when the store cannot check PINs now. `metadata` names the source in the journal lines.
    public func check(_ request: LoginRequest, source: Source, metadata: Logger.Metadata, logger: Logger,
                      wait: @escaping @Sendable (Duration) async -> Void) async throws -> LoginAttempt {
        let attempt: LoginAttempt
        let checked = Atomic<Bool>(false)
        do {
            attempt = try await store.login(request, beforeCheck: { [self] in
                checked.store(true, ordering: .relaxed)
                let delay = throttle.withLock { $0.admit(source, now: .now) }
                await wait(delay)
            })
        } catch {
            if checked.load(ordering: .relaxed) { ended(source, .neither) }
            DeviceMetrics.loginUnavailable()
            throw error
        }
        DeviceMetrics.login(attempt.outcome)
        if checked.load(ordering: .relaxed) {
            switch attempt.outcome {
            case .ok, .inactiveUser: ended(source, .success)
            case .badCredentials: ended(source, .failure)
            case .locked: ended(source, .neither)
            }
        }
        var metadata = metadata
        metadata["outlaw_user"] = "\(Names.shown(request.name))"
        if attempt.lockedNow {
            logger.notice("user name locked after \(Store.maxPINFailures) wrong PINs within 15 minutes", metadata: MessageID.userLocked.metadata(metadata))
        }
        switch attempt.outcome {
        case .ok: break
        case .badCredentials:
            logger.notice("login refused: wrong PIN or unknown user", metadata: MessageID.loginWrongPIN.metadata(metadata))
        case .inactiveUser:
            logger.notice("login refused: the user is disabled", metadata: MessageID.loginUserDisabled.metadata(metadata))
        case .locked:
            logger.notice("login refused: the user name is locked", metadata: MessageID.loginUserLocked.metadata(metadata))
        }
        return attempt
    }

    /// The failures counted for `source` now (for tests and the console's answers).
    public func failures(of source: Source) -> Int {
        throttle.withLock { $0.failures(of: source, now: .now) }
    }

    private func ended(_ source: Source, _ result: Throttle.Result) {
        throttle.withLock { $0.ended(source, result, now: .now) }
    }
}
