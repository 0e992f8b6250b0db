import Foundation
import OutlawProtocol

/// Everything `outlawd.toml` sets, with the defaults the daemon runs with when a key is absent.
public struct DaemonConfiguration: Sendable, Equatable {
    public struct Server: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 7420
        public var maxLineBytes = 1_048_576
        public var maxBatchEvents = 5000
        public var window = 16
        public var idleTimeoutSeconds = 300.0
        public var helloTimeoutSeconds = 10.0
        public var maxConnections = 1024
        /// Lets `set_key` run on a connection without TLS (operator's explicit choice).
        public var allowKeysWithoutTLS = false
        /// PEM certificate (chain) and private key: with both, devices connect over TLS.
        public var tlsCertificateFile: String?
        /// The TLS private key; the systemd credential `outlawd-tls-key` wins when the daemon has one.
        public var tlsKeyFile: String?
        /// Devices may connect without TLS (tokens and PINs in clear): only by the operator's explicit choice.
        /// Loopback listeners (dev mode, tests) need no such choice.
        public var allowPlaintext = false
        /// Every batch carries the ticket of a login of its user on its device (`PROTOCOL.md`).
        public var requireLoginTicket = true
        /// How long a login ticket covers collected events.
        public var loginTicketHours = 168.0
        /// Connections that have not said hello yet, from one remote address and in all.
        public var maxUnauthenticatedPerAddress = 16
        public var maxUnauthenticated: Int?

        /// A quarter of `maxConnections` unless set: the rest stays for devices that have said hello.
        public var unauthenticatedLimit: Int { maxUnauthenticated ?? max(1, maxConnections / 4) }
    }

    public struct StoreSettings: Sendable, Equatable {
        public var path = "/var/lib/outlawd/outlawd.sqlite"
        /// Below this much free disk, batches get `nack unavailable` instead of failing later.
        public var minFreeMegabytes = 64
        /// The store key sealing personal Metrc keys (32 bytes, hex or base64); default
        /// `$CREDENTIALS_DIRECTORY/outlawd-store-key` when that exists.
        public var keyFile: String?
        /// PBKDF2-SHA256 rounds for PINs set from now on. PINs are short, so the lockout is what really
        /// protects them; the cost is tunable for slow hardware and test runs (at least 10,000).
        public var pinHashRounds = 210_000
        /// Keep personal Metrc keys without a store key (in clear in the store): only by explicit choice.
        public var allowUnsealedKeys = false
    }

    public struct Facility: Sendable, Equatable {
        public var license = "LIC-0001"
        /// Further licenses this daemon serves besides the default one.
        public var otherLicenses: [String] = []
        public var requirePersonalKeys = false
        /// Warn (never refuse) when an event names a tag, location, strain, unit or reason missing from Metrc's lists.
        public var checkScansAgainstReference = true

        public var licenses: [String] { [license] + otherLicenses.filter { $0 != license } }
    }

    public struct Metrc: Sendable, Equatable {
        /// Metrc's address; none by default: without one nothing is uploaded.
        public var baseURL: String?
        public var vendorKeyFile: String?
        public var defaultKeyFile: String?
        public var objectsPerRequest = 100
        public var concurrency = 4
        public var requestTimeoutSeconds = 60.0
        public var alertAfterHours = 48.0
        /// Keep a copy of Metrc's reference lists for handhelds (`pull`) and scan checks.
        public var referenceSync = true
        /// Reference data: how often the incremental sync runs, and how often a full one catches what left the lists.
        public var syncIntervalSeconds = 300.0
        public var fullSyncHours = 24.0
        /// Metrc's GET limits (its rate-limiting notice): per facility and per vendor key, a second and at once.
        public var getsPerSecondPerFacility = 50
        public var concurrentGetsPerFacility = 10
        public var getsPerSecondPerVendorKey = 150
        public var concurrentGetsPerVendorKey = 30
    }

    /// `[keys]`: how personal keys and the Default key are watched (checked with Metrc; expiry warnings).
    public struct Keys: Sendable, Equatable {
        /// How often each key is checked with Metrc (fractions allowed, e.g. for tests).
        public var checkIntervalHours = 24.0
        /// How long a Metrc key is expected to live, from the day it was set (Metrc's own date wins when it gives one).
        public var lifetimeDays = 365
        /// How many days before that expiry the daily warning starts.
        public var warnDays = 14

        public init() {}
    }

    /// `[review]`: uploadable events that wait (`review`) until a person approves or rejects them with
    /// `outlawctl review`: those of these types, and those collected by these users (either is enough).
    public struct Review: Sendable, Equatable {
        public var eventTypes: [EventType] = []
        public var users: [String] = []
    }

    /// `[log]`: how much the daemon logs; a reload applies it.
    public struct Log: Sendable, Equatable {
        /// A swift-log level name (trace, debug, info, notice, warning, error, critical); nil: info, or debug with
        /// `OUTLAWD_DEBUG=1`.
        public var level: String?

        /// swift-log's level names, least severe first.
        public static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    }

    /// `[metrics]`: where the Prometheus endpoint (`/metrics`) listens; `listen = ""` turns it off.
    public struct Metrics: Sendable, Equatable {
        public var enabled = true
        public var host = "127.0.0.1"
        public var port = 9742
    }

    /// `[console]`: where the HTTPS web console listens (the device port's TLS certificate); `listen = ""` turns it off.
    public struct Console: Sendable, Equatable {
        public var enabled = true
        public var host = "127.0.0.1"
        public var port = 7443
        /// The file names `[console] listen`: then a console that cannot be served (no TLS) is a warning.
        public var listenGiven = false
        /// The console's own certificate and key (dev mode's self-signed pair); nil: the device port's (`[server]`).
        public var tlsCertificateFile: String?
        public var tlsKeyFile: String?
    }

    /// `[backup]`: the daemon's own backups of the store (the checked online copy `outlawctl backup` takes), on a
    /// schedule, the oldest beyond `keep` deleted; a reload applies it.
    public struct Backup: Sendable, Equatable {
        /// The folder of the copies, absolute; nil (`dir = ""`, the default): the daemon takes none.
        public var dir: String?
        /// How often a copy is taken (fractions of an hour allowed, which tests use).
        public var intervalHours = 24.0
        /// How many of the daemon's own copies (`outlawd-YYYYMMDDTHHMMSSZ.sqlite`) stay in `dir`.
        public var keep = 7
        /// Whether a copy runs on a `SCHED_IDLE` thread (the default), so the devices' commits never wait for it; a box
        /// whose cores are never idle turns it off, as such a thread then gets about 0.1% of a core.
        public var idlePriority = true

        public init() {}
    }

    /// `[retention]`: finished events older than `keep_finished_days` leave the live store for monthly archive files
    /// in `archive_dir` (docs/operations.md, "Retention"); a reload applies it.
    public struct Retention: Sendable, Equatable {
        /// Days a finished event stays in the live store; 0 keeps everything.
        public var keepFinishedDays = 400
        /// The archives' folder, absolute; nil: `archives` beside the store (inside the unit's StateDirectory).
        public var archiveDir: String?
        /// Whether a run's archive writing waits for idle cores (`RetentionOptions.idlePriority`).
        public var idlePriority = true

        public init() {}

        /// Where the archives go for a store at `storePath`.
        public func archiveFolder(storePath: String) -> String {
            archiveDir ?? URL(fileURLWithPath: storePath).deletingLastPathComponent().appendingPathComponent("archives").path
        }
    }

    public var server = Server()
    public var store = StoreSettings()
    public var facility = Facility()
    public var metrc = Metrc()
    public var review = Review()
    public var keys = Keys()
    public var metrics = Metrics()
    public var console = Console()
    public var log = Log()
    public var backup = Backup()
    public var retention = Retention()
    /// The file this was read from, if any.
    public var file: String?

    public init() {}
}

/// A configuration problem: the file, the key and what is wrong, on one line.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    public let key: String?
    public let problem: String

    public init(file: String, key: String?, problem: String) {
        self.file = file
        self.key = key
        self.problem = problem
    }

    public var description: String {
        if let key { return "\(file): \(key): \(problem)" }
        return "\(file): \(problem)"
    }
}

extension DaemonConfiguration {
    /// Reads and checks a config file; relative paths in it are resolved against the file's folder.
    public static func load(path: String) throws(ConfigError) -> DaemonConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ConfigError(file: path, key: nil, problem: exists ? "cannot be read (permissions?)" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, key: nil, problem: "is not UTF-8 text")
        }
        let folder = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent().path
        return try parse(text, file: path, relativeTo: folder)
    }

    public static func parse(_ text: String, file: String, relativeTo folder: String) throws(ConfigError) -> DaemonConfiguration {
        let root: [String: TOMLValue]
        do {
            root = try TOMLParser.parse(text)
        } catch {
            throw ConfigError(file: file, key: nil, problem: "line \(error.line): \(error.message)")
        }
        let reader = TableReader(file: file, folder: folder)
        var config = DaemonConfiguration()
        config.file = file
        try reader.only(root, known: ["server", "store", "facility", "metrc", "review", "keys", "log", "metrics", "backup", "console", "retention"],
                        prefix: nil)

        if let server = try reader.table(root, "server") {
            try reader.only(server, known: ["listen", "max_line_bytes", "max_batch_events", "window", "idle_timeout_seconds",
                                            "hello_timeout_seconds", "max_connections", "allow_keys_without_tls",
                                            "tls_certificate_file", "tls_key_file", "allow_plaintext", "require_login_ticket",
                                            "login_ticket_hours", "max_unauthenticated_per_address", "max_unauthenticated"],
                             prefix: "server")
            if let listen = try reader.string(server, "server.listen") {
                guard let (host, port) = parseListen(listen) else {
                    throw ConfigError(file: file, key: "server.listen", problem: "must be HOST:PORT, e.g. \"127.0.0.1:7420\" or \"[::]:7420\"")
                }
                config.server.host = host
                config.server.port = port
            }
            if let v = try reader.integer(server, "server.max_line_bytes", in: 1024...(64 << 20)) { config.server.maxLineBytes = v }
            if let v = try reader.integer(server, "server.max_batch_events", in: 1...100_000) { config.server.maxBatchEvents = v }
            if let v = try reader.integer(server, "server.window", in: 1...1024) { config.server.window = v }
            if let v = try reader.seconds(server, "server.idle_timeout_seconds") { config.server.idleTimeoutSeconds = v }
            if let v = try reader.seconds(server, "server.hello_timeout_seconds") { config.server.helloTimeoutSeconds = v }
            if let v = try reader.integer(server, "server.max_connections", in: 1...100_000) { config.server.maxConnections = v }
            if let v = try reader.bool(server, "server.allow_keys_without_tls") { config.server.allowKeysWithoutTLS = v }
            config.server.tlsCertificateFile = try reader.path(server, "server.tls_certificate_file")
            config.server.tlsKeyFile = try reader.path(server, "server.tls_key_file")
            // The key may come as the systemd credential outlawd-tls-key instead of tls_key_file.
            if config.server.tlsCertificateFile == nil, config.server.tlsKeyFile != nil {
                throw ConfigError(file: file, key: "server.tls_certificate_file", problem: "TLS needs tls_certificate_file beside tls_key_file")
            }
            if let v = try reader.bool(server, "server.allow_plaintext") { config.server.allowPlaintext = v }
            if let v = try reader.bool(server, "server.require_login_ticket") { config.server.requireLoginTicket = v }
            if let v = try reader.seconds(server, "server.login_ticket_hours") {
                guard v <= 24 * 366 else { throw ConfigError(file: file, key: "server.login_ticket_hours", problem: "must be at most 8784 (a year)") }
                config.server.loginTicketHours = v
            }
            if let v = try reader.integer(server, "server.max_unauthenticated_per_address", in: 1...100_000) {
                config.server.maxUnauthenticatedPerAddress = v
            }
            if let v = try reader.integer(server, "server.max_unauthenticated", in: 1...100_000) { config.server.maxUnauthenticated = v }
        }
        if let store = try reader.table(root, "store") {
            try reader.only(store, known: ["path", "min_free_megabytes", "key_file", "pin_hash_rounds", "allow_unsealed_keys"], prefix: "store")
            if let v = try reader.bool(store, "store.allow_unsealed_keys") { config.store.allowUnsealedKeys = v }
            if let v = try reader.integer(store, "store.pin_hash_rounds", in: 10_000...10_000_000) { config.store.pinHashRounds = v }
            config.store.keyFile = try reader.path(store, "store.key_file")
            if let v = try reader.path(store, "store.path") { config.store.path = v }
            if let v = try reader.integer(store, "store.min_free_megabytes", in: 0...1_000_000) { config.store.minFreeMegabytes = v }
        }
        if let facility = try reader.table(root, "facility") {
            try reader.only(facility, known: ["license", "licenses", "require_personal_keys", "check_scans_against_reference"], prefix: "facility")
            if let v = try reader.string(facility, "facility.license") {
                guard isLicense(v) else {
                    throw ConfigError(file: file, key: "facility.license", problem: "must be a license number such as \"LIC-0001\"")
                }
                config.facility.license = v
            }
            if let v = try reader.strings(facility, "facility.licenses") {
                guard v.allSatisfy(isLicense) else {
                    throw ConfigError(file: file, key: "facility.licenses", problem: "every entry must be a license number such as \"LIC-0002\"")
                }
                config.facility.otherLicenses = v
            }
            if let v = try reader.bool(facility, "facility.require_personal_keys") { config.facility.requirePersonalKeys = v }
            if let v = try reader.bool(facility, "facility.check_scans_against_reference") {
                config.facility.checkScansAgainstReference = v
            }
        }
        if let metrc = try reader.table(root, "metrc") {
            try reader.only(metrc, known: ["base_url", "vendor_key_file", "default_key_file", "objects_per_request", "concurrency",
                                           "request_timeout_seconds", "alert_after_hours", "reference_sync", "sync_interval_seconds",
                                           "full_sync_hours", "gets_per_second_per_facility", "concurrent_gets_per_facility",
                                           "gets_per_second_per_vendor_key", "concurrent_gets_per_vendor_key"], prefix: "metrc")
            if let v = try reader.string(metrc, "metrc.base_url") {
                guard let url = URL(string: v), ["http", "https"].contains(url.scheme ?? ""), let host = url.host, !host.isEmpty else {
                    throw ConfigError(file: file, key: "metrc.base_url", problem: "must be an https:// URL, e.g. \"https://api-ca.metrc.com\"")
                }
                // Every request carries keys in Basic auth: in clear only to this machine (dev mode, the sandbox).
                guard url.scheme == "https" || Self.isLoopback(host) else {
                    throw ConfigError(file: file, key: "metrc.base_url",
                                      problem: "must be https:// (plain http only to this machine: 127.0.0.1, ::1 or localhost), not \"\(v)\"")
                }
                config.metrc.baseURL = v.hasSuffix("/") ? String(v.dropLast()) : v
            }
            if let v = try reader.path(metrc, "metrc.vendor_key_file") { config.metrc.vendorKeyFile = v }
            if let v = try reader.path(metrc, "metrc.default_key_file") { config.metrc.defaultKeyFile = v }
            if let v = try reader.integer(metrc, "metrc.objects_per_request", in: 1...1000) { config.metrc.objectsPerRequest = v }
            if let v = try reader.integer(metrc, "metrc.concurrency", in: 1...64) { config.metrc.concurrency = v }
            if let v = try reader.seconds(metrc, "metrc.request_timeout_seconds") { config.metrc.requestTimeoutSeconds = v }
            if let v = try reader.seconds(metrc, "metrc.alert_after_hours") { config.metrc.alertAfterHours = v }
            if let v = try reader.bool(metrc, "metrc.reference_sync") { config.metrc.referenceSync = v }
            if let v = try reader.seconds(metrc, "metrc.sync_interval_seconds") { config.metrc.syncIntervalSeconds = v }
            if let v = try reader.seconds(metrc, "metrc.full_sync_hours") { config.metrc.fullSyncHours = v }
            if let v = try reader.integer(metrc, "metrc.gets_per_second_per_facility", in: 1...10_000) {
                config.metrc.getsPerSecondPerFacility = v
            }
            if let v = try reader.integer(metrc, "metrc.concurrent_gets_per_facility", in: 1...1000) {
                config.metrc.concurrentGetsPerFacility = v
            }
            if let v = try reader.integer(metrc, "metrc.gets_per_second_per_vendor_key", in: 1...10_000) {
                config.metrc.getsPerSecondPerVendorKey = v
            }
            if let v = try reader.integer(metrc, "metrc.concurrent_gets_per_vendor_key", in: 1...1000) {
                config.metrc.concurrentGetsPerVendorKey = v
            }
        }
        if let review = try reader.table(root, "review") {
            try reader.only(review, known: ["event_types", "users"], prefix: "review")
            for text in try reader.strings(review, "review.event_types") ?? [] {
                guard let type = EventType(rawValue: text) else {
                    let known = EventType.allCases.filter(\.isUploaded).map(\.rawValue).joined(separator: ", ")
                    throw ConfigError(file: file, key: "review.event_types", problem: "\"\(text)\" is not an event type (known: \(known))")
                }
                guard type.isUploaded else {
                    throw ConfigError(file: file, key: "review.event_types", problem: "\"\(text)\" is never uploaded, so there is nothing to review")
                }
                if !config.review.eventTypes.contains(type) { config.review.eventTypes.append(type) }
            }
            for name in try reader.strings(review, "review.users") ?? [] {
                guard !name.isEmpty else { throw ConfigError(file: file, key: "review.users", problem: "a user name must not be empty") }
                if !config.review.users.contains(name) { config.review.users.append(name) }
            }
        }
        if let keys = try reader.table(root, "keys") {
            try reader.only(keys, known: ["check_interval_hours", "lifetime_days", "warn_days"], prefix: "keys")
            if let v = try reader.seconds(keys, "keys.check_interval_hours") { config.keys.checkIntervalHours = v }
            if let v = try reader.integer(keys, "keys.lifetime_days", in: 1...3650) { config.keys.lifetimeDays = v }
            if let v = try reader.integer(keys, "keys.warn_days", in: 0...3650) { config.keys.warnDays = v }
            if config.keys.warnDays > config.keys.lifetimeDays {
                throw ConfigError(file: file, key: "keys.warn_days",
                                  problem: "must not exceed keys.lifetime_days (\(config.keys.lifetimeDays)), not \(config.keys.warnDays)")
            }
        }
        if let log = try reader.table(root, "log") {
            try reader.only(log, known: ["level"], prefix: "log")
            if let v = try reader.string(log, "log.level") {
                guard DaemonConfiguration.Log.levels.contains(v) else {
                    throw ConfigError(file: file, key: "log.level", problem: "must be one of \(DaemonConfiguration.Log.levels.joined(separator: ", ")), not \"\(v)\"")
                }
                config.log.level = v
            }
        }
        if let metrics = try reader.table(root, "metrics") {
            try reader.only(metrics, known: ["listen"], prefix: "metrics")
            switch metrics["listen"] {
            case nil:
                break
            case .string(let listen)?:
                if listen.isEmpty {
                    config.metrics.enabled = false
                } else if let (host, port) = parseListen(listen) {
                    (config.metrics.host, config.metrics.port) = (host, port)
                } else {
                    throw ConfigError(file: file, key: "metrics.listen", problem: "must be HOST:PORT, e.g. \"127.0.0.1:9742\", or \"\" for no metrics")
                }
            case .some:
                throw ConfigError(file: file, key: "metrics.listen", problem: "must be a string in quotes")
            }
        }
        if let console = try reader.table(root, "console") {
            try reader.only(console, known: ["listen", "tls_certificate_file", "tls_key_file"], prefix: "console")
            config.console.listenGiven = console["listen"] != nil
            config.console.tlsCertificateFile = try reader.path(console, "console.tls_certificate_file")
            config.console.tlsKeyFile = try reader.path(console, "console.tls_key_file")
            guard (config.console.tlsCertificateFile == nil) == (config.console.tlsKeyFile == nil) else {
                throw ConfigError(file: file, key: "console.tls_certificate_file", problem: "give both tls_certificate_file and tls_key_file, or neither (then the console uses [server]'s)")
            }
            switch console["listen"] {
            case nil:
                break
            case .string(let listen)?:
                if listen.isEmpty {
                    config.console.enabled = false
                } else if let (host, port) = parseListen(listen) {
                    (config.console.host, config.console.port) = (host, port)
                } else {
                    throw ConfigError(file: file, key: "console.listen", problem: "must be HOST:PORT, e.g. \"127.0.0.1:7443\", or \"\" for no console")
                }
            case .some:
                throw ConfigError(file: file, key: "console.listen", problem: "must be a string in quotes")
            }
        }
        if let backup = try reader.table(root, "backup") {
            try reader.only(backup, known: ["dir", "interval_hours", "keep", "idle_priority"], prefix: "backup")
            // "" is the default, spelt out: no backups.
            if case .string("")? = backup["dir"] {
                config.backup.dir = nil
            } else if let v = try reader.path(backup, "backup.dir") {
                config.backup.dir = URL(fileURLWithPath: v).standardizedFileURL.path
            }
            if let v = try reader.seconds(backup, "backup.interval_hours") { config.backup.intervalHours = v }
            if let v = try reader.integer(backup, "backup.keep", in: 1...10_000) { config.backup.keep = v }
            if let v = try reader.bool(backup, "backup.idle_priority") { config.backup.idlePriority = v }
        }
        if let retention = try reader.table(root, "retention") {
            try reader.only(retention, known: ["keep_finished_days", "archive_dir", "idle_priority"], prefix: "retention")
            if let v = try reader.integer(retention, "retention.keep_finished_days", in: 0...36_500) { config.retention.keepFinishedDays = v }
            if let v = try reader.path(retention, "retention.archive_dir") {
                config.retention.archiveDir = URL(fileURLWithPath: v).standardizedFileURL.path
            }
            if let v = try reader.bool(retention, "retention.idle_priority") { config.retention.idlePriority = v }
        }
        return config
    }

    /// A loopback host: `localhost`, 127.0.0.0/8 or ::1 (brackets allowed).
    public static func isLoopback(_ host: String) -> Bool {
        var h = host.lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    static func isLicense(_ s: String) -> Bool {
        (1...64).contains(s.count) && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    /// `HOST:PORT` or `[IPv6]:PORT`.
    static func parseListen(_ s: String) -> (String, Int)? {
        var host: Substring
        var portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            portText = s[s.index(close, offsetBy: 2)...]
        } else {
            guard let colon = s.lastIndex(of: ":") else { return nil }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { return nil }
        return (String(host), port)
    }
}

/// Typed reads from a TOML table, each failure naming the key.
struct TableReader {
    let file: String
    let folder: String

    func fail(_ key: String, _ problem: String) -> ConfigError { ConfigError(file: file, key: key, problem: problem) }

    func only(_ table: [String: TOMLValue], known: Set<String>, prefix: String?) throws(ConfigError) {
        for key in table.keys.sorted() where !known.contains(key) {
            let full = prefix.map { "\($0).\(key)" } ?? key
            throw fail(full, "unknown key (known here: \(known.sorted().joined(separator: ", ")))")
        }
    }

    func table(_ root: [String: TOMLValue], _ key: String) throws(ConfigError) -> [String: TOMLValue]? {
        guard let v = root[key] else { return nil }
        guard case .table(let t) = v else { throw fail(key, "must be a table ([\(key)])") }
        return t
    }

    private func leaf(_ key: String) -> String { String(key.split(separator: ".").last ?? "") }

    func string(_ table: [String: TOMLValue], _ key: String) throws(ConfigError) -> String? {
        guard let v = table[leaf(key)] else { return nil }
        guard case .string(let s) = v else { throw fail(key, "must be a string in quotes") }
        guard !s.isEmpty else { throw fail(key, "must not be empty") }
        return s
    }

    func strings(_ table: [String: TOMLValue], _ key: String) throws(ConfigError) -> [String]? {
        guard let v = table[leaf(key)] else { return nil }
        guard case .array(let items) = v else { throw fail(key, "must be an array of strings") }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw fail(key, "must be an array of strings") }
            out.append(s)
        }
        return out
    }

    func integer(_ table: [String: TOMLValue], _ key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let v = table[leaf(key)] else { return nil }
        guard case .integer(let n) = v else { throw fail(key, "must be a whole number") }
        guard range.contains(n) else { throw fail(key, "must be from \(range.lowerBound) to \(range.upperBound), not \(n)") }
        return n
    }

    func seconds(_ table: [String: TOMLValue], _ key: String) throws(ConfigError) -> Double? {
        guard let v = table[leaf(key)] else { return nil }
        let n: Double
        switch v {
        case .integer(let i): n = Double(i)
        case .float(let d): n = d
        default: throw fail(key, "must be a number")
        }
        guard n > 0, n <= 10_000_000 else { throw fail(key, "must be greater than 0") }
        return n
    }

    func bool(_ table: [String: TOMLValue], _ key: String) throws(ConfigError) -> Bool? {
        guard let v = table[leaf(key)] else { return nil }
        guard case .boolean(let b) = v else { throw fail(key, "must be true or false") }
        return b
    }

    /// A path; a relative one is taken from the config file's folder.
    func path(_ table: [String: TOMLValue], _ key: String) throws(ConfigError) -> String? {
        guard let s = try string(table, key) else { return nil }
        if s.hasPrefix("/") { return s }
        return URL(fileURLWithPath: folder).appendingPathComponent(s).standardizedFileURL.path
    }
}
