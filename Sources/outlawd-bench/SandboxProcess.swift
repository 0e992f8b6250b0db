import Foundation
import MetrcSandbox
import OutlawTestSupport

/// The Metrc sandbox as a process of its own (the build's `metrc-sandbox`, demo state plus seeded plants and
/// packages), so that its CPU is read from /proc apart from outlawd's and the bench's. Controlled over its HTTP
/// control API (`/_sandbox/...`) with curl.
final class SandboxProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let plants: Int
    let packages: Int

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var pid: Int32 { process.processIdentifier }

    private init(process: Process, port: Int, plants: Int, packages: Int) {
        self.process = process
        self.port = port
        self.plants = plants
        self.packages = packages
    }

    /// Starts `metrc-sandbox --demo` with `plants` plants and `packages` packages seeded at `EventMix.license`
    /// (tags `EventMix.seededPlantTag(0..<plants)`, plant `i` flowering when `i` is odd), at Metrc's own GET limits.
    static func start(plants: Int, packages: Int) async throws -> SandboxProcess {
        let executable = Binaries.path("metrc-sandbox")
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw BenchError("\(executable) is missing: build it in the same configuration (scripts/bench does)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--port", "0", "--demo", "--seed-plants", String(plants), "--seed-packages", String(packages),
                             "--seed-license", EventMix.license, "--log-level", "warning"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.standardError
        try process.run()
        // Seeding comes before listening: a million records take a while in a debug build.
        let port: Int? = try await offload {
            var text = ""
            let reader = pipe.fileHandleForReading
            while true {
                let data = reader.availableData
                if data.isEmpty { return nil }
                text += String(decoding: data, as: UTF8.self)
                for line in text.split(separator: "\n") where line.hasPrefix("port=") {
                    // Keep reading the pipe on a thread of its own, so the sandbox never blocks on a full one.
                    Thread.detachNewThread { while !reader.availableData.isEmpty {} }
                    return Int(line.dropFirst(5))
                }
            }
        }
        guard let port else {
            process.waitUntilExit()
            throw BenchError("metrc-sandbox exited with \(process.terminationStatus) before listening")
        }
        let sandbox = SandboxProcess(process: process, port: port, plants: plants, packages: packages)
        let seeded = try await sandbox.control("GET", "health")
        guard seeded.contains("true") else { throw BenchError("metrc-sandbox health: \(seeded)") }
        return sandbox
    }

    /// Every write (PUT, POST, DELETE) answered `milliseconds` later; reads untouched.
    func delayWrites(milliseconds: Int) async throws {
        let faults = ["PUT", "POST", "DELETE"].map { SandboxFault.latency(milliseconds: milliseconds, method: $0) }
        let body = String(decoding: try JSONEncoder().encode(faults), as: UTF8.self)
        let answer = try await control("POST", "faults", body: body)
        guard answer.contains("latency") else { throw BenchError("metrc-sandbox faults: \(answer.prefix(300))") }
    }

    func control(_ method: String, _ route: String, body: String? = nil) async throws -> String {
        var arguments = ["-s", "-S", "--max-time", "60", "-X", method, "\(baseURL)/_sandbox/\(route)"]
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let result = try await runCommand("/usr/bin/curl", arguments)
        guard result.status == 0 else { throw BenchError("curl \(method) /_sandbox/\(route): \(result.stderr)") }
        return result.stdout
    }

    func cpuSeconds() -> Double? { ProcessFigures.cpuSeconds(pid: pid) }

    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        _ = try? await offload { self.process.waitUntilExit() }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
