import ArgumentParser
import Foundation
import Metrc
import OutlawKeys
import OutlawStore

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Set, clear and list users' personal Metrc API keys.",
        subcommands: [Set.self, Clear.self, List.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a user's personal Metrc key (read from stdin); checked with Metrc first.",
            discussion: "A key Metrc refuses is not stored (exit 1). When Metrc cannot be reached the key is stored unverified; the first upload tells.")
        @OptionGroup var options: ConfigOptions
        @Argument var user: String

        func run() throws {
            let key = try readSecret(prompt: "Metrc API key for \(user): ").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !key.isEmpty else { throw UsageError(message: "expected the key on stdin") }
            let configuration = try options.load()
            let store = try options.openStore()
            guard try store.user(named: user) != nil else { throw StoreError("no user named \(user)") }
            let credentials = MetrcCredentials.load(configuration)
            let client = credentials.vendorKey.flatMap { key in configuration.metrc.baseURL.map { (key, $0) } }.map {
                MetrcClient(configuration: MetrcClientConfiguration(baseURL: $0.1, vendorKey: $0.0,
                                                                    requestTimeout: min(configuration.metrc.requestTimeoutSeconds, 20)))
            }
            let service = KeyService(store: store, client: client, requirePersonalKeys: configuration.facility.requirePersonalKeys,
                                     allowUnsealedKeys: configuration.store.allowUnsealedKeys)
            // The client is shut down whatever happens: AsyncHTTPClient traps on a client dropped while running.
            let result = Result { try blocking { try await service.set(user: user, key: key, actor: operatorName()) } }
            try? blocking { try await client?.shutdown() }
            let outcome = try result.get()
            switch outcome {
            case .rejected:
                throw StoreError("Metrc refused this key (…\(key.suffix(4))); nothing was stored")
            case .stored(let verified):
                print("key …\(key.suffix(4)) set for \(user)" + (verified ? " (checked with Metrc)" : " (not checked: Metrc unreachable)"))
            }
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user's personal key: the Default key signs for them again.")
        @OptionGroup var options: ConfigOptions
        @Argument var user: String

        func run() throws {
            try options.openStore().clearUserKey(user: user, actor: operatorName())
            print("personal key of \(user) removed")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List personal keys and the Default key (last 4 characters only): last check, expected expiry.",
            discussion: """
                The daemon checks every key with Metrc every [keys] check_interval_hours. A key is expected to expire \
                [keys] lifetime_days after the day it was set (the Default key: after the day outlawd first used it).
                """)
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "JSON output.") var json = false

        /// One key (OutlawKeys' `KeyRow`, which the web console shows too).
        typealias Row = KeyRow

        func run() throws {
            let policy = KeyHealthPolicy(try options.load().keys)
            let rows = try keyRows(options.openStore(), policy: policy, now: Date())
            if json { return try printJSON(rows) }
            print(table(["USER", "KIND", "KEY", "STATUS", "SET", "BY", "LAST CHECK", "RESULT", "EXPECTED EXPIRY"], rows.map { row in
                [row.user ?? "(others)", row.kind, "…" + row.last4, row.status, formatDate(row.setAt), row.setBy, formatDate(row.lastCheckAt),
                 row.lastCheckResult ?? "-", row.expectedExpiry + (row.expiring ? " (soon: set a new key)" : "")]
            }))
        }
    }
}

/// Every personal key, then the Default key as the daemon last recorded it.
func keyRows(_ store: Store, policy: KeyHealthPolicy, now: Date) throws -> [KeyCommand.List.Row] {
    try KeyRow.all(store, policy: policy, now: now)
}

/// `outlawctl status`'s key line: keys Metrc refuses, and keys within `warn_days` of their expected expiry.
struct KeyCounts: Encodable {
    let personal: Int
    let rejected: Int
    let expiring: Int
    /// Users whose key is rejected or expiring; "Default" for the Default key.
    let rejectedKeys: [String]
    let expiringKeys: [String]
    let warnDays: Int

    /// From the store, with `[keys]` of the configuration `options` names.
    static func load(_ options: ConfigOptions, store: Store, now: Date = Date()) throws -> KeyCounts {
        let keys = try options.load().keys
        return KeyCounts(try keyRows(store, policy: KeyHealthPolicy(keys), now: now), warnDays: keys.warnDays)
    }

    /// "12 personal; 1 rejected (jane); 2 expiring within 14 days (bob, Default)".
    var summary: String {
        func names(_ list: [String]) -> String { list.isEmpty ? "" : " (\(list.joined(separator: ", ")))" }
        return "\(personal) personal; \(rejected) rejected\(names(rejectedKeys)); \(expiring) expiring within \(warnDays) days\(names(expiringKeys))"
    }

    init(_ rows: [KeyCommand.List.Row], warnDays: Int) {
        personal = rows.filter { $0.kind == "personal" }.count
        rejectedKeys = rows.filter { $0.status == KeyStatus.rejected.rawValue }.map { $0.user ?? "Default" }
        expiringKeys = rows.filter(\.expiring).map { $0.user ?? "Default" }
        rejected = rejectedKeys.count
        expiring = expiringKeys.count
        self.warnDays = warnDays
    }
}

/// Runs async work from a synchronous command (outlawctl is a short-lived, single-threaded tool).
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do { box.set(.success(try await body())) } catch { box.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try box.get()
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?

    func set(_ r: Result<T, any Error>) {
        lock.lock()
        result = r
        lock.unlock()
    }

    func get() throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try result!.get()
    }
}
