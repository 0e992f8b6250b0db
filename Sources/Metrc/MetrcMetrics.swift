import Metrics
import NIOHTTP1
import OutlawProtocol

/// Metrics of every Metrc request, writes and reads alike: how many by action and status class, and how long.
public enum MetrcMetrics {
    /// The writes by name, then the reads by purpose: `check_key` (GET /facilities/v2/), `reference` (the lists the
    /// reference sync reads) and `read_back` (everything else: adjustment and waste history, one plant or package).
    public static let actions = MetrcAction.allCases.map(\.rawValue) + ["check_key", "reference", "read_back"]
    public static let statusClasses = ["2xx", "3xx", "4xx", "5xx", "error"]

    static let requests: [String: [String: Counter]] = Dictionary(uniqueKeysWithValues: actions.map { action in
        (action, Dictionary(uniqueKeysWithValues: statusClasses.map { status in
            (status, Counter(label: "outlawd_metrc_requests_total", dimensions: [("action", action), ("status_class", status)]))
        }))
    })
    static let durations: [String: Timer] = Dictionary(uniqueKeysWithValues: actions.map {
        ($0, Timer(label: "outlawd_metrc_request_duration_seconds", dimensions: [("action", $0)]))
    })

    /// Makes every series now, at zero, so Prometheus sees a counter's first increase.
    public static func register() {
        _ = (requests, durations)
    }

    /// The action label of a request. A path may hold a tag (`/plants/v2/TAG`), so it is never a label itself.
    static func action(method: HTTPMethod, path: String) -> String {
        if method != .GET {
            return MetrcAction.allCases.first { $0.path == path && $0.method == method.rawValue }?.rawValue ?? "read_back"
        }
        if path == "/facilities/v2/" { return "check_key" }
        for suffix in ["/active", "/vegetative", "/flowering", "/inactive", "/reasons", "/methods/all"] where path.hasSuffix(suffix) {
            return "reference"
        }
        return "read_back"
    }

    /// `2xx` … `5xx` for an answer, `error` for none.
    static func statusClass(_ status: Int?) -> String {
        guard let status else { return "error" }
        switch status {
        case 200..<300: return "2xx"
        case 300..<400: return "3xx"
        case 400..<500: return "4xx"
        case 500..<600: return "5xx"
        default: return "error"
        }
    }

    static func record(method: HTTPMethod, path: String, result: MetrcClient.Exchange, elapsed: Duration) {
        var status: Int?
        if case .answer(let code, _, _) = result { status = code }
        let action = action(method: method, path: path)
        requests[action]?[statusClass(status)]?.increment()
        durations[action]?.record(duration: elapsed)
    }
}
