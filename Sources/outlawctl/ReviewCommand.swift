import ArgumentParser
import Foundation
import OutlawStore

/// `outlawctl review list | approve DEVICE ID [--events 3,4] | reject DEVICE ID [--events 3,4] --reason TEXT`:
/// the review gate (`[review]` in outlawd.toml).
struct ReviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review", abstract: "Events waiting for a person's review ([review]): list, approve, reject.",
        discussion: """
            Approved events go to Metrc in the place they always had in the order per tag; rejected ones never reach \
            Metrc. Every decision is written to the audit table with the operator ($SUDO_USER, else the login name).
            """,
        subcommands: [List.self, Approve.self, Reject.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the events in review, oldest batch first.")
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "JSON output.") var json = false

        func run() throws {
            let batches = try options.openStore().reviewList()
            if json { return try printJSON(batches) }
            if batches.isEmpty { return print("no events in review") }
            print(table(["DEVICE", "BATCH", "SEQ", "COLLECTOR", "TYPE", "TAG", "SINCE"], batches.flatMap { batch in
                batch.events.map { [batch.device, batch.id, "\($0.seq)", batch.user, $0.type, $0.tag, formatDate(batch.receivedAt)] }
            }))
        }
    }

    /// DEVICE, BATCH_ID and `--events`, shared by approve and reject.
    struct Selection: ParsableArguments {
        @Argument(help: "The device that sent the batch.") var device: String
        @Argument(help: "The batch id.") var id: String
        @Option(name: .long, help: "Only these seqs (comma-separated); default: every event of the batch in review.") var events: String?

        func seqs() throws -> [Int]? {
            try events.map { text in
                try text.split(separator: ",", omittingEmptySubsequences: false).map { part -> Int in
                    guard let n = Int(part.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                        throw UsageError(message: "--events takes seqs like 3,4,7")
                    }
                    return n
                }
            }
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve events in review: they are uploaded in their place.")
        @OptionGroup var options: ConfigOptions
        @OptionGroup var selection: Selection

        func run() throws {
            let seqs = try selection.seqs()
            let done = try options.openStore().decideReview(device: selection.device, batch: selection.id, seqs: seqs,
                                                            decision: .approve, actor: operatorName())
            print("approved \(selection.device) \(selection.id): seq \(done.map(String.init).joined(separator: ","))")
        }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject events in review: they never reach Metrc.")
        @OptionGroup var options: ConfigOptions
        @OptionGroup var selection: Selection
        @Option(name: .long, help: "Why (required: kept on the events, shown to the handheld, audited).") var reason: String

        func run() throws {
            let seqs = try selection.seqs()
            let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !reason.isEmpty else { throw UsageError(message: "reject needs --reason TEXT, not an empty one") }
            let done = try options.openStore().decideReview(device: selection.device, batch: selection.id, seqs: seqs,
                                                            decision: .reject(reason: reason), actor: operatorName())
            print("rejected \(selection.device) \(selection.id): seq \(done.map(String.init).joined(separator: ",")) (\(reason))")
        }
    }
}
