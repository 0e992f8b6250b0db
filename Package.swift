// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "outlawd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "outlawd", targets: ["outlawd"]),
        .executable(name: "outlawctl", targets: ["outlawctl"]),
        .executable(name: "metrc-sandbox", targets: ["metrc-sandbox"]),
        .executable(name: "outlaw-handheld", targets: ["outlaw-handheld"]),
        .library(name: "MetrcSandbox", targets: ["MetrcSandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // The web console (Sources/Console): HTTP and TLS, and its server-rendered pages. No default traits: the console
        // reads no swift-configuration.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0", traits: []),  // Hummingbird's header types
    ],
    targets: [
        // Wire messages, framing and event validation: pure, no I/O.
        .target(name: "OutlawProtocol"),
        // The daemon's TOML configuration: parsing and checking, no I/O beyond reading the file.
        .target(name: "OutlawConfig", dependencies: ["OutlawProtocol"]),
        // libcrypto (OpenSSL), as Debian's libssl-dev ships it: SHA-256, PBKDF2, AES-GCM for the store's secrets.
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // zlib, as Debian's zlib1g-dev ships it: gzip for the retention archives. A system library builds nothing;
        // compress-nio would compile a package around the same libz.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // SQLite's process-wide settings (`sqlite3_config` is variadic, which Swift cannot call): the same libsqlite3 GRDB links.
        .systemLibrary(name: "CSQLiteConfig", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // ioprio_set(2), which glibc does not wrap: backups' disk writes in the idle class.
        .systemLibrary(name: "CThreadPriority"),
        // SQLite store: schema, migrations, queries.
        .target(name: "OutlawStore", dependencies: [
            "OutlawProtocol", "CLibCrypto", "CZlib", "CSQLiteConfig", "CThreadPriority",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "NIOPosix", package: "swift-nio"),  // NIOThreadPool: `Blocking`'s pool
        ]),
        // The device-facing TCP server (SwiftNIO).
        .target(name: "DeviceServer", dependencies: [
            "OutlawProtocol", "OutlawStore",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Metrc v2 client: endpoints, bodies, auth, error decoding.
        .target(name: "Metrc", dependencies: [
            "OutlawProtocol",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Turns stored events into Metrc calls and records outcomes.
        .target(name: "Upload", dependencies: [
            "OutlawProtocol", "OutlawStore", "Metrc",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Metrc's reference lists: kept in the store with the Default key, served to handhelds by `pull`.
        .target(name: "Reference", dependencies: [
            "OutlawProtocol", "OutlawStore", "Metrc",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // libsystemd, as Debian's libsystemd-dev ships it.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // Swift face of libsystemd: notify, watchdog, listen fds, journal log handler.
        .target(name: "Systemd", dependencies: [
            "CSystemd",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // A local Metrc v2 that behaves as Metrc's documentation says.
        .target(name: "MetrcSandbox", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Personal Metrc keys (set_key, outlawctl key) and reading the daemon's credentials: what both executables share.
        .target(name: "OutlawKeys", dependencies: ["OutlawProtocol", "OutlawConfig", "OutlawStore", "Metrc"]),
        // /metrics: swift-metrics' backend (swift-prometheus) and the HTTP endpoint Prometheus scrapes (SwiftNIO HTTP/1).
        .target(name: "OutlawMetrics", dependencies: [
            "OutlawProtocol",  // MessageID, for the endpoint's journal lines
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The HTTPS web console: sign-in, Settings, Users, Keys, Review, Failed, Status; the same services as outlawctl.
        .target(name: "Console", dependencies: [
            "OutlawProtocol", "OutlawConfig", "OutlawStore", "OutlawKeys", "DeviceServer",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "Mustache", package: "swift-mustache"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The daemon's wiring: configuration to running services.
        .target(name: "OutlawDaemon", dependencies: [
            "OutlawMetrics", .product(name: "Metrics", package: "swift-metrics"),
            "OutlawProtocol", "OutlawConfig", "OutlawStore", "OutlawKeys", "DeviceServer", "Metrc", "Upload", "Systemd",
            "Reference", "Console",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // `outlawd --dev`: the demo store and users, an embedded Metrc sandbox, a config for outlawctl.
        .target(name: "OutlawDev", dependencies: ["OutlawDaemon", "OutlawConfig", "OutlawStore", "MetrcSandbox"]),
        .executableTarget(name: "outlawd", dependencies: [
            "OutlawDaemon", "OutlawDev", "OutlawKeys", "OutlawMetrics", "OutlawConfig", "OutlawProtocol", "Systemd",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "outlawctl", dependencies: [
            "OutlawConfig", "OutlawStore", "OutlawProtocol", "Metrc", "OutlawKeys",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "metrc-sandbox", dependencies: [
            "MetrcSandbox", "OutlawProtocol",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The benchmark (scripts/bench): the real daemon under load, figures printed.
        .executableTarget(name: "outlawd-bench", dependencies: ["MetrcSandbox", "OutlawTestSupport", "OutlawStore", "OutlawProtocol", "Metrc", "Reference", .product(name: "GRDBSQLite", package: "GRDB.swift"), .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")]),
        // The simulated handheld behind scripts/demo: a shift streamed to `outlawd --dev`, then who signed what at Metrc.
        .executableTarget(name: "outlaw-handheld", dependencies: [
            "OutlawConfig", "OutlawProtocol", "OutlawTestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Driving the real binaries from outside: temp dirs, a daemon process, a line client, waits for events. A
        // library in Sources because the bench and the simulated handheld (products) use it as the tests do.
        .target(name: "OutlawTestSupport", dependencies: [
            .product(name: "NIOPosix", package: "swift-nio"),  // NIOThreadPool: `offload`'s pool
            .product(name: "Logging", package: "swift-log"),  // RecordedLog
        ]),
        .testTarget(name: "OutlawProtocolTests", dependencies: ["OutlawProtocol"]),
        .testTarget(name: "OutlawConfigTests", dependencies: ["OutlawConfig", "OutlawProtocol"]),
        .testTarget(name: "OutlawStoreTests", dependencies: [
            "OutlawStore", "OutlawProtocol", "OutlawTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),  // a progress handler counts one plan's SQLite work
        ]),
        .testTarget(name: "SystemdTests", dependencies: ["Systemd", "OutlawTestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "MetrcSandboxTests", dependencies: [
            "MetrcSandbox", "OutlawTestSupport",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "MetrcTests", dependencies: ["Metrc", "MetrcSandbox", "OutlawProtocol"]),
        .testTarget(name: "UploadTests", dependencies: [
            "Upload", "Reference", "Metrc", "MetrcSandbox", "OutlawStore", "OutlawProtocol", "OutlawTestSupport",
            .product(name: "Logging", package: "swift-log"), .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "OutlawKeysTests", dependencies: ["OutlawKeys", "OutlawConfig", "OutlawStore", "OutlawProtocol", "OutlawDev", "OutlawTestSupport"]),
        .testTarget(name: "DeviceServerTests", dependencies: ["DeviceServer"]),
        .testTarget(name: "ConsoleTests", dependencies: [
            "Console", "OutlawStore", "OutlawKeys", "DeviceServer", "OutlawTestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "OutlawMetricsTests", dependencies: [
            "OutlawMetrics", "Metrc", "OutlawProtocol", "OutlawTestSupport",
            .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "OutlawTestSupport", "MetrcSandbox", "OutlawStore", "OutlawProtocol", "OutlawConfig", "OutlawDaemon", "DeviceServer", "outlawd", "outlawctl", "metrc-sandbox", "outlaw-handheld",
            .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
