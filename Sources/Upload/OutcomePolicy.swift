import Foundation
import Metrc
import OutlawStore

/// What to do after Metrc answered (or did not answer) one request: pure, tested without a network.
public enum OutcomePolicy {
    /// The decision for a whole request.
    public enum Decision: Sendable, Equatable {
        /// Every event gets its own result.
        case results([(Int64, EventResult)], outcome: AttemptOutcome)
        /// Send these halves again as separate requests (413, or a 400 whose rows cannot be trusted).
        case split(outcome: AttemptOutcome)
        /// The outcome is unknown (no answer, or a server fault): read Metrc back before anything is resent.
        case reconcile(outcome: AttemptOutcome, message: String)
        /// The signing key was refused: hold the events and mark the key.
        case keyRejected(status: Int)

        public static func == (a: Decision, b: Decision) -> Bool {
            switch (a, b) {
            case (.results(let x, let o1), .results(let y, let o2)):
                return o1 == o2 && x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
            case (.split(let o1), .split(let o2)): return o1 == o2
            case (.reconcile(let o1, let m1), .reconcile(let o2, let m2)): return o1 == o2 && m1 == m2
            case (.keyRejected(let s1), .keyRejected(let s2)): return s1 == s2
            default: return false
            }
        }
    }

    /// Decides from Metrc's response. `jitter` (0...1) and `now` are passed in so backoff is deterministic in tests.
    public static func decide(_ response: MetrcResponse, action: MetrcAction, events: [PendingEvent], now: Date,
                              backoff: Backoff, jitter: Double) -> Decision
    {
        let ids = events.map(\.id)
        func retryAll(_ message: String, after delay: TimeInterval? = nil, unknown: Bool) -> [(Int64, EventResult)] {
            events.map { e in
                let wait = delay ?? backoff.delay(afterAttempts: e.attempts + 1, jitter: jitter)
                return (e.id, .retry(at: now.addingTimeInterval(wait), message: message, unknownSince: unknown ? now : nil))
            }
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
                return (e.id, .retry(at: now, message: nil, unknownSince: nil))
            }
            return .results(results, outcome: .rejected)

        case .unauthorized(let status):
            return .keyRejected(status: status)

        case .tooLarge:
            if events.count > 1 { return .split(outcome: .tooLarge) }
            return .results([(ids[0], .failed(message: "Metrc: request too large (413) even for one object"))], outcome: .tooLarge)

        case .rateLimited(let retryAfter):
            return .results(retryAll("Metrc: rate limited (429)", after: retryAfter.map { max(1, $0) }, unknown: false),
                            outcome: .rateLimited)

        case .notFound(let message):
            // A write endpoint answering 404 is a wrong base URL or a Metrc fault: keep the events, retry later.
            return .results(retryAll("Metrc: 404 \(message)", unknown: false), outcome: .notFound)

        // Metrc may have applied the request before failing. Even a PUT is read back first, so that each event
        // reaches Metrc exactly once (Metrc's record of who did what stays clean); a POST must never be repeated.
        case .serverFault(let status, let message):
            return .reconcile(outcome: .serverFault, message: "Metrc: \(status) \(message)")

        case .transportFailure(let message):
            return .reconcile(outcome: .noAnswer, message: "Metrc unreachable: \(message)")
        }
    }
}
