import ArgumentParser
import Foundation
import OutlawStore

/// `outlawctl archive list | verify | show`: the retention archives (`[retention]`), read and checked against the audit
/// chain that vouches for them.
struct ArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive", abstract: "List, verify and read the retention archives of old finished events.",
        discussion: """
            Finished events older than [retention] keep_finished_days leave the live store for monthly archive files \
            (outlawd-archive-YYYY-MM.NNNN.jsonl.gz: gzip'd JSON Lines, one line per event) in [retention] archive_dir. \
            Each file's SHA-256 is a store.archive audit row, so the audit chain vouches for it.
            """,
        subcommands: [List.self, Verify.self, Show.self])

    /// The archive folder: `--dir`, else the configuration's.
    struct Folder: ParsableArguments {
        @Option(name: .long, help: "Read the archives here instead of [retention] archive_dir (e.g. a copy shipped off the box).")
        var dir: String?

        func path(_ options: ConfigOptions) throws -> String {
            if let dir { return absolute(dir) }
            let configuration = try options.load()
            return configuration.retention.archiveFolder(storePath: configuration.store.path)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each archive: month, part, events, size, SHA-256, and whether it matches its audit row.")
        @OptionGroup var options: ConfigOptions
        @OptionGroup var folder: Folder
        @Flag(name: .long, help: "JSON output.") var json = false

        struct Item: Encodable {
            let file: String
            let month: String?
            let part: Int?
            let events: Int?
            let batches: Int?
            let bytes: Int?
            let sha256: String?
            let auditID: Int64?
            /// `writing`, `deleting` (its events are leaving the live store), `done`; nil for a file the store never recorded.
            let state: String?
            let verified: Bool
            let problem: String?
        }

        func run() throws {
            let store = try options.openStore()
            let dir = try folder.path(options)
            let verification = try store.verifyArchives(dir: dir)
            let records = Dictionary(try store.archives().map { ($0.file, $0) }, uniquingKeysWith: { a, _ in a })
            let items = verification.checks.map { check in
                Item(file: check.file, month: check.month, part: check.part, events: check.events, batches: check.batches, bytes: check.bytes,
                     sha256: check.sha256 ?? check.recordedSHA256, auditID: check.auditID,
                     state: records[check.file].map { $0.state == "written" ? "deleting" : $0.state }, verified: check.intact, problem: check.problem)
            }
            if json { return try printJSON(items) }
            guard !items.isEmpty else {
                print("no archives in \(dir)")
                return
            }
            print(table(["MONTH", "PART", "EVENTS", "SIZE", "SHA-256", "AUDIT ROW", "VERIFIED", "FILE"], items.map { item in
                [item.month ?? "-", item.part.map(String.init) ?? "-", item.events.map(String.init) ?? "-",
                 item.bytes.map(ArchiveCommand.size) ?? "missing", item.sha256 ?? "-", item.auditID.map(String.init) ?? "-",
                 item.verified ? "yes" + (item.state == "deleting" ? " (events leaving the live store)" : "") : "NO: " + (item.problem ?? ""),
                 item.file]
            }))
            for file in verification.inProgress { print("being written by outlawd: \(file)") }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every archive against the audit chain; name each one that does not match and why (exit 1).",
            discussion: """
                The chain is walked first (as outlawctl audit verify does); then each store.archive row's file must be in \
                the folder with the SHA-256 the row recorded, and every archive file in the folder must have its row.
                """)
        @OptionGroup var options: ConfigOptions
        @OptionGroup var folder: Folder
        @Flag(name: .long, help: "JSON output.") var json = false

        struct Report: Encodable {
            let intact: Bool
            let chainIntact: Bool
            let chainProblem: String?
            let archives: [ArchiveCheck]
        }

        func run() throws {
            let dir = try folder.path(options)
            let result = try options.openStore().verifyArchives(dir: dir)
            if json {
                try printJSON(Report(intact: result.intact, chainIntact: result.chain.intact, chainProblem: result.chain.firstBad?.description,
                                     archives: result.checks))
                if !result.intact { throw ExitCode(1) }
                return
            }
            if let bad = result.chain.firstBad { print("audit chain broken at \(bad)") }
            for check in result.checks {
                if let problem = check.problem {
                    print("BAD \(check.file): \(problem)")
                } else {
                    print("ok  \(check.file): \(check.events ?? 0) events, SHA-256 \(check.sha256 ?? "") (audit row \(check.auditID ?? 0))")
                }
            }
            for file in result.inProgress { print("... \(file): being written by outlawd, not recorded yet") }
            let bad = result.checks.filter { !$0.intact }.count
            if result.checks.isEmpty { print("no archives in \(dir)") }
            guard result.intact else {
                throw StoreError("\(bad) of \(result.checks.count) archives in \(dir) do not match the audit chain"
                    + (result.chain.intact ? "" : "; the chain itself is broken"))
            }
            print("\(result.checks.count) archives intact in \(dir), each matching its store.archive audit row")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an archived batch's lines (JSON Lines), or one event's with --seq.")
        @OptionGroup var options: ConfigOptions
        @OptionGroup var folder: Folder
        @Argument(help: "The device that sent the batch.") var device: String
        @Argument(help: "The device's batch id.") var id: String
        @Option(name: .long, help: "Only this event of the batch.") var seq: Int?

        func run() throws {
            let store = try options.openStore()
            let dir = try folder.path(options)
            guard let found = try store.archivedLines(device: device, batch: id, seq: seq, dir: dir) else {
                if try store.batchDetail(device: device, id: id) != nil {
                    throw StoreError("batch \(id) from device \(device) is not archived: it is in the live store (outlawctl batch show \(device) \(id))")
                }
                throw StoreError("no batch \(id) from device \(device), live or archived")
            }
            guard !found.lines.isEmpty else {
                throw StoreError("\(found.file) holds batch \(id) from device \(device)" + (seq.map { " but no event with seq \($0)" } ?? " but none of its lines"))
            }
            for line in found.lines { print(line) }
        }
    }

    static func size(_ bytes: Int) -> String {
        bytes < 1 << 20 ? String(format: "%.1f KiB", Double(bytes) / 1024) : String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}
