import Synchronization

/// Bounds the connections that have not said hello yet, per remote address and in all, so idle or slow sockets
/// from one place cannot fill `max_connections` and keep real handhelds out.
final class PreAuthLimits: Sendable {
    private struct State {
        var byAddress: [String: Int] = [:]
        var total = 0
    }

    let perAddress: Int
    let total: Int
    private let state = Mutex(State())

    init(perAddress: Int, total: Int) {
        self.perAddress = perAddress
        self.total = total
    }

    /// A place for a new connection from `address`, or nil when its address or the daemon has none left.
    func admit(_ address: String) -> PreAuthSlot? {
        let admitted = state.withLock { s -> Bool in
            guard s.total < total, s.byAddress[address, default: 0] < perAddress else { return false }
            s.total += 1
            s.byAddress[address, default: 0] += 1
            return true
        }
        return admitted ? PreAuthSlot(limits: self, address: address) : nil
    }

    /// Connections from `address` that have not said hello.
    func count(_ address: String) -> Int { state.withLock { $0.byAddress[address] ?? 0 } }

    fileprivate func give(back address: String) {
        state.withLock { s in
            s.total -= 1
            let n = (s.byAddress[address] ?? 1) - 1
            s.byAddress[address] = n > 0 ? n : nil
        }
    }
}

/// One connection's place before hello; given back once, at hello or when the connection ends.
final class PreAuthSlot: Sendable {
    private let limits: PreAuthLimits?
    private let address: String
    private let held = Atomic<Bool>(true)

    fileprivate init(limits: PreAuthLimits, address: String) {
        self.limits = limits
        self.address = address
    }

    func release() {
        if held.exchange(false, ordering: .acquiringAndReleasing) { limits?.give(back: address) }
    }
}
