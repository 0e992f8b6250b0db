import Logging
import Synchronization

/// A log handler keeping what was logged, for tests that count lines by level and text.
public final class RecordedLog: Sendable {
    private let lines = Mutex<[(level: Logger.Level, message: String)]>([])

    public init() {}

    /// A handler writing here, for `Logger(label:factory:)`.
    public var handler: any LogHandler { Handler(sink: self) }

    /// A logger writing here.
    public func logger(_ label: String = "test") -> Logger { Logger(label: label) { _ in Handler(sink: self) } }

    /// Every message so far, in order.
    public var messages: [String] { lines.withLock { $0.map(\.message) } }

    public func notices(_ text: String) -> Int { count(.notice, text) }
    public func errors(_ text: String) -> Int { count(.error, text) }

    public func count(_ level: Logger.Level, _ text: String) -> Int {
        lines.withLock { $0.filter { $0.level == level && $0.message.contains(text) }.count }
    }

    struct Handler: LogHandler {
        let sink: RecordedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            sink.lines.withLock { $0.append((event.level, "\(event.message)")) }
        }
    }
}
