import Foundation
import OutlawTestSupport
import Testing

/// The `metrc-sandbox` executable as a tech runs it.
@Suite("metrc-sandbox binary", .timeLimit(.minutes(5)))
struct SandboxBinaryTests {
    @Test func startsWithDemoDataAndAnswersLikeMetrc() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("metrc-sandbox"))
        process.arguments = ["--port", "0", "--demo"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let reader = out.fileHandleForReading
        let port = try await offload { () -> Int in
            var text = ""
            while !text.contains("licenses:") {
                let data = reader.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("port=") }), let port = Int(line.dropFirst(5)) else {
                throw LineClient.Failure(description: "no port= line in: \(text)")
            }
            return port
        }
        let url = "http://127.0.0.1:\(port)/facilities/v2/"
        let ok = try await runCommand("/usr/bin/curl", ["-s", "-u", "sandbox-vendor-key:sandbox-jane-key", url])
        #expect(ok.stdout.contains("LIC-0001"))
        let refused = try await runCommand("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "sandbox-vendor-key:wrong", url])
        #expect(refused.stdout == "401")
    }
}
