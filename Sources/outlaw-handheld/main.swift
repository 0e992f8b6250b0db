import ArgumentParser
import Foundation
import OutlawProtocol

/// `outlaw-handheld`: a simulated Outlaw handheld that streams a demo shift to `outlawd --dev` and shows who signed
/// each action at Metrc (scripts/demo runs it).
struct OutlawHandheld: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outlaw-handheld",
        abstract: "A simulated handheld: streams a demo shift to outlawd --dev and shows who signed what at Metrc.",
        discussion: """
            Logs in as jane (her own Metrc key) and john (no key: the facility's Default key signs), sends their \
            shift as batches with one event Metrc refuses, waits until every event is uploaded or failed, then \
            reads the Metrc sandbox's write log. Exit codes: 0 as expected, 1 the demo went wrong (timeout, \
            refused batch, unexpected signer), 2 no daemon or bad files.
            """,
        version: OutlawBuild.version)

    @Option(name: .long, help: "The folder of outlawd --dev (its outlawd.toml and demo-device-token).")
    var dir = ".outlawd"

    @Option(name: .long, help: "The demo device.")
    var device = "HH-DEMO"

    @Option(name: .long, help: "Give up after this many seconds.")
    var timeout: Double = 120

    @Flag(name: .long, help: "Print the result as JSON on stdout (progress goes to stderr).")
    var json = false

    func run() async throws {
        let console = Console(json: json)
        do {
            try await demo(console)
        } catch let error as HandheldError {
            console.error("outlaw-handheld: \(error)")
            if case .setup = error { throw ExitCode(2) }
            throw ExitCode(1)
        } catch let error as ExitCode {
            throw error
        } catch {
            console.error("outlaw-handheld: \(error)")
            throw ExitCode(1)
        }
    }

    func demo(_ console: Console) async throws {
        let startedAt = Date()
        let deadline = startedAt.addingTimeInterval(timeout)
        let site = try DemoSite.load(folder: dir)
        let sandbox = SandboxControl(baseURL: site.metrcBaseURL)
        let stock = try await sandbox.stock(license: site.license)
        let shift = try ShiftPlanner.plan(run: ShiftPlanner.runStamp(startedAt), stock: stock, now: startedAt)
        console.note("handheld \(device) → outlawd \(site.deviceHost):\(site.devicePort), Metrc sandbox \(site.metrcBaseURL), facility \(site.license)")

        let link = try await DeviceLink.open(site: site, device: device)
        var logins: [ShiftReport.Login] = []
        var tickets: [String: String] = [:]
        for member in ShiftPlanner.crew {
            let (role, key, ticket) = try await link.login(user: member.user, pin: member.pin)
            tickets[member.user] = ticket
            let expected = key == "personal" ? member.user : key == "default" ? stock.owner : nil
            logins.append(.init(user: member.user, role: role, metrcKey: key, expectedSigner: expected))
            let who = key == "personal" ? "their own key" : key == "default" ? "the facility's Default key" : "none: uploads wait"
            console.note("\(member.user) logged in (\(role)); Metrc key: \(key) (\(who))")
        }

        let events = shift.batches.reduce(0) { $0 + $1.events.count }
        console.note("shift \(shift.run): \(shift.batches.count) batches, \(events) events")
        func line(acked: Int, uploaded: Int = 0, failed: Int = 0, held: Int = 0) -> String {
            "sent \(shift.batches.count) batches (\(events) events) · acked \(acked) · uploaded \(uploaded) · failed \(failed)"
                + (held > 0 ? " · held \(held)" : "")
        }
        // Writes recorded from here on can be this run's (same clock: the sandbox runs on this machine).
        let sentAt = Date()
        try await link.send(shift.batches, tickets: tickets, timeZone: .current) { console.progress(line(acked: $0)) }

        let ids = shift.batches.map(\.id)
        var statuses: [String: BatchProgress] = [:]
        while true {
            statuses = try await link.status(ids)
            let all = ids.compactMap { statuses[$0] }
            let uploaded = all.reduce(0) { $0 + $1.uploaded }
            let failed = all.reduce(0) { $0 + $1.failed }
            let held = all.filter { $0.state == "held" }.reduce(0) { $0 + $1.pending }
            let done = all.count == ids.count && all.allSatisfy(\.finished)
            console.progress(line(acked: ids.count, uploaded: uploaded, failed: failed, held: held), force: done)
            if done { break }
            if Date() >= deadline {
                console.closeProgress()
                let waiting = all.filter { !$0.finished }.map { "\($0.id) \($0.state)\($0.reason.map { " (\($0))" } ?? "")" }
                throw HandheldError.failed("""
                    timed out after \(Int(timeout)) s with \(all.reduce(0) { $0 + $1.pending }) events not yet uploaded or failed: \
                    \(waiting.joined(separator: ", ")). See: outlawctl --config \(site.configPath) status
                    """)
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        console.closeProgress()
        await link.bye()

        let writes = try await sandbox.writes(license: site.license)
        let report = ShiftReport.build(site: site, device: device, shift: shift, logins: logins, statuses: statuses,
                                       writes: writes, since: sentAt, startedAt: startedAt, finishedAt: Date())
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            console.result(String(decoding: try encoder.encode(report), as: UTF8.self) + "\n")
        } else {
            console.result("\n" + report.text(owner: stock.owner))
        }
        if !report.problems.isEmpty { throw ExitCode(1) }
    }
}

// Parsed by hand: in top-level code `main()` resolves to the synchronous one, which never runs an async `run()`.
do {
    let command = try OutlawHandheld.parse()
    try await command.run()
} catch {
    OutlawHandheld.exit(withError: error)
}
