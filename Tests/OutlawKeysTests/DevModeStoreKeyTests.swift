import Foundation
import OutlawConfig
import OutlawDev
import OutlawKeys
import OutlawStore
import OutlawTestSupport
import Testing

/// `outlawd --dev` makes its own store key, so personal keys are sealed in dev mode too and outlawctl, reading
/// the outlawd.toml dev mode writes, seals with the same key: the real binaries, as scripts/dev runs them,
/// started, checked and stopped with SIGTERM.
@Suite("Dev mode store key", .timeLimit(.minutes(3)))
struct DevModeStoreKeyTests {
    /// The build products folder (`.build/debug`), where `outlawd` sits beside the test runner.
    static var buildDirectory: String { Binaries.buildDirectory }

    /// This process's environment without what tests of other suites set in it for a moment (the environment is
    /// global): a daemon started meanwhile would send READY=1 to their notify socket.
    static var childEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter {
            !["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"].contains($0.key)
        }
    }

    /// Runs a binary to completion (output to a file, so a full pipe never blocks it). Blocking: callers wait for it
    /// with `offload`, since a blocked cooperative thread stalls every other test of the run.
    static func run(_ name: String, _ arguments: [String], stdin: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: buildDirectory + "/" + name)
        process.arguments = arguments
        process.environment = childEnvironment
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test(.timeLimit(.minutes(2)))
    func devModeWritesAnOwnerOnlyStoreKeyAndItsConfigurationNamesIt() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outlawd-devkey-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: Self.buildDirectory + "/outlawd")
        daemon.arguments = ["--dev", "--dev-dir", folder, "--listen", "127.0.0.1:0", "--sandbox-port", "0", "--log-target", "stderr"]
        daemon.environment = Self.childEnvironment
        daemon.standardOutput = FileHandle.nullDevice
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer {
            if daemon.isRunning { daemon.terminate() }
            daemon.waitUntilExit()
        }
        // outlawd.toml is written once the daemon listens.
        let configPath = folder + "/outlawd.toml"
        try await eventually("outlawd --dev to write \(configPath)", timeout: .seconds(90), every: .milliseconds(100)) { () throws -> Bool? in
            try #require(daemon.isRunning, "outlawd --dev exited with \(daemon.terminationStatus)")
            return FileManager.default.fileExists(atPath: configPath) ? true : nil
        }

        let keyFile = folder + "/secrets/store-key"
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int == 0o600)
        let text = try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(text.count == 64 && text.allSatisfy(\.isHexDigit))
        #expect(try String(contentsOfFile: configPath, encoding: .utf8).contains(#"key_file = "secrets/store-key""#))
        let configuration = try DaemonConfiguration.load(path: configPath)
        #expect(configuration.store.keyFile == keyFile)
        #expect(!configuration.store.allowUnsealedKeys)

        // Jane's demo key is sealed with it: readable with the store key, not without. One Store at a time: a
        // second one's open/close of the file would drop the first one's POSIX locks in this process.
        do {
            let withoutKey = try Store(path: configuration.store.path, opening: .currentSchemaOnly)
            let jane = try #require(try withoutKey.user(named: "jane"))
            #expect(throws: StoreError.self) { try withoutKey.signingKeys(userIDs: [jane.id]) }
        }
        let seal = try #require(try StoreKey.load(configuration, environment: [:]))
        let store = try Store(path: configuration.store.path, seal: seal, opening: .currentSchemaOnly)
        let jane = try #require(try store.user(named: "jane"))
        let janeKey = try #require(try store.signingKeys(userIDs: [jane.id])[jane.id]).key

        // outlawctl with dev mode's outlawd.toml takes a personal key (no allow_unsealed_keys needed) and seals it.
        #expect(try await offload { try Self.run("outlawctl", ["--config", configPath, "key", "set", "jane"], stdin: janeKey + "\n") } == 0)
        #expect(try store.signingKeys(userIDs: [jane.id])[jane.id]?.key == janeKey)

        daemon.terminate()
        _ = try await offload { daemon.waitUntilExit() }
        #expect(daemon.terminationStatus == 0)
        // A second start keeps the key: what the store holds stays readable.
        let again = Process()
        again.executableURL = daemon.executableURL
        again.arguments = daemon.arguments
        again.standardOutput = FileHandle.nullDevice
        again.standardError = FileHandle.nullDevice
        try FileManager.default.removeItem(atPath: configPath)
        try again.run()
        defer {
            if again.isRunning { again.terminate() }
            again.waitUntilExit()
        }
        try await eventually("outlawd --dev to start again", timeout: .seconds(90), every: .milliseconds(100)) { () throws -> Bool? in
            try #require(again.isRunning, "outlawd --dev exited with \(again.terminationStatus) on its second start")
            return FileManager.default.fileExists(atPath: configPath) ? true : nil
        }
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .newlines) == text)
        #expect(try store.signingKeys(userIDs: [jane.id])[jane.id]?.key == janeKey)
    }
}

/// `DevMode.prepare()` itself: the store key file, the configuration naming it, and a dev folder from before it.
@Suite("Dev mode prepare and the store key", .timeLimit(.minutes(1)))
struct DevModePrepareTests {
    @Test func prepareMakesTheStoreKeyOnceAndSealsAnOlderFoldersPlainKeys() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("outlawd-devprep-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A dev folder from before dev mode had a store key: jane's key in the clear.
        do {
            let old = try Store(path: folder + "/outlawd.sqlite", pinRounds: 10_000)
            for user in DevMode.users { try old.addUser(name: user.name, role: user.role, pin: user.pin, actor: "test") }
            try old.setUserKey(user: "jane", key: "jane-metrc-key-0001", status: .ok, actor: "test")
        }
        let dev = DevMode(folder: folder)
        var (config, _) = try dev.prepare()
        config.metrc.baseURL = "http://127.0.0.1:8090"   // as startSandbox sets it
        let keyFile = folder + "/secrets/store-key"
        #expect(config.store.keyFile == keyFile)
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int == 0o600)
        let text = try String(contentsOfFile: keyFile, encoding: .utf8)
        #expect(text.count == 65 && text.hasSuffix("\n") && text.dropLast().allSatisfy(\.isHexDigit))

        try dev.writeConfiguration(config, port: 7420)
        let written = try DaemonConfiguration.load(path: dev.configPath)
        #expect(written.store.keyFile == keyFile)
        let seal = try #require(try StoreKey.load(written, environment: [:]))
        do {
            let store = try Store(path: written.store.path, seal: seal)
            let jane = try #require(try store.user(named: "jane"))
            #expect(try store.signingKeys(userIDs: [jane.id])[jane.id]?.key == "jane-metrc-key-0001")
            #expect(try store.sealPlainKeys() == 0, "sealed by prepare already")
        }
        do {
            let withoutKey = try Store(path: written.store.path)
            let jane = try #require(try withoutKey.user(named: "jane"))
            #expect(throws: StoreError.self) { try withoutKey.signingKeys(userIDs: [jane.id]) }
        }

        // Never replaced: the keys in the store were sealed with it.
        let (again, _) = try dev.prepare()
        #expect(again.store.keyFile == keyFile)
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8) == text)
    }
}
