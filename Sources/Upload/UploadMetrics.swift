import Metrics
import OutlawProtocol
import OutlawStore

/// What Metrc's answers made of events, by type: uploaded, failed, requeued (to try again or read back) or held.
public enum UploadMetrics {
    static let results = ["uploaded", "failed", "requeued", "held"]
    static let events: [EventType: [String: Counter]] = Dictionary(uniqueKeysWithValues: EventType.allCases.filter(\.isUploaded).map { type in
        (type, Dictionary(uniqueKeysWithValues: results.map { result in
            (result, Counter(label: "outlawd_events_total", dimensions: [("type", type.rawValue), ("result", result)]))
        }))
    })

    /// Upload passes completed (whether or not they sent anything): proof for a test or an operator that the
    /// uploader has looked at the queue since a change, before checking that something was not sent.
    static let passes = Counter(label: "outlawd_upload_passes_total")

    /// Makes every series now, at zero, so Prometheus sees a counter's first increase.
    public static func register() {
        _ = events
        _ = passes
    }

    /// Counts one request's decision; a request's events share one type (one Metrc action).
    static func count(_ decision: OutcomePolicy.Decision, request: PlannedRequest) {
        guard let type = request.events.first?.type, let counters = events[type] else { return }
        switch decision {
        case .results(let results, _):
            var uploaded = 0, failed = 0, requeued = 0, held = 0
            for (_, result) in results {
                switch result {
                case .uploaded: uploaded += 1
                case .failed: failed += 1
                case .retry: requeued += 1
                case .held: held += 1
                }
            }
            for (name, n) in [("uploaded", uploaded), ("failed", failed), ("requeued", requeued), ("held", held)] where n > 0 {
                counters[name]?.increment(by: n)
            }
        case .split:
            break  // the halves are counted as they are answered
        case .reconcile:
            counters["requeued"]?.increment(by: request.events.count)
        case .keyRejected:
            counters["held"]?.increment(by: request.events.count)
        }
    }
}
