import ArgumentParser
import Foundation
import Logging
import OutlawConfig
import OutlawDaemon
import OutlawKeys
import OutlawMetrics
import OutlawProtocol
import OutlawDev
import Systemd

/// The outlawd command line.
struct Outlawd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outlawd",
        abstract: "Takes event batches from Outlaw handhelds, stores them durably and uploads them to Metrc.",
        version: Daemon.version)

    @Option(name: .long, help: "The configuration file (TOML).")
    var config: String = "/etc/outlawd/outlawd.toml"

    @Flag(name: .long, help: "Check the configuration and every file it names (keys, certificate, store folder), then exit: 0 usable (warnings printed), 2 not (one line per problem).")
    var checkConfig = false

    @Flag(name: .long, help: "Run with built-in defaults: a store under ./.outlawd/, demo device and users, an embedded Metrc sandbox.")
    var dev = false

    @Option(name: .long, help: "Override server.listen (HOST:PORT; port 0 picks a free one).")
    var listen: String?

    @Option(name: .long, help: "With --dev: the folder for the store, keys and outlawd.toml.")
    var devDir: String = ".outlawd"

    @Option(name: .long, help: "With --dev: the embedded Metrc sandbox's port (0 picks a free one; a taken port falls back to a free one).")
    var sandboxPort: Int = 8090

    @Option(name: .long, help: "Where logs go: auto (the journal under systemd, else stderr), journal or stderr.")
    var logTarget: String?

    mutating func run() async throws {
        try await execute()
    }

    /// The daemon's life: configuration, then services until a stop signal.
    func execute() async throws {
        if checkConfig { checkConfiguration() }
        let target = try resolveLogTarget()
        // The level follows [log] level once the configuration is read, and every reload after.
        DaemonLogLevel.start(debug: ProcessInfo.processInfo.environment["OUTLAWD_DEBUG"] == "1")
        LoggingSystem.bootstrap { label in
            DaemonLogLevel.handler(target.makeHandler(label: label, identifier: "outlawd"))
        }
        // Once, before any metric is made (one made earlier stays a no-op), even with `[metrics] listen = ""`:
        // recording costs a few atomic adds.
        MetricsBackend.bootstrap(version: Outlawd.configuration.version)
        let logger = Logger(label: "outlawd")
        if dev {
            let devMode = DevMode(folder: devDir)
            var configuration: DaemonConfiguration
            let token: String
            do {
                (configuration, token) = try devMode.prepare()
                try applyListen(&configuration)
                devMode.configureConsole(&configuration)
            } catch let error as ConfigError {
                Outlawd.fail("outlawd: \(error)", code: 2)
            } catch {
                Outlawd.fail("outlawd: dev mode: \(error)", code: 1)
            }
            let sandbox = try await devMode.startSandbox(port: sandboxPort, config: &configuration)
            let ready = configuration
            await runDaemon(configuration, credentials: MetrcCredentials.load(configuration), logger: logger) { port in
                do {
                    try devMode.writeConfiguration(ready, port: port)
                } catch {
                    logger.error("dev mode: cannot write \(devMode.configPath): \(error)", metadata: MessageID.devConfigNotWritten.metadata())
                }
                print(devMode.banner(config: ready, port: port, token: token))
                fflush(nil)
            }
            try? await sandbox.shutdown()
            return
        }
        let configuration = loadConfigurationOrExit()
        await runDaemon(configuration, credentials: MetrcCredentials.load(configuration), logger: logger)
    }

    func runDaemon(_ configuration: DaemonConfiguration, credentials: MetrcCredentials, logger: Logger,
                   onReady: @escaping @Sendable (Int) -> Void = { _ in }) async {
        do {
            try await Daemon(configuration: configuration, credentials: credentials, logger: logger).run(onReady: onReady)
        } catch let error as ConfigError {
            // A configuration that cannot run (e.g. plain TCP on a network address): exit 2, one line.
            logger.critical("outlawd cannot start: \(error)", metadata: MessageID.cannotStart.metadata())
            Outlawd.fail("outlawd: \(error)", code: 2)
        } catch {
            logger.critical("outlawd stopped: \(error)", metadata: MessageID.stoppedOnError.metadata())
            Outlawd.fail("outlawd: \(error)", code: 1)
        }
    }

    func resolveLogTarget() throws -> LogTarget {
        let name = logTarget ?? ProcessInfo.processInfo.environment["OUTLAWD_LOG_TARGET"] ?? "auto"
        if name == "auto" { return LogTarget.automatic() }
        guard let target = LogTarget(rawValue: name) else {
            throw ValidationError("--log-target must be auto, journal or stderr")
        }
        return target
    }

    func applyListen(_ configuration: inout DaemonConfiguration) throws(ConfigError) {
        guard let listen else { return }
        let parsed = try DaemonConfiguration.parse("[server]\nlisten = \"\(listen)\"\n", file: "--listen", relativeTo: "/")
        configuration.server.host = parsed.server.host
        configuration.server.port = parsed.server.port
    }

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        Foundation.exit(code)
    }
}

// Everything the daemon creates (the store, its WAL, dev mode's key files) is for its own user only.
umask(0o077)
// One malloc arena, not glibc's eight per core: even with store work on one pool of 16 long-lived threads, the
// arenas of those, NIO's and Swift's threads keep freed batches; flat-out peak 112–114 MiB with it, 125–131 without.
#if canImport(Glibc)
@_silgen_name("mallopt") func mallopt(_ parameter: Int32, _ value: Int32) -> Int32  // <malloc.h>, not in the Glibc module
_ = mallopt(-8, 1)  // M_ARENA_MAX
#endif
// Parsed by hand so usage errors exit with 2, like configuration errors.
do {
    let command = try Outlawd.parse()
    try await command.execute()
} catch {
    let code = Outlawd.exitCode(for: error)
    if code == .success { Outlawd.exit(withError: error) }
    Outlawd.fail(Outlawd.fullMessage(for: error), code: 2)
}
