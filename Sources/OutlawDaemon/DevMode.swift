import Foundation
import MetrcSandbox
import OutlawConfig
import OutlawStore

/// `outlawd --dev`: a store under ./.outlawd/, a demo device and demo users, ready to try by hand.
public enum DevMode {
    public static let deviceName = "HH-DEMO"
    /// Demo users and their PINs (dev mode only; a real site sets PINs with outlawctl).
    public static let users: [(name: String, role: Role, pin: String)] = [
        ("admin", .admin, "0000"), ("jane", .user, "1234"), ("john", .user, "5678"),
    ]

    /// The dev configuration, creating the folder, demo device and users on first use.
    /// Returns the configuration and the demo device's token.
    public static func prepare(folder: String = ".outlawd") throws -> (DaemonConfiguration, String) {
        let fm = FileManager.default
        let dir = URL(fileURLWithPath: folder, relativeTo: URL(fileURLWithPath: fm.currentDirectoryPath)).standardizedFileURL
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        var config = DaemonConfiguration()
        config.store.path = dir.appendingPathComponent("outlawd.sqlite").path
        config.file = "(dev defaults)"
        let store = try Store(path: config.store.path)
        // The token is shown once in production; in dev mode it is kept beside the store so every run can print it.
        let tokenFile = dir.appendingPathComponent("demo-device-token")
        var token = (try? String(contentsOf: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if try store.devices().contains(where: { $0.name == deviceName }) == false || token.isEmpty {
            if try store.devices().contains(where: { $0.name == deviceName }) {
                // The token file was lost: start the demo device over under a fresh store name is not possible, so re-add.
                throw StoreError("\(tokenFile.path) is missing; delete \(dir.path) to start the demo over")
            }
            token = try store.addDevice(name: deviceName, actor: "outlawd --dev")
            try token.write(to: tokenFile, atomically: true, encoding: .utf8)
            try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tokenFile.path)
        }
        let existing = Set(try store.users().map(\.name))
        for user in users where !existing.contains(user.name) {
            try store.addUser(name: user.name, role: user.role, pin: user.pin, actor: "outlawd --dev")
            // Jane has her own Metrc key (Metrc shows her); John has none, so the Default key signs for him.
            if user.name == "jane" {
                try store.setUserKey(user: "jane", key: SandboxDemo.janeKey, status: .ok, actor: "outlawd --dev")
            }
        }
        return (config, token)
    }

    /// Starts the embedded Metrc sandbox (port 8090, or any free port if taken) and returns it with the keys to use.
    public static func startSandbox(config: inout DaemonConfiguration) async throws -> (MetrcSandboxServer, MetrcCredentials) {
        let sandbox = MetrcSandboxServer(state: .demo())
        let port: Int
        do {
            port = try await sandbox.start(host: "127.0.0.1", port: 8090)
        } catch {
            port = try await sandbox.start(host: "127.0.0.1", port: 0)
        }
        config.metrc.baseURL = "http://127.0.0.1:\(port)"
        return (sandbox, MetrcCredentials(vendorKey: SandboxDemo.vendorKey, defaultKey: SandboxDemo.ownerKey,
                                          vendorKeySource: "embedded sandbox", defaultKeySource: "embedded sandbox"))
    }

    /// The text printed at start: how to talk to the demo daemon by hand.
    public static func banner(config: DaemonConfiguration, token: String) -> String {
        let host = config.server.host
        let port = config.server.port
        let hello = #"{"op":"hello","proto":1,"device":"\#(deviceName)","token":"\#(token)","firmware":"dev"}"#
        let batch = #"{"op":"batch","id":"demo-1","user":"jane","events":[{"seq":1,"type":"plant.move","at":"2026-11-28T14:03:11-08:00","plant":"1A4FF0100000022000000001","location":"Flower Room 1"}]}"#
        return """
        outlawd --dev
          store:        \(config.store.path)
          devices:      \(host):\(port)
          demo device:  \(deviceName)
          device token: \(token)
          Metrc sandbox: \(config.metrc.baseURL)  (see who did what: curl \(config.metrc.baseURL)/_sandbox/writes)
          demo users:   \(users.map { "\($0.name) (\($0.role.rawValue), PIN \($0.pin))" }.joined(separator: ", "))
                        jane signs with her own Metrc key; john and admin fall back to the facility's Default key

        Send a batch from another terminal (bash):
          exec 3<>/dev/tcp/\(host)/\(port)
          printf '%s\\n' '\(hello)' '\(batch)' '{"op":"bye"}' >&3
          cat <&3

        """
    }
}
