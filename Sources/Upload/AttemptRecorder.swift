import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore

/// Records each upload attempt around its Metrc request (committed before the request leaves, finished with
/// every event's result) and writes one journal line per request, never one per event. Its store calls block:
/// callers run them on a thread of their own (`Blocking.run`).
struct AttemptRecorder: Sendable {
    let store: Store
    let logger: Logger

    /// Which key signs a request and why, as the attempt records it; nil for a held plan (nothing is sent).
    static func signing(of request: PlannedRequest) -> (key: String, signing: AttemptSigning)? {
        switch request.signing {
        case .personal(let key):
            return (key, AttemptSigning(keyKind: .personal, keyUser: request.keyUser, reason: "collector's own key"))
        case .defaultKey(let key, let reason):
            return (key, AttemptSigning(keyKind: .default, keyUser: nil, reason: reason))
        case .hold:
            return nil
        }
    }

    func begin(_ request: PlannedRequest, signing: AttemptSigning, now: Date) throws -> Int64 {
        try store.beginAttempt(eventIDs: request.events.map(\.id), license: request.license, action: request.action,
                               signing: signing, now: now)
    }

    func finish(_ attemptID: Int64, outcome: AttemptOutcome, response: MetrcResponse, message: String? = nil,
                results: [(Int64, EventResult)], keyAcceptedFor userID: Int64? = nil, now: Date) throws
    {
        let ids: [Int64]
        if case .accepted(let metrcIDs) = response { ids = metrcIDs } else { ids = [] }
        try store.finishAttempt(attemptID, outcome: outcome, httpStatus: response.httpStatus, message: message ?? response.summary,
                                metrcIDs: ids, results: results, keyAcceptedFor: userID, now: now)
    }

    /// Finishes an attempt that never left as `not sent`, its events queued again with nothing to read back.
    func takeBack(_ attemptID: Int64, events: [Int64], now: Date) throws {
        try store.finishAttempt(attemptID, outcome: .notSent, httpStatus: nil, message: "not sent: the upload pass ended first",
                                metrcIDs: [], results: OutcomePolicy.requeue(events, now: now), now: now)
    }

    /// The journal fields every line about one request carries.
    static func metadata(_ request: PlannedRequest, signing: AttemptSigning, response: MetrcResponse, attemptID: Int64) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "metrc_action": "\(request.action.rawValue)", "metrc_status": "\(response.statusText)",
            "key_kind": "\(signing.keyKind.rawValue)", "events": "\(request.events.count)", "facility": "\(request.license)",
            "attempt": "\(attemptID)",
        ]
        if let user = request.keyUser { metadata["outlaw_user"] = "\(user)" }
        return metadata
    }

    /// One line for a request whose events each got a result.
    func logResults(_ outcome: AttemptOutcome, results: [(Int64, EventResult)], metadata: Logger.Metadata) {
        var uploaded = 0, failed = 0, retried = 0
        for (_, result) in results {
            switch result {
            case .uploaded: uploaded += 1
            case .failed: failed += 1
            case .retry: retried += 1
            case .held: break
            }
        }
        let summary = metadata.merging(["uploaded": "\(uploaded)", "failed": "\(failed)", "requeued": "\(retried)"]) { a, _ in a }
        switch outcome {
        case .accepted: logger.info("Metrc accepted \(uploaded) events", metadata: summary)
        case .rejected: logger.warning("Metrc rejected \(failed) of \(results.count) events", metadata: MessageID.metrcRejectedEvents.metadata(summary))
        default: logger.warning("Metrc request failed (\(outcome.rawValue)); will retry", metadata: MessageID.metrcRequestFailed.metadata(summary))
        }
    }
}
