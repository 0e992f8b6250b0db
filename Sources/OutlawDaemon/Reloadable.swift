import Synchronization

/// A setting a reload may replace: those who use it read it each time rather than keep a copy from the start.
final class Reloadable<Value: Sendable>: Sendable {
    private let box: Mutex<Value>

    init(_ value: Value) { box = Mutex(value) }

    var value: Value { box.withLock { $0 } }

    func set(_ value: Value) { box.withLock { $0 = value } }
}
