import Foundation

/// The daemon's Prometheus counters as proof that it looked: a test that checks something did *not* happen first
/// waits for a look that began after the change (never for a fixed time, which passes when the daemon had not looked).
extension DaemonProcess {
    /// Upload passes completed (`outlawd_upload_passes_total`).
    public static let uploadPasses = "outlawd_upload_passes_total"
    /// Key health looks completed (`outlawd_key_health_passes_total`).
    public static let keyHealthPasses = "outlawd_key_health_passes_total"

    /// One scrape of `/metrics` (the text format).
    public func scrape() async throws -> String {
        let port = try await metricsPort()
        return try await offload { try Self.get(port: port, path: "/metrics") }
    }

    /// The value of one series (`name` or `name{labels}`, exactly as served), or nil when the scrape has none.
    public func metric(_ series: String) async throws -> Double? {
        Self.value(series, in: try await scrape())
    }

    /// The value of one series in a scrape.
    public static func value(_ series: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Waits until the counter `series` has grown by `count` from `seen`, read now when nil. Read after a change, a
    /// growth of 2 proves a whole look began after it: look seen+1 may have begun before the change, but it ended
    /// after the read, and look seen+2 began after that. Returns the value reached.
    @discardableResult
    public func waitForLooks(_ series: String, after seen: Double? = nil, count: Int = 2,
                             timeout: Duration = .seconds(60)) async throws -> Double {
        let start: Double
        if let seen {
            start = seen
        } else {
            start = try await counter(series)
        }
        var last = start
        return try await eventually("\(series) to grow by \(count) from \(start)", timeout: timeout, every: .milliseconds(100),
                                    detail: { "last \(last)\n--- daemon log ---\n\(log.suffix(3000))" }) { () -> Double? in
            last = try await metric(series) ?? last
            return last >= start + Double(count) ? last : nil
        }
    }

    /// A counter the daemon serves (it makes every series at start, at 0).
    public func counter(_ series: String) async throws -> Double {
        // The endpoint may not listen yet just after a start: the counter is there once it does.
        try await eventually("\(series) in the daemon's /metrics", detail: { log.suffix(3000).description }) { () -> Double? in
            try? await metric(series)
        }
    }

    /// Waits for two upload passes that end after now (or after `seen`): the second began after any change made
    /// before the call, so what it did not send, it would not send.
    @discardableResult
    public func waitForUploadPasses(after seen: Double? = nil, count: Int = 2) async throws -> Double {
        try await waitForLooks(Self.uploadPasses, after: seen, count: count)
    }

    /// Waits for key health looks that end after now (or after `seen`); see `waitForLooks`.
    @discardableResult
    public func waitForKeyHealthPasses(after seen: Double? = nil, count: Int = 2) async throws -> Double {
        try await waitForLooks(Self.keyHealthPasses, after: seen, count: count)
    }

    /// A plain HTTP/1.1 GET on loopback; the body of a 200 answer.
    static func get(port: Int, path: String) throws -> String {
        let c = try LineClient(port: port, timeout: 10)
        try c.sendRaw(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8))
        var lines: [String] = []
        while let line = try c.blockingReadLine() { lines.append(line) }
        guard let status = lines.first, status.hasPrefix("HTTP/1.1 200") else {
            throw LineClient.Failure(description: "GET \(path) on port \(port): \(lines.first ?? "no answer")")
        }
        guard let blank = lines.firstIndex(where: { $0 == "\r" || $0.isEmpty }) else { return "" }
        return lines[(blank + 1)...].joined(separator: "\n")
    }
}
