import ArgumentParser
import Foundation
import OutlawStore

struct BatchesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "batches", abstract: "List stored batches.")
    @OptionGroup var options: ConfigOptions
    @Option(name: .long, help: "queued, uploading, uploaded, partial, failed, held or recorded.") var state: String?
    @Option(name: .long) var device: String?
    @Option(name: .long) var user: String?
    @Option(name: .long, help: "At most this many batches.") var limit: Int = 10_000
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        var wanted: BatchState?
        if let state {
            guard let known = BatchState(rawValue: state) else {
                throw UsageError(message: "--state must be one of \(BatchState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            wanted = known
        }
        let batches = try options.openStore().batches(BatchFilter(state: wanted, device: device, user: user, limit: limit))
        if json { return try printJSON(batches) }
        print(table(["DEVICE", "BATCH", "USER", "LICENSE", "RECEIVED", "STATE", "EVENTS", "PENDING", "UPLOADED", "FAILED"],
                    batches.map {
                        [$0.device, $0.id, $0.user, $0.license, formatDate($0.receivedAt), $0.state.rawValue, "\($0.events.total)",
                         "\($0.events.pending)", "\($0.events.uploaded)", "\($0.events.failed)"]
                    }))
    }
}

struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "batch", abstract: "Inspect one batch.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a batch: its events, collector and states.")
        @OptionGroup var options: ConfigOptions
        @Argument var device: String
        @Argument var id: String
        @Flag(name: .long, help: "JSON output.") var json = false

        struct Detail: Encodable {
            let batch: BatchSummary
            let events: [StoredEvent]
        }

        func run() throws {
            guard let (summary, events) = try options.openStore().batchDetail(device: device, id: id) else {
                throw StoreError("no batch \(id) from device \(device)")
            }
            if json { return try printJSON(Detail(batch: summary, events: events)) }
            print("batch \(summary.id) from \(summary.device)")
            print("collected by: \(summary.user)   license: \(summary.license)   received: \(formatDate(summary.receivedAt))")
            print("state: \(summary.state)   events: \(summary.events.total) (pending \(summary.events.pending), uploaded \(summary.events.uploaded), failed \(summary.events.failed))")
            if let reason = summary.heldReason { print("held: \(reason)") }
            print("")
            print(table(["SEQ", "TYPE", "TAG", "AT", "USER", "STATE", "MESSAGE"], events.map {
                ["\($0.seq)", $0.type, $0.tag, $0.at, $0.user, $0.state.rawValue, $0.message ?? ""]
            }))
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Show the audit log, newest first.")
    @OptionGroup var options: ConfigOptions
    @Option(name: .long) var limit: Int = 100
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let entries = try options.openStore().auditEntries(limit: limit)
        if json { return try printJSON(entries) }
        print(table(["WHEN", "WHO", "ACTION", "SUBJECT", "DETAIL"], entries.map {
            [formatDate($0.at), $0.actor, $0.action, $0.subject ?? "", $0.detail ?? ""]
        }))
    }
}
