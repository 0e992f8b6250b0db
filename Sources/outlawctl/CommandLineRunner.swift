import ArgumentParser
import Foundation
import OutlawConfig
import OutlawKeys
import OutlawStore

/// Runs a command with outlawctl's exit codes: 0 ok, 1 operation failed, 2 usage or configuration error.
enum CommandLineRunner {
    static func run(_ root: any ParsableCommand.Type) {
        var command: any ParsableCommand
        do {
            command = try root.parseAsRoot(hoistingConfig(Array(CommandLine.arguments.dropFirst())))
        } catch {
            let code = root.exitCode(for: error)
            if code == .success {
                root.exit(withError: error)
            }
            fail(root.fullMessage(for: error), code: 2)
        }
        do {
            try command.run()
        } catch let error as ConfigError {
            fail("outlawctl: \(error)", code: 2)
        } catch let error as UsageError {
            fail("outlawctl: \(error.message)", code: 2)
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch let error as StoreError {
            fail("outlawctl: \(error)", code: 1)
        } catch {
            // `--help` arrives here as a parsed help command that "throws" its request; ArgumentParser prints it.
            switch root.exitCode(for: error) {
            case .success: root.exit(withError: error)
            case .validationFailure: fail(root.fullMessage(for: error), code: 2)
            default: fail("outlawctl: \(error)", code: 1)
            }
        }
    }

    /// `outlawctl --config F device list` works as well as `outlawctl device list --config F`:
    /// a `--config` before the subcommand is moved after it, where the subcommand's option group reads it.
    static func hoistingConfig(_ arguments: [String]) -> [String] {
        var args = arguments
        var moved: [String] = []
        while let first = args.first, first.hasPrefix("--config") {
            if first == "--config", args.count >= 2 {
                moved += [args[0], args[1]]
                args.removeFirst(2)
            } else if first.hasPrefix("--config=") {
                moved.append(args.removeFirst())
            } else {
                break
            }
        }
        return args + moved
    }

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        Foundation.exit(code)
    }
}

/// A mistake in how the command was called, found after parsing (exit code 2).
struct UsageError: Error {
    let message: String
}

/// `--config`, shared by every subcommand.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "outlawd's configuration file.")
    var config: String = "/etc/outlawd/outlawd.toml"

    func load() throws -> DaemonConfiguration {
        try DaemonConfiguration.load(path: config)
    }

    /// Opens the store the daemon uses; the daemon may be running (SQLite WAL lets both work).
    func openStore() throws -> Store {
        let configuration = try load()
        do {
            // Only the daemon migrates: a store of another schema is refused, never changed.
            return try Store(path: configuration.store.path, pinRounds: configuration.store.pinHashRounds,
                             seal: try StoreKey.load(configuration), opening: .currentSchemaOnly)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot open the store at \(configuration.store.path): \(error)")
        }
    }
}

/// Who is running outlawctl, for the audit table: the sudo caller when there is one.
func operatorName() -> String {
    let env = ProcessInfo.processInfo.environment
    if let sudo = env["SUDO_USER"], !sudo.isEmpty { return sudo }
    if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
    return env["USER"] ?? "unknown"
}

/// Reads a secret (PIN) from stdin: without echo at a terminal, else the first line.
func readSecret(prompt: String) throws -> String {
    if isatty(STDIN_FILENO) == 1 {
        guard let p = getpass(prompt) else { throw UsageError(message: "no PIN given") }
        return String(cString: p)
    }
    guard let line = readLine(strippingNewline: true) else { throw UsageError(message: "expected the PIN on stdin") }
    return line.trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// Formats rows as aligned columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}

func formatDate(_ date: Date?) -> String {
    guard let date else { return "-" }
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: date)
}
