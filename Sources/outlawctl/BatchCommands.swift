import ArgumentParser
import Foundation
import OutlawStore

struct BatchesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "batches", abstract: "List stored batches.")
    @OptionGroup var options: ConfigOptions
    @Option(name: .long, help: "queued, uploading, uploaded, partial, failed, held, recorded or review.") var state: String?
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
            /// The login that proved the collector; absent when the batch was taken without a ticket.
            let proof: BatchProof?
            let events: [StoredEvent]
        }

        func run() throws {
            let store = try options.openStore()
            guard let (summary, events) = try store.batchDetail(device: device, id: id) else {
                throw StoreError("no batch \(id) from device \(device)")
            }
            let proof = try store.proof(device: device, batchID: id)
            if json { return try printJSON(Detail(batch: summary, proof: proof, events: events)) }
            print("batch \(summary.id) from \(summary.device)")
            print("collected by: \(summary.user)   license: \(summary.license)   received: \(formatDate(summary.receivedAt))")
            if let proof {
                print("proved by: \(summary.user)'s login on \(proof.device) at \(formatDate(proof.issuedAt)) (ticket \(proof.ticket), audit login.ticket; covers until \(formatDate(proof.expiresAt)))")
            } else {
                print("proved by: no login ticket (taken while server.require_login_ticket was off)")
            }
            print("state: \(summary.state)   events: \(summary.events.total) (pending \(summary.events.pending), uploaded \(summary.events.uploaded), failed \(summary.events.failed))   scan warnings: \(summary.warnings.count)")
            if let reason = summary.heldReason { print("held: \(reason)") }
            print("")
            print(table(["SEQ", "TYPE", "TAG", "AT", "USER", "STATE", "MESSAGE"], events.map {
                ["\($0.seq)", $0.type, $0.tag, $0.at, $0.user, $0.state.rawValue, $0.message ?? ""]
            }))
            // Below the table, not in it: a warning names several tags and places and would push MESSAGE off screen.
            let warned = events.compactMap { event in event.warning.map { (event.seq, $0) } }
            if !warned.isEmpty {
                print("")
                print("scan warnings (not in the copy of Metrc's lists when stored; the events were accepted):")
                for (seq, warning) in warned { print("  seq \(seq): \(warning)") }
            }
        }
    }
}

/// `outlawctl audit` lists (the default, so the plain command works as before); `outlawctl audit verify` checks the chain.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Show the audit log, newest first, or verify its hash chain.",
        subcommands: [List.self, Verify.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the audit log, newest first.")
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

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the audit hash chain; name the first row that does not match (exit 1).",
            discussion: """
                Compare the head with the last AUDIT_HEAD_ID / AUDIT_HEAD_HASH outlawd wrote to the journal: rows removed \
                from the end, or a chain rewritten from some row on, show only there.
                """)
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "JSON output.") var json = false

        struct Report: Encodable {
            struct Head: Encodable {
                let id: Int64
                let hash: String
            }

            struct Bad: Encodable {
                let id: Int64
                let kind: String
                let problem: String
            }

            let intact: Bool
            let rows: Int
            let head: Head?
            let firstBad: Bad?
        }

        func run() throws {
            let result = try options.openStore().verifyAudit()
            if json {
                try printJSON(Report(intact: result.intact, rows: result.rows, head: result.head.map { .init(id: $0.id, hash: $0.hex) },
                                     firstBad: result.firstBad.map { .init(id: $0.id, kind: $0.kind.rawValue, problem: $0.problem) }))
                if !result.intact { throw ExitCode(1) }
                return
            }
            let rows = result.rows == 1 ? "1 row" : "\(result.rows) rows"
            if let bad = result.firstBad {
                throw StoreError("audit chain broken at \(bad); \(rows) before it verified")
            }
            guard let head = result.head else { return print("audit chain intact: 0 rows") }
            print("audit chain intact: \(rows), head #\(head.id) \(head.hex.prefix(16))")
        }
    }
}
