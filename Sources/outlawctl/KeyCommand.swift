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
            let client = credentials.vendorKey.map {
                MetrcClient(configuration: MetrcClientConfiguration(baseURL: configuration.metrc.baseURL, vendorKey: $0,
                                                                    requestTimeout: min(configuration.metrc.requestTimeoutSeconds, 20)))
            }
            let service = KeyService(store: store, client: client, requirePersonalKeys: configuration.facility.requirePersonalKeys)
            let outcome = try blocking { try await service.set(user: user, key: key, actor: operatorName()) }
            try? blocking { try await client?.shutdown() }
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
        static let configuration = CommandConfiguration(abstract: "List personal keys (last 4 characters only).")
        @OptionGroup var options: ConfigOptions
        @Flag(name: .long, help: "JSON output.") var json = false

        func run() throws {
            let keys = try options.openStore().userKeys()
            if json { return try printJSON(keys) }
            print(table(["USER", "KEY", "STATUS", "SET", "BY"], keys.map {
                [$0.user, "…" + $0.last4, $0.status.rawValue, formatDate($0.setAt), $0.setBy]
            }))
        }
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
