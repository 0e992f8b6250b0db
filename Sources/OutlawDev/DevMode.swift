import Foundation
import MetrcSandbox
import OutlawConfig
import OutlawDaemon
import OutlawStore

/// `outlawd --dev`: a store under ./.outlawd/, a demo device and demo users, an embedded Metrc sandbox, and a
/// real `outlawd.toml` beside them so `outlawctl --config` reaches the same store.
public struct DevMode: Sendable {
    public static let deviceName = "HH-DEMO"
    /// Demo users and their PINs (dev mode only; a real site sets PINs with outlawctl).
    public static let users: [(name: String, role: Role, pin: String)] = [
        ("admin", .admin, "0000"), ("jane", .user, "1234"), ("john", .user, "5678"),
    ]

    /// The dev folder as the user named it (for the printed commands) and as an absolute path.
    public let folder: String
    public let directory: URL
    public var configPath: String { directory.appendingPathComponent("outlawd.toml").path }
    var tokenFile: URL { directory.appendingPathComponent("demo-device-token") }

    public init(folder: String = ".outlawd") {
        self.folder = folder
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        directory = URL(fileURLWithPath: folder, relativeTo: cwd).standardizedFileURL
    }

    /// Creates the folder (owner-only), the store, the store key, the demo device and users and the Metrc key
    /// files on first use; returns the configuration to run with (ports not yet bound) and the demo device's token.
    public func prepare(listenHost: String = "127.0.0.1", listenPort: Int = 7420) throws -> (DaemonConfiguration, String) {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // An existing folder from an older version may be world-readable; it holds the store and keys.
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory.path)
        var config = DaemonConfiguration()
        config.file = configPath
        config.server.host = listenHost
        config.server.port = listenPort
        config.store.path = directory.appendingPathComponent("outlawd.sqlite").path
        config.metrc.vendorKeyFile = try writeSecret("secrets/vendor-key", SandboxDemo.vendorKey)
        config.metrc.defaultKeyFile = try writeSecret("secrets/default-key", SandboxDemo.ownerKey)
        // Personal keys are sealed in dev mode too, as a real site's are (no allow_unsealed_keys needed).
        let (keyFile, seal) = try storeKey()
        config.store.keyFile = keyFile

        let store = try Store(path: config.store.path, seal: seal)
        // A dev store from before dev mode had a store key holds jane's key in the clear.
        try store.sealPlainKeys()
        // The token is shown once in production; in dev mode it is kept beside the store so every run can print it.
        var token = (try? String(contentsOf: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let known = try store.devices().contains { $0.name == DevMode.deviceName }
        if known && token.isEmpty {
            throw StoreError("\(tokenFile.path) is missing; delete \(directory.path) to start the demo over")
        }
        if !known {
            token = try store.addDevice(name: DevMode.deviceName, actor: "outlawd --dev")
            _ = try writeSecret("demo-device-token", token)
        }
        let existing = Set(try store.users().map(\.name))
        for user in DevMode.users where !existing.contains(user.name) {
            try store.addUser(name: user.name, role: user.role, pin: user.pin, actor: "outlawd --dev")
            // Jane has her own Metrc key (Metrc shows her); John has none, so the Default key signs for him.
            if user.name == "jane" {
                try store.setUserKey(user: "jane", key: SandboxDemo.janeKey, status: .ok, actor: "outlawd --dev")
            }
        }
        return (config, token)
    }

    /// Starts the embedded Metrc sandbox on `port` (8090 by default; any free port if that one is taken, or
    /// if `port` is 0) and points the configuration at it.
    public func startSandbox(port: Int, config: inout DaemonConfiguration) async throws -> MetrcSandboxServer {
        let sandbox = MetrcSandboxServer(state: .demo())
        let bound: Int
        do {
            bound = try await sandbox.start(host: "127.0.0.1", port: port)
        } catch {
            bound = try await sandbox.start(host: "127.0.0.1", port: 0)
        }
        config.metrc.baseURL = "http://127.0.0.1:\(bound)"
        return sandbox
    }

    /// Writes `outlawd.toml` for the running daemon (the real device port once bound), so outlawctl and
    /// scripts read the same store and the same Metrc as the daemon.
    public func writeConfiguration(_ config: DaemonConfiguration, port: Int) throws {
        let text = """
            # Written by `outlawd --dev` each time it starts; edits are overwritten. Use it with
            # outlawctl --config \(folder)/outlawd.toml status
            [server]
            listen = "\(config.server.host):\(port)"

            [store]
            path = "outlawd.sqlite"
            \(config.store.keyFile.map { "key_file = \"\(relativeToFolder($0))\"" } ?? "")

            [facility]
            license = "\(config.facility.license)"
            require_personal_keys = \(config.facility.requirePersonalKeys)

            [metrc]
            base_url = "\(config.metrc.baseURL ?? "")"
            vendor_key_file = "secrets/vendor-key"
            default_key_file = "secrets/default-key"

            """
        try DevMode.writeOwnerOnly(text, to: configPath)
    }

    /// The text printed once the daemon listens: how to talk to it by hand.
    public func banner(config: DaemonConfiguration, port: Int, token: String) -> String {
        let host = config.server.host
        let hello = #"{"op":"hello","proto":1,"device":"\#(DevMode.deviceName)","token":"\#(token)","firmware":"dev"}"#
        let batch = #"{"op":"batch","id":"demo-1","user":"jane","events":[{"seq":1,"type":"plant.move","at":"2026-11-28T14:03:11-08:00","plant":"1A4FF0100000022000000001","location":"Flower Room 1"}]}"#
        return """
        outlawd --dev
          config:       \(folder)/outlawd.toml
          store:        \(config.store.path)
          devices:      \(host):\(port)
          demo device:  \(DevMode.deviceName)
          device token: \(token)
          web console:  \(consoleLine(config))
          Metrc sandbox: \(config.metrc.baseURL ?? "")  (see who did what: curl \(config.metrc.baseURL ?? "")/_sandbox/writes)
          demo users:   \(DevMode.users.map { "\($0.name) (\($0.role.rawValue), PIN \($0.pin))" }.joined(separator: ", "))
                        jane signs with her own Metrc key; john and admin fall back to the facility's Default key

        Look at it with the operator tool (in another terminal):
          swift run outlawctl --config \(folder)/outlawd.toml status

        Send a batch by hand (bash):
          exec 3<>/dev/tcp/\(host)/\(port)
          printf '%s\\n' '\(hello)' '\(batch)' '{"op":"bye"}' >&3
          cat <&3

        Or run a simulated shift: scripts/demo

        """
    }

    static let storeKeyFile = "secrets/store-key"

    /// The store key file, made on first use (32 random bytes as 64 hex characters, owner-only) and never
    /// replaced afterwards: the keys in the store are sealed with it.
    func storeKey() throws -> (path: String, seal: KeySeal) {
        let path = directory.appendingPathComponent(DevMode.storeKeyFile).path
        if !FileManager.default.fileExists(atPath: path) {
            var rng = SystemRandomNumberGenerator()
            let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &rng)) }.joined()
            _ = try writeSecret(DevMode.storeKeyFile, hex)
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        guard let data = FileManager.default.contents(atPath: path), let seal = KeySeal(text: String(decoding: data, as: UTF8.self)) else {
            throw StoreError("\(path) must hold 32 bytes as 64 hex characters; delete \(directory.path) to start the demo over")
        }
        return (path, seal)
    }

    /// A path inside the dev folder as outlawd.toml names it (relative to the file's folder); others as they are.
    func relativeToFolder(_ path: String) -> String {
        let base = directory.path + "/"
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
    }

    private func writeSecret(_ name: String, _ value: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try DevMode.writeOwnerOnly(value + "\n", to: path)
        return path
    }

    /// Writes a file readable by its owner only, from its first byte (no window where it is 0644).
    static func writeOwnerOnly(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        _ = fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += n
        }
    }
}
