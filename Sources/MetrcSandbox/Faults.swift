import Foundation

/// A fault to inject, as posted to `POST /_sandbox/faults`. Every fault may be limited to `count` occurrences,
/// to one `method` and/or `path` (exact, or a prefix ending in `*`), and to a `probability` drawn from the
/// seeded generator (so a run repeats). Control paths (`/_sandbox/...`) are never faulted.
public struct SandboxFault: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Wait `milliseconds`, then answer normally (adds up with other faults).
        case latency
        /// Answer `status` (default 500) with `{"Message": message}`, applying nothing. 400 is Metrc's
        /// "server fault as a 400 object"; 503 is "service unavailable".
        case error
        /// Never answer; the connection stays open until the client gives up (or the sandbox stops).
        case hang
        /// Apply the write, then answer `status` (default 500) or, with `drop: true`, close the connection
        /// without an answer. Only matches writes; a write rejected with 400 is answered normally.
        case applyThenFail
        /// `mode: "reset"` (default): every matching request's connection is reset (TCP RST) without an answer.
        /// `mode: "refuse"`: the listening socket closes, so connections are refused, for `durationMilliseconds`
        /// (required over HTTP, since the control API is down too) or until faults are cleared in-process.
        case outage
    }

    public enum OutageMode: String, Codable, Sendable {
        case reset
        case refuse
    }

    public var kind: Kind
    public var status: Int?
    public var message: String?
    public var milliseconds: Int?
    public var drop: Bool?
    public var mode: OutageMode?
    public var durationMilliseconds: Int?
    public var count: Int?
    public var method: String?
    public var path: String?
    public var probability: Double?

    public init(kind: Kind, status: Int? = nil, message: String? = nil, milliseconds: Int? = nil, drop: Bool? = nil,
                mode: OutageMode? = nil, durationMilliseconds: Int? = nil, count: Int? = nil, method: String? = nil,
                path: String? = nil, probability: Double? = nil) {
        self.kind = kind
        self.status = status
        self.message = message
        self.milliseconds = milliseconds
        self.drop = drop
        self.mode = mode
        self.durationMilliseconds = durationMilliseconds
        self.count = count
        self.method = method
        self.path = path
        self.probability = probability
    }

    public static func latency(milliseconds: Int, count: Int? = nil, method: String? = nil, path: String? = nil) -> SandboxFault {
        SandboxFault(kind: .latency, milliseconds: milliseconds, count: count, method: method, path: path)
    }

    public static func error(status: Int = 500, message: String? = nil, count: Int? = nil, method: String? = nil,
                             path: String? = nil, probability: Double? = nil) -> SandboxFault {
        SandboxFault(kind: .error, status: status, message: message, count: count, method: method, path: path,
                     probability: probability)
    }

    public static func hang(count: Int? = nil, method: String? = nil, path: String? = nil) -> SandboxFault {
        SandboxFault(kind: .hang, count: count, method: method, path: path)
    }

    public static func applyThenFail(status: Int = 500, drop: Bool = false, count: Int? = nil, method: String? = nil,
                                     path: String? = nil) -> SandboxFault {
        SandboxFault(kind: .applyThenFail, status: status, drop: drop, count: count, method: method, path: path)
    }

    public static func outage(mode: OutageMode = .reset, durationMilliseconds: Int? = nil, count: Int? = nil,
                              method: String? = nil, path: String? = nil) -> SandboxFault {
        SandboxFault(kind: .outage, mode: mode, durationMilliseconds: durationMilliseconds, count: count,
                     method: method, path: path)
    }

    /// Checks the fields that make sense for the kind.
    public func validate() throws(MetrcError) {
        if let count, count < 1 { throw .badRequest("count must be at least 1.") }
        if let probability, !(0...1).contains(probability) { throw .badRequest("probability must be between 0 and 1.") }
        switch kind {
        case .latency:
            guard let milliseconds, milliseconds >= 0 else { throw .badRequest("latency needs milliseconds >= 0.") }
        case .error, .applyThenFail:
            if let status, !(400...599).contains(status) { throw .badRequest("status must be 400...599.") }
        case .hang:
            break
        case .outage:
            if let durationMilliseconds, durationMilliseconds < 1 { throw .badRequest("durationMilliseconds must be positive.") }
        }
    }

    func matches(method requestMethod: String, path requestPath: String) -> Bool {
        if let method, method.uppercased() != requestMethod.uppercased() { return false }
        if let path {
            let pattern = normalizedPath(path)
            let actual = normalizedPath(requestPath)
            if pattern.hasSuffix("*") {
                if !actual.hasPrefix(String(pattern.dropLast())) { return false }
            } else if pattern != actual {
                return false
            }
        }
        return true
    }
}

/// What the faults say to do with one request.
public struct FaultPlan: Sendable, Equatable {
    public enum Terminal: Sendable, Equatable {
        /// Answer this status with `{"Message":...}` without processing.
        case respond(status: Int, message: String)
        case hang
        case reset
        /// Process the write; if it is applied, answer `status` or (nil) drop the connection.
        case applyThenFail(status: Int?)
    }

    public var latencyMilliseconds: Int = 0
    public var terminal: Terminal?

    public static let none = FaultPlan()
}

/// SplitMix64: small, seedable, good enough for deciding faults.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The active faults and the seeded generator. Pure: deciding a request's faults is a function of the
/// faults, the generator state and the request.
public struct FaultInjector: Sendable {
    public private(set) var faults: [SandboxFault] = []
    private var generator: SeededGenerator

    public init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    public mutating func add(_ fault: SandboxFault) { faults.append(fault) }
    public mutating func clear() { faults.removeAll() }

    /// The refuse-mode outage, if one is set.
    public var refusingOutage: SandboxFault? {
        faults.first { $0.kind == .outage && $0.mode == .refuse }
    }

    public mutating func removeRefusingOutages() {
        faults.removeAll { $0.kind == .outage && $0.mode == .refuse }
    }

    /// Decides the faults of one request and uses up their counts. Latency adds up; the first other matching
    /// fault decides the end.
    public mutating func plan(method: String, path: String, isWrite: Bool) -> FaultPlan {
        var plan = FaultPlan()
        var index = 0
        while index < faults.count {
            let fault = faults[index]
            guard fault.matches(method: method, path: path), fault.kind != .applyThenFail || isWrite,
                !(fault.kind == .outage && fault.mode == .refuse)
            else {
                index += 1
                continue
            }
            if let probability = fault.probability, Double.random(in: 0..<1, using: &generator) >= probability {
                index += 1
                continue
            }
            switch fault.kind {
            case .latency:
                plan.latencyMilliseconds += fault.milliseconds ?? 0
            case .error:
                let status = fault.status ?? 500
                plan.terminal = .respond(status: status, message: fault.message ?? FaultInjector.defaultMessage(status))
            case .hang:
                plan.terminal = .hang
            case .applyThenFail:
                plan.terminal = .applyThenFail(status: fault.drop == true ? nil : (fault.status ?? 500))
            case .outage:
                plan.terminal = .reset
            }
            if let count = fault.count {
                if count <= 1 {
                    faults.remove(at: index)
                } else {
                    faults[index].count = count - 1
                    index += 1
                }
            } else {
                index += 1
            }
            if plan.terminal != nil { break }
        }
        return plan
    }

    static func defaultMessage(_ status: Int) -> String {
        switch status {
        case 503: "The service is unavailable."
        default: "An error has occurred."
        }
    }
}

func normalizedPath(_ path: String) -> String {
    var lowered = path.lowercased()
    while lowered.count > 1, lowered.hasSuffix("/") { lowered.removeLast() }
    return lowered
}
