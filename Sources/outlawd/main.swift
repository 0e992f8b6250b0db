import ArgumentParser
import Foundation
import Logging
import OutlawConfig
import OutlawDaemon

/// The outlawd command line.
struct Outlawd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outlawd",
        abstract: "Takes event batches from Outlaw handhelds, stores them durably and uploads them to Metrc.",
        version: Daemon.version)

    @Option(name: .long, help: "The configuration file (TOML).")
    var config: String = "/etc/outlawd/outlawd.toml"

    @Flag(name: .long, help: "Run with built-in defaults: a store under ./.outlawd/, a demo device and demo users.")
    var dev = false

    @Option(name: .long, help: "Override server.listen (HOST:PORT).")
    var listen: String?

    mutating func run() async throws {
        try await execute()
    }

    /// The daemon's life: configuration, then services until a stop signal.
    func execute() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "outlawd")
        var configuration: DaemonConfiguration
        if dev {
            do {
                let (devConfig, token) = try DevMode.prepare()
                configuration = devConfig
                try applyListen(&configuration)
                print(DevMode.banner(config: configuration, token: token))
            } catch let error as ConfigError {
                Outlawd.fail("outlawd: \(error)", code: 2)
            } catch {
                Outlawd.fail("outlawd: dev mode: \(error)", code: 1)
            }
        } else {
            do {
                configuration = try DaemonConfiguration.load(path: config)
                try applyListen(&configuration)
            } catch {
                Outlawd.fail("outlawd: \(error)", code: 2)
            }
        }
        do {
            try await Daemon(configuration: configuration, logger: logger).run()
        } catch {
            logger.critical("outlawd stopped: \(error)")
            Outlawd.fail("outlawd: \(error)", code: 1)
        }
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

// Parsed by hand so usage errors exit with 2, like configuration errors.
do {
    let command = try Outlawd.parse()
    try await command.execute()
} catch {
    let code = Outlawd.exitCode(for: error)
    if code == .success { Outlawd.exit(withError: error) }
    Outlawd.fail(Outlawd.fullMessage(for: error), code: 2)
}
