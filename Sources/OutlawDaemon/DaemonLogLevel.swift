import Logging
import OutlawConfig
import Synchronization

/// The daemon's log level, which a reload may change: handlers wrapped by `handler(_:)` read it at every entry.
public enum DaemonLogLevel {
    private static let current = Atomic<Int>(index(.info))
    /// `OUTLAWD_DEBUG=1` when the daemon started: debug whatever the file says (the environment cannot change later).
    private static let debugFromEnvironment = Atomic<Bool>(false)

    /// The level every wrapped handler logs at now.
    public static var level: Logger.Level { Logger.Level.allCases[current.load(ordering: .relaxed)] }

    /// At start: the environment's choice, until the configuration is read.
    public static func start(debug: Bool) {
        debugFromEnvironment.store(debug, ordering: .relaxed)
        current.store(index(debug ? .debug : .info), ordering: .relaxed)
    }

    /// `[log] level`, or info; debug at least with `OUTLAWD_DEBUG=1`.
    public static func apply(_ configuration: DaemonConfiguration) {
        current.store(index(level(for: configuration)), ordering: .relaxed)
    }

    static func level(for configuration: DaemonConfiguration) -> Logger.Level {
        let configured = configuration.log.level.flatMap(Logger.Level.init(rawValue:)) ?? .info
        return debugFromEnvironment.load(ordering: .relaxed) ? min(configured, .debug) : configured
    }

    /// `base`, logging at the daemon's level unless a logger sets one of its own.
    public static func handler(_ base: any LogHandler) -> any LogHandler { LevelFollowingHandler(base: base) }

    private static func index(_ level: Logger.Level) -> Int { Logger.Level.allCases.firstIndex(of: level) ?? 2 }
}

/// Forwards to another handler; its level is the daemon's (`DaemonLogLevel`) until someone sets it.
struct LevelFollowingHandler: LogHandler {
    var base: any LogHandler
    private var ownLevel: Logger.Level?

    init(base: any LogHandler) { self.base = base }

    var logLevel: Logger.Level {
        get { ownLevel ?? DaemonLogLevel.level }
        set { ownLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) { base.log(event: event) }
}
