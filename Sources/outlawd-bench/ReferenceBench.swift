import Foundation
import Logging
import Metrc
import MetrcSandbox
import OutlawStore
import OutlawTestSupport
import Reference

/// The figures of one full reference sync against Metrc's default GET limits.
struct ReferenceFigures: Sendable {
    var plants = 0
    var packages = 0
    var seconds = 0.0
    var requests = 0
    var rateLimited = 0
    var fetched = 0
    var errors: [String] = []
    var limit = 50
    /// Per kind: requests and seconds, for the verbose listing.
    var kinds: [(kind: String, requests: Int, fetched: Int, seconds: Double)] = []

    var getsPerSecond: Double { seconds > 0 ? Double(requests) / seconds : 0 }
    var share: Double { getsPerSecond / Double(limit) }
}

/// `ReferenceSync.syncAll(forceFull: true)` in this process, with a real store in a temp folder, against a sandbox
/// holding the demo facility plus `plants` plants and `packages` packages, at Metrc's default GET limits (the
/// sandbox enforces them and answers 429 past them; the client keeps its own budget of the same numbers).
enum ReferenceBench {
    static func run(plants: Int, packages: Int) async throws -> ReferenceFigures {
        var state = SandboxState.demo()
        _ = try state.seed(license: EventMix.license, plants: plants, packages: packages, now: Date())
        var logger = Logger(label: "outlawd-bench.reference")
        logger.logLevel = .warning
        let sandbox = MetrcSandboxServer(state: state, configuration: SandboxConfiguration(), logger: logger)
        try await sandbox.start()
        let dir = try TempDirectory("outlawd-bench-reference")
        let store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 10_000)
        let client = MetrcClient(configuration: MetrcClientConfiguration(baseURL: sandbox.baseURL, vendorKey: SandboxDemo.vendorKey),
                                 logger: logger)
        let sync = ReferenceSync(store: store, client: client, defaultKey: SandboxDemo.ownerKey,
                                 configuration: ReferenceSyncConfiguration(licenses: [EventMix.license]), logger: logger)
        let report = await sync.syncAll(forceFull: true)
        try await client.shutdown()
        try await sandbox.shutdown()

        var figures = ReferenceFigures(plants: plants, packages: packages, limit: SandboxConfiguration().rateLimits.getsPerSecondPerFacility)
        figures.seconds = report.seconds
        for kind in report.kinds {
            figures.requests += kind.requests
            figures.rateLimited += kind.rateLimited
            figures.fetched += kind.fetched
            if let error = kind.error { figures.errors.append("\(kind.kind.rawValue): \(error)") }
            figures.kinds.append((kind.kind.rawValue, kind.requests, kind.fetched, kind.seconds))
        }
        if let error = report.error { figures.errors.append(error) }
        return figures
    }
}
