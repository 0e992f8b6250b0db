import Metrics
import OutlawProtocol
import OutlawStore

/// The device server's metrics. Handles are made once (a registry lookup under a lock each time would be the
/// cost), so a batch's answer costs a few atomic adds and one histogram record.
public enum DeviceMetrics {
    static let nackCodes: [NackCode] = [.badBatch, .badEvents, .unknownUser, .inactiveUser, .unknownLicense, .tooManyEvents,
                                        .idConflict, .unavailable, .loginRequired]
    static let batches: [String: Counter] = Dictionary(uniqueKeysWithValues: (["stored", "duplicate"] + nackCodes.map(\.rawValue)).map {
        ($0, Counter(label: "outlawd_batches_total", dimensions: [("result", $0)]))
    })
    static let eventsStored: [EventType: Counter] = Dictionary(uniqueKeysWithValues: EventType.allCases.map {
        ($0, Counter(label: "outlawd_events_total", dimensions: [("type", $0.rawValue), ("result", "stored")]))
    })
    static let loginResults = ["ok", LoginRefusal.badCredentials.rawValue, LoginRefusal.inactiveUser.rawValue, LoginRefusal.locked.rawValue,
                               "unavailable"]
    static let logins: [String: Counter] = Dictionary(uniqueKeysWithValues: loginResults.map {
        ($0, Counter(label: "outlawd_logins_total", dimensions: [("result", $0)]))
    })
    static let ackDuration = Timer(label: "outlawd_ack_duration_seconds")

    /// Makes every series now, at zero, so Prometheus sees a counter's first increase.
    public static func register() {
        _ = (batches, eventsStored, logins, ackDuration)
    }

    static func batch(_ result: String) {
        (batches[result] ?? Counter(label: "outlawd_batches_total", dimensions: [("result", result)])).increment()
    }

    /// The store's answer to a batch: its result, its events by type when stored, and the time since it was read.
    static func answered(_ outcome: BatchOutcome, events: [ValidatedEvent], since received: ContinuousClock.Instant) {
        ackDuration.record(duration: received.duration(to: .now))
        switch outcome {
        case .stored:
            batch("stored")
            // Runs of one type, not a lookup per event: a batch is mostly one type.
            var current: EventType?
            var run = 0
            for event in events {
                if event.type == current {
                    run += 1
                } else {
                    if let current { eventsStored[current]?.increment(by: run) }
                    current = event.type
                    run = 1
                }
            }
            if let current { eventsStored[current]?.increment(by: run) }
        case .duplicate:
            batch("duplicate")
        case .rejected(let rejection):
            batch(rejection.code.rawValue)
        }
    }

    /// A login's result; `unavailable` when the store could not check the PIN.
    static func login(_ outcome: LoginOutcome) {
        switch outcome {
        case .ok: logins["ok"]?.increment()
        case .badCredentials: logins[LoginRefusal.badCredentials.rawValue]?.increment()
        case .inactiveUser: logins[LoginRefusal.inactiveUser.rawValue]?.increment()
        case .locked: logins[LoginRefusal.locked.rawValue]?.increment()
        }
    }

    static func loginUnavailable() { logins["unavailable"]?.increment() }
}
