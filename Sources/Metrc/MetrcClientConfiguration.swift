/// Where Metrc is and how the client talks to it.
public struct MetrcClientConfiguration: Sendable {
    /// e.g. `https://api-ca.metrc.com` or the sandbox's `http://127.0.0.1:8090` (a trailing slash is fine).
    public var baseURL: String
    /// The software's vendor API key: the Basic user name of every request. Never logged.
    public var vendorKey: String
    /// Seconds one request may take, from sending to the whole answer; past it: `.transportFailure`.
    public var requestTimeout: Double
    /// Metrc's GET limits: every read waits for its turn in them, and a 429 pauses that facility's reads.
    public var readLimits: ReadLimits
    /// Times a GET answered 429 is sent again, after the pause Metrc asked for, before the 429 is returned.
    public var rateLimitedRetries: Int

    public init(baseURL: String, vendorKey: String, requestTimeout: Double = 60, readLimits: ReadLimits = ReadLimits(),
                rateLimitedRetries: Int = 4) {
        self.rateLimitedRetries = max(0, rateLimitedRetries)
        self.baseURL = baseURL
        self.vendorKey = vendorKey
        self.requestTimeout = requestTimeout
        self.readLimits = readLimits
    }
}
