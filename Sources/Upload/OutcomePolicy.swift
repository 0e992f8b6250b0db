import Foundation
import Metrc
import OutlawProtocol
import OutlawStore

/// What to do after Metrc answered (or did not answer) one request: pure, tested without a network.
public enum OutcomePolicy {
    /// The decision for a whole request.
    public enum Decision: Sendable, Equatable {
        /// Every event gets its own result.
        case results([(Int64, EventResult)], outcome: AttemptOutcome)
        /// Send these halves again as separate requests (413, or a 400 whose rows cannot be trusted).
        case split(outcome: AttemptOutcome)
        /// The outcome is unknown (no answer, or a server fault): each event is queued again, marked to be read back
        /// before anything is resent.
        case reconcile([(Int64, EventResult)], outcome: AttemptOutcome, message: String)
        /// The signing key was refused: hold the events and mark the key.
        case keyRejected(status: Int)

        public static func == (a: Decision, b: Decision) -> Bool {
            switch (a, b) {
            case (.results(let x, let o1), .results(let y, let o2)):
                return o1 == o2 && x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
            case (.split(let o1), .split(let o2)): return o1 == o2
            case (.reconcile(let x, let o1, let m1), .reconcile(let y, let o2, let m2)):
                return o1 == o2 && m1 == m2 && x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
            case (.keyRejected(let s1), .keyRejected(let s2)): return s1 == s2
            default: return false
            }
        }
    }

    /// Decides from Metrc's response to a request sent at `sentAt` (where a read-back starts looking). `jitter`
    /// (0...1) and `now` are passed in so backoff is deterministic in tests.
    public static func decide(_ response: MetrcResponse, action: MetrcAction, events: [PendingEvent], sentAt: Date, now: Date,
                              backoff: Backoff, jitter: Double) -> Decision
    {
        let ids = events.map(\.id)
        func retryAll(_ message: String, metrcSays wait: TimeInterval? = nil, unknownSince: Date? = nil) -> [(Int64, EventResult)] {
            retry(events, after: .left, message: message, unknownSince: unknownSince, metrcSays: wait, now: now, backoff: backoff, jitter: jitter)
        }
        switch response {
        case .accepted(let metrcIDs):
            let perEvent = metrcIDs.count == events.count ? metrcIDs.map { String($0) } : nil
            return .results(ids.enumerated().map { i, id in (id, .uploaded(metrcID: perEvent?[i])) }, outcome: .accepted)

        case .rejected(let rows):
            // Metrc applied nothing. Rows name the objects it refused; the rest are sent again at once.
            let trusted = !rows.isEmpty && rows.allSatisfy { ($0.row.map { $0 >= 0 && $0 < events.count }) ?? false }
            guard trusted else {
                if events.count > 1 { return .split(outcome: .rowsUnclear) }
                let message = rows.map(\.message).joined(separator: "; ")
                return .results([(ids[0], .failed(message: "Metrc: " + (message.isEmpty ? "rejected" : message)))], outcome: .rejected)
            }
            var messages: [Int: [String]] = [:]
            for row in rows { messages[row.row!, default: []].append(row.message) }
            let results: [(Int64, EventResult)] = events.enumerated().map { i, e in
                if let m = messages[i] { return (e.id, .failed(message: "Metrc: " + m.joined(separator: "; "))) }
                return requeue([e.id], now: now)[0]
            }
            return .results(results, outcome: .rejected)

        case .unauthorized(let status):
            return .keyRejected(status: status)

        case .tooLarge:
            if events.count > 1 { return .split(outcome: .tooLarge) }
            return .results([(ids[0], .failed(message: "Metrc: request too large (413) even for one object"))], outcome: .tooLarge)

        case .rateLimited(let retryAfter):
            return .results(retryAll("Metrc: rate limited (429)", metrcSays: retryAfter.map { max(1, $0) }), outcome: .rateLimited)

        case .notFound(let message):
            // A write endpoint answering 404 is a wrong base URL or a Metrc fault: keep the events, retry later.
            return .results(retryAll("Metrc: 404 \(message)"), outcome: .notFound)

        // Metrc may have applied the request before failing. Even a PUT is read back first, so that each event
        // reaches Metrc exactly once (Metrc's record of who did what stays clean); a POST must never be repeated.
        case .serverFault(let status, let message):
            let message = "Metrc: \(status) \(message)"
            return .reconcile(retryAll(message, unknownSince: sentAt), outcome: .serverFault, message: message)

        case .transportFailure(let message):
            let message = "Metrc unreachable: \(message)"
            return .reconcile(retryAll(message, unknownSince: sentAt), outcome: .noAnswer, message: message)
        }
    }
}

/// Retry times: every one the uploader sets is computed here, by one rule.
extension OutcomePolicy {
    /// Whether the request whose events go again left for Metrc. The rule for `attempts`: an attempt that left counts
    /// (Metrc may have seen it, so the next waits longer); one that never left does not. `PendingEvent.attempts`
    /// counts the attempts begun before the event was read, so a request that left adds one, and a request stopped
    /// before it left (or a read-back, which is not an attempt) adds none.
    public enum Attempt: Sendable {
        case left
        case neverLeft
    }

    /// When `event` goes again: the backoff after the attempts counted, or Metrc's own wait (`Retry-After`) if it gave one.
    public static func retryTime(_ event: PendingEvent, after attempt: Attempt, metrcSays wait: TimeInterval? = nil, now: Date,
                                 backoff: Backoff, jitter: Double) -> Date
    {
        let counted = event.attempts + (attempt == .left ? 1 : 0)
        return now.addingTimeInterval(wait ?? backoff.delay(afterAttempts: counted, jitter: jitter))
    }

    /// Every event queued again for its `retryTime`; `unknownSince` marks writes Metrc may have applied (read back first).
    public static func retry(_ events: [PendingEvent], after attempt: Attempt, message: String?, unknownSince: Date? = nil,
                             metrcSays wait: TimeInterval? = nil, now: Date, backoff: Backoff, jitter: Double) -> [(Int64, EventResult)]
    {
        events.map { e in
            (e.id, .retry(at: retryTime(e, after: attempt, metrcSays: wait, now: now, backoff: backoff, jitter: jitter),
                          message: message, unknownSince: unknownSince))
        }
    }

    /// Queued again at once, with nothing to read back: Metrc applied none of them (a split's events, the rows a
    /// refusal did not name) or they never left (a request taken back).
    public static func requeue(_ ids: [Int64], now: Date) -> [(Int64, EventResult)] {
        ids.map { ($0, .retry(at: now, message: nil, unknownSince: nil)) }
    }
}
