import Foundation

/// Knobs of the sandbox. The defaults are Metrc's documented numbers.
public struct SandboxConfiguration: Sendable {
    /// Most objects one write may carry; more is a 413.
    public var objectLimit: Int
    /// Largest request body in bytes; more is a 413.
    public var maxBodyBytes: Int
    public var rateLimits: RateLimits
    /// Whether a 429 carries `Retry-After` (Metrc's may or may not).
    public var sendRetryAfter: Bool
    /// Seed of the fault randomness (`probability` of a fault), so runs repeat.
    public var faultSeed: UInt64
    /// Days after today (UTC) a write date may be before it counts as "in the future".
    public var futureToleranceDays: Int
    /// Widest `lastModifiedStart`/`lastModifiedEnd` window a list accepts, in seconds; wider, or open at one end,
    /// is a 400 (so a client's window splitting can be tested). `nil` (the default): no limit.
    public var maxModifiedWindow: TimeInterval?
    /// The sandbox's clock: `LastModified` stamps, key expiry, rate-limit windows. Tests inject their own.
    public var now: @Sendable () -> Date

    public init(objectLimit: Int = 100, maxBodyBytes: Int = 8 * 1024 * 1024, rateLimits: RateLimits = .init(),
                sendRetryAfter: Bool = true, faultSeed: UInt64 = 1, futureToleranceDays: Int = 1,
                maxModifiedWindow: TimeInterval? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        self.objectLimit = objectLimit
        self.maxBodyBytes = maxBodyBytes
        self.rateLimits = rateLimits
        self.sendRetryAfter = sendRetryAfter
        self.faultSeed = faultSeed
        self.futureToleranceDays = futureToleranceDays
        self.maxModifiedWindow = maxModifiedWindow
        self.now = now
    }
}

/// Metrc's GET limits (rate-limiting notice, phase 3). Writes are not limited.
public struct RateLimits: Sendable, Equatable {
    public var getsPerSecondPerFacility: Int
    public var getsPerSecondPerVendorKey: Int
    public var concurrentGetsPerFacility: Int
    public var concurrentGetsPerVendorKey: Int

    public init(getsPerSecondPerFacility: Int = 50, getsPerSecondPerVendorKey: Int = 150,
                concurrentGetsPerFacility: Int = 10, concurrentGetsPerVendorKey: Int = 30) {
        self.getsPerSecondPerFacility = getsPerSecondPerFacility
        self.getsPerSecondPerVendorKey = getsPerSecondPerVendorKey
        self.concurrentGetsPerFacility = concurrentGetsPerFacility
        self.concurrentGetsPerVendorKey = concurrentGetsPerVendorKey
    }

    /// No limits at all.
    public static let unlimited = RateLimits(getsPerSecondPerFacility: .max, getsPerSecondPerVendorKey: .max,
                                             concurrentGetsPerFacility: .max, concurrentGetsPerVendorKey: .max)
}
