import Foundation

/// Sliding one-second windows and in-flight counts per facility and per vendor key. Pure: the caller passes
/// the time, so tests need no sleeping.
public struct RateLimiter: Sendable {
    public var limits: RateLimits
    private var facilityHits: [String: [Double]] = [:]
    private var vendorHits: [String: [Double]] = [:]
    private var facilityInFlight: [String: Int] = [:]
    private var vendorInFlight: [String: Int] = [:]

    public init(limits: RateLimits) { self.limits = limits }

    /// A GET admitted; give it back with `release` when its answer is sent.
    public struct Ticket: Sendable, Equatable {
        public let vendorKey: String
        public let facility: String?
    }

    public enum Decision: Sendable, Equatable {
        case admitted(Ticket)
        /// 429; `retryAfter` whole seconds (at least 1) until a slot frees up.
        case limited(retryAfter: Int, reason: String)
    }

    /// Admits one GET at time `now` (seconds) or refuses it; a refused GET counts against nothing.
    public mutating func admit(vendorKey: String, facility: String?, now: Double) -> Decision {
        prune(&vendorHits[vendorKey, default: []], now)
        let vendorWindow = vendorHits[vendorKey] ?? []
        if vendorWindow.count >= limits.getsPerSecondPerVendorKey {
            return .limited(retryAfter: retryAfter(vendorWindow, now), reason: "over \(limits.getsPerSecondPerVendorKey) GET/s for the vendor key")
        }
        if vendorInFlight[vendorKey, default: 0] >= limits.concurrentGetsPerVendorKey {
            return .limited(retryAfter: 1, reason: "over \(limits.concurrentGetsPerVendorKey) concurrent GETs for the vendor key")
        }
        if let facility {
            prune(&facilityHits[facility, default: []], now)
            let window = facilityHits[facility] ?? []
            if window.count >= limits.getsPerSecondPerFacility {
                return .limited(retryAfter: retryAfter(window, now), reason: "over \(limits.getsPerSecondPerFacility) GET/s for \(facility)")
            }
            if facilityInFlight[facility, default: 0] >= limits.concurrentGetsPerFacility {
                return .limited(retryAfter: 1, reason: "over \(limits.concurrentGetsPerFacility) concurrent GETs for \(facility)")
            }
            facilityHits[facility, default: []].append(now)
            facilityInFlight[facility, default: 0] += 1
        }
        vendorHits[vendorKey, default: []].append(now)
        vendorInFlight[vendorKey, default: 0] += 1
        return .admitted(Ticket(vendorKey: vendorKey, facility: facility))
    }

    public mutating func release(_ ticket: Ticket) {
        vendorInFlight[ticket.vendorKey] = max(0, vendorInFlight[ticket.vendorKey, default: 0] - 1)
        if let facility = ticket.facility {
            facilityInFlight[facility] = max(0, facilityInFlight[facility, default: 0] - 1)
        }
    }

    public func inFlight(facility: String) -> Int { facilityInFlight[facility, default: 0] }
    public func inFlight(vendorKey: String) -> Int { vendorInFlight[vendorKey, default: 0] }

    private func prune(_ hits: inout [Double], _ now: Double) {
        if let firstKept = hits.firstIndex(where: { $0 > now - 1.0 }) {
            if firstKept > 0 { hits.removeFirst(firstKept) }
        } else {
            hits.removeAll()
        }
    }

    private func retryAfter(_ window: [Double], _ now: Double) -> Int {
        guard let oldest = window.first else { return 1 }
        return max(1, Int((oldest + 1.0 - now).rounded(.up)))
    }
}
