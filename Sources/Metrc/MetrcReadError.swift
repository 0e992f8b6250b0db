/// A read that did not give its data: Metrc answered non-2xx (`status`), answered something unreadable
/// (`status` 2xx), or did not answer at all (`status` nil: timeout, refused, reset).
public struct MetrcReadError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: Int?
    public let message: String
    /// `Retry-After` seconds of a 429, when given.
    public let retryAfter: Double?

    public init(status: Int?, message: String, retryAfter: Double? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    /// No HTTP answer at all.
    public var isTransportFailure: Bool { status == nil }

    public var description: String {
        if let status { return "Metrc read failed: HTTP \(status): \(message)" }
        return "Metrc read failed: \(message)"
    }
}
