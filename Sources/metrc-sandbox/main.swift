import ArgumentParser
import Foundation
import Logging
import MetrcSandbox
import OutlawProtocol

/// `metrc-sandbox --port P [--host 127.0.0.1] [--state FILE] [--demo] [--max-window-hours H]
/// [--seed-plants N --seed-packages M]`: a local Metrc v2 for development, tests and benchmarks.
@main
struct MetrcSandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrc-sandbox",
        abstract: "A local Metrc v2 API that behaves as Metrc's documentation says (see docs/metrc-sandbox.md).",
        version: OutlawBuild.version)

    @Option(help: "TCP port to listen on; 0 picks a free one (printed on start).")
    var port: Int

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Load the state from this JSON file (the format of GET /_sandbox/state).")
    var state: String?

    @Flag(help: "Start with the demo facilities, users, plants and packages.")
    var demo = false

    @Flag(help: "With --state: write the state back to the file on shutdown.")
    var persist = false

    @Option(help: "Most objects one write may carry (more answers 413).")
    var objectLimit: Int = 100

    @Option(help: "Seed of the fault randomness.")
    var seed: UInt64 = 1

    @Flag(help: "Do not send Retry-After with 429.")
    var noRetryAfter = false

    @Flag(help: "Turn off the GET rate limits.")
    var noRateLimits = false

    @Option(help: ArgumentHelp("Refuse (400) a lastModifiedStart/lastModifiedEnd window wider than H hours, or open at one end.",
                               valueName: "H"))
    var maxWindowHours: Double?

    @Option(help: ArgumentHelp("At start, add N active plants with fresh tags to --seed-license (for benchmarks).",
                               valueName: "N"))
    var seedPlants: Int = 0

    @Option(help: ArgumentHelp("At start, add M active packages with fresh tags to --seed-license.", valueName: "M"))
    var seedPackages: Int = 0

    @Option(help: "The facility --seed-plants and --seed-packages fill (it must exist: --demo or --state).")
    var seedLicense: String = SandboxDemo.license

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        if demo, state != nil { throw ValidationError("Give either --demo or --state, not both.") }
        if persist, state == nil { throw ValidationError("--persist needs --state.") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be 0...65535.") }
        if let maxWindowHours, !(maxWindowHours > 0 && maxWindowHours.isFinite) {
            throw ValidationError("--max-window-hours must be a positive number.")
        }
        let seedRange = 0...SandboxState.maximumSeedCount
        if !seedRange.contains(seedPlants) || !seedRange.contains(seedPackages) {
            throw ValidationError("--seed-plants and --seed-packages must be 0...\(SandboxState.maximumSeedCount).")
        }
        if seedPlants + seedPackages > 0, !demo, state == nil {
            throw ValidationError("--seed-plants and --seed-packages need --demo or --state (a facility to fill).")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let initial: SandboxState
        if let state {
            initial = try SandboxState.load(contentsOf: state)
        } else if demo {
            initial = .demo()
        } else {
            initial = SandboxState()
        }
        var configuration = SandboxConfiguration(objectLimit: objectLimit, sendRetryAfter: !noRetryAfter, faultSeed: seed)
        if noRateLimits { configuration.rateLimits = .unlimited }
        configuration.maxModifiedWindow = maxWindowHours.map { $0 * 3600 }
        let server = MetrcSandboxServer(state: initial, configuration: configuration)
        if seedPlants + seedPackages > 0 {
            // Before listening, so no client sees a half-seeded facility.
            let seeded: SandboxSeedResult
            do {
                seeded = try await server.seed(license: seedLicense, plants: seedPlants, packages: seedPackages)
            } catch {
                FileHandle.standardError.write(Data("metrc-sandbox: cannot seed: \(error.message ?? "status \(error.status)")\n".utf8))
                throw ExitCode(2)
            }
            say("seeded \(seeded.plantLabels.count) plants and \(seeded.packageLabels.count) packages at \(seeded.license)")
        }
        let bound = try await server.start(host: host, port: port)

        say("metrc-sandbox listening on http://\(host):\(bound)")
        say("port=\(bound)")
        if demo {
            say("vendor key: \(SandboxDemo.vendorKey)")
            say("user keys: \(SandboxDemo.ownerUserName)=\(SandboxDemo.ownerKey) \(SandboxDemo.janeUserName)=\(SandboxDemo.janeKey) \(SandboxDemo.johnUserName)=\(SandboxDemo.johnKey) \(SandboxDemo.viewerUserName)=\(SandboxDemo.viewerKey)")
            say("licenses: \(SandboxDemo.license) \(SandboxDemo.secondLicense)")
        }

        let signal = await waitForTerminationSignal()
        say("metrc-sandbox: received signal \(signal), stopping")
        if persist, let state {
            try await server.state().save(to: state)
        }
        try await server.shutdown()
    }
}

/// Waits for SIGINT or SIGTERM (both are then handled here instead of killing the process).
func waitForTerminationSignal() async -> Int32 {
    let (stream, continuation) = AsyncStream<Int32>.makeStream()
    var sources: [any DispatchSourceSignal] = []
    for number in [SIGINT, SIGTERM] {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield(number) }
        source.resume()
        sources.append(source)
    }
    var received: Int32 = SIGTERM
    for await number in stream {
        received = number
        break
    }
    for source in sources { source.cancel() }
    return received
}

/// Writes a line to standard output at once (unbuffered, so a parent process reading a pipe sees it).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
