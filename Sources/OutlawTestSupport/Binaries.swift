import Foundation

/// Finds the project's built executables next to the running test bundle.
public enum Binaries {
    /// The build products folder (e.g. `.build/debug`), found from the test runner's own path.
    public static var buildDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The runner is .build/debug/outlawdPackageTests.xctest (a file on Linux); walk up until outlawd is beside us.
        for _ in 0..<4 {
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("outlawd").path) { return url.path }
            url.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: exe).deletingLastPathComponent().path
    }

    public static func path(_ name: String) -> String { buildDirectory + "/" + name }

    public static func exists(_ name: String) -> Bool { FileManager.default.isExecutableFile(atPath: path(name)) }
}

/// The result of running a command to completion.
public struct CommandResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs a program to completion with optional stdin, capturing its output.
public func runCommand(_ executable: String, _ arguments: [String], stdin: String? = nil,
                       environment: [String: String]? = nil) async throws -> CommandResult
{
    try await offload { try blockingRunCommand(executable, arguments, stdin: stdin, environment: environment) }
}

func blockingRunCommand(_ executable: String, _ arguments: [String], stdin: String? = nil,
                        environment: [String: String]? = nil) throws -> CommandResult
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
    let group = DispatchGroup()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    Thread.detachNewThread {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}
