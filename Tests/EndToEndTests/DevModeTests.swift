import Foundation
import OutlawTestSupport
import Testing

/// `outlawd --dev` as a new user meets it: a batch reaches the embedded sandbox, outlawctl finds the daemon
/// through the outlawd.toml dev mode wrote, and nothing it created is readable by others.
@Suite("Dev mode", .timeLimit(.minutes(5)))
struct DevModeTests {
    @Test func aBatchReachesTheSandboxAndOutlawctlSeesItThroughTheWrittenConfig() async throws {
        let daemon = try await DaemonProcess(devIn: nil)
        try await daemon.whileRunning { daemon in
            let dev = daemon.directory.file(".outlawd")
            let token = try String(contentsOfFile: dev + "/demo-device-token", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let (client, welcome) = try await daemon.session(device: "HH-DEMO", token: token)
            #expect(welcome["op"] as? String == "welcome")
            // Dev mode keeps the production default: a batch carries its collector's login ticket.
            let login = try await client.login("jane", pin: "1234")
            #expect(login["ok"] as? Bool == true && login["ticket"] is String, "\(login)")
            try client.send(json: ["op": "batch", "id": "dev-1", "user": "jane", "events": [
                ["seq": 1, "type": "plant.move", "at": ISO8601DateFormatter().string(from: Date()), "plant": "1A4FF0100000022000000001",
                 "location": "Flower Room 1"],
            ]])
            let ack = try await client.readJSON()
            #expect(ack["op"] as? String == "ack", "\(ack)")

            // The same config outlawctl is told to use in the banner: it reaches the daemon's store.
            #expect(daemon.log.contains("outlawctl --config \(dev)/outlawd.toml status"))
            var shown: [String: Any] = [:]
            try await eventually("dev-1 uploaded", timeout: .seconds(60), every: .milliseconds(200), detail: { "\(shown)" }) { () -> Bool? in
                let status = try await daemon.ctl(["status", "--json"])
                #expect(status.status == 0, "\(status.stderr)")
                shown = (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]) ?? [:]
                return (shown["queue"] as? [String: Any])?["uploaded"] as? Int == 1 ? true : nil
            }
            #expect(shown["daemonRunning"] as? Bool == true)

            // The embedded sandbox recorded the move under jane's own Metrc user.
            let config = try String(contentsOfFile: daemon.configPath, encoding: .utf8)
            let baseURL = try #require(config.split(separator: "\n").first { $0.hasPrefix("base_url") }?
                .split(separator: "\"").dropFirst().first.map(String.init))
            let writes = try await runCommand("/usr/bin/curl", ["-sf", baseURL + "/_sandbox/writes"])
            #expect(writes.status == 0)
            let log = try JSONSerialization.jsonObject(with: Data(writes.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(log.count == 1)
            #expect(log.first?["userName"] as? String == "jane", "\(writes.stdout)")
            #expect(writes.stdout.contains("1A4FF0100000022000000001"))

            #expect(await daemon.stop() == 0)
        }
    }

    @Test func everyFileDevModeCreatesIsOwnerOnly() async throws {
        let daemon = try await DaemonProcess(devIn: nil)
        let dev = daemon.directory.file(".outlawd")
        #expect(await daemon.stop() == 0)
        let files = try FileManager.default.subpathsOfDirectory(atPath: dev).map { dev + "/" + $0 } + [dev]
        #expect(files.contains(dev + "/outlawd.sqlite"))
        #expect(files.contains(dev + "/secrets/vendor-key"))
        #expect(files.contains(dev + "/demo-device-token"))
        for file in files {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int)
            #expect(mode & 0o077 == 0, "\(file) is \(String(mode, radix: 8))")
        }
    }
}
