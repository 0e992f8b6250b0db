import Foundation
import NIOSSL
import OutlawConfig
import OutlawKeys
import OutlawStore

/// The device port's TLS as the daemon loads it: the certificate chain (PEM) and its private key, the systemd
/// credential `outlawd-tls-key` when there is one, else `server.tls_key_file`. `outlawd --check-config` loads the same.
enum DeviceTLS {
    /// The TLS context devices get; nil without `server.tls_certificate_file`.
    static func context(_ configuration: DaemonConfiguration, environment: [String: String]) throws(ConfigError) -> NIOSSLContext? {
        guard let tlsConfiguration = try serverConfiguration(configuration, environment: environment) else { return nil }
        do {
            return try NIOSSLContext(configuration: tlsConfiguration)
        } catch {
            throw ConfigError(file: configuration.file ?? "configuration", key: "server.tls_certificate_file",
                              problem: "cannot load the TLS certificate or key (does the key belong to the certificate?): \(error)")
        }
    }

    /// The server side of TLS 1.2 or newer with the daemon's certificate and key: the device port's and the web
    /// console's. Nil without `server.tls_certificate_file`.
    static func serverConfiguration(_ configuration: DaemonConfiguration, environment: [String: String]) throws(ConfigError) -> TLSConfiguration? {
        guard let certificate = configuration.server.tlsCertificateFile else { return nil }
        let chain = try certificateChain(certificate, file: configuration.file)
        let key = try privateKey(configuration, environment: environment)
        var tlsConfiguration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { NIOSSLCertificateSource.certificate($0) }, privateKey: .privateKey(key))
        tlsConfiguration.minimumTLSVersion = .tlsv12
        return tlsConfiguration
    }

    /// The web console's TLS: its own certificate and key when `[console]` names them (dev mode's), else the device port's.
    static func consoleConfiguration(_ configuration: DaemonConfiguration, environment: [String: String]) throws(ConfigError) -> TLSConfiguration? {
        guard let certificate = configuration.console.tlsCertificateFile, let keyPath = configuration.console.tlsKeyFile else {
            return try serverConfiguration(configuration, environment: environment)
        }
        let chain = try certificateChain(certificate, file: configuration.file)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ConfigError(file: configuration.file ?? "configuration", key: "console.tls_key_file", problem: "\(keyPath) is not a PEM private key: \(error)")
        }
        var tlsConfiguration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { NIOSSLCertificateSource.certificate($0) }, privateKey: .privateKey(key))
        tlsConfiguration.minimumTLSVersion = .tlsv12
        return tlsConfiguration
    }

    static func certificateChain(_ path: String, file: String?) throws(ConfigError) -> [NIOSSLCertificate] {
        let fail = { (problem: String) in ConfigError(file: file ?? "configuration", key: "server.tls_certificate_file", problem: problem) }
        if let unreadable = unreadable(path) { throw fail("\(path) \(unreadable)") }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw fail("\(path) is not a PEM certificate: \(error)")
        }
        guard !chain.isEmpty else { throw fail("\(path) holds no PEM certificate") }
        return chain
    }

    /// Where the private key is read from, and the name to use in messages.
    static func keyFile(_ configuration: DaemonConfiguration, environment: [String: String]) throws(ConfigError) -> (path: String, key: String) {
        if let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty, FileManager.default.fileExists(atPath: dir + "/outlawd-tls-key") {
            return (dir + "/outlawd-tls-key", "credential outlawd-tls-key")
        }
        guard let path = configuration.server.tlsKeyFile else {
            throw ConfigError(file: configuration.file ?? "configuration", key: "server.tls_key_file",
                              problem: "TLS needs its private key: the outlawd-tls-key credential or server.tls_key_file")
        }
        return (path, "server.tls_key_file")
    }

    static func privateKey(_ configuration: DaemonConfiguration, environment: [String: String]) throws(ConfigError) -> NIOSSLPrivateKey {
        let (path, key) = try keyFile(configuration, environment: environment)
        let fail = { (problem: String) in ConfigError(file: configuration.file ?? "configuration", key: key, problem: problem) }
        if let unreadable = unreadable(path) { throw fail("\(path) \(unreadable)") }
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            throw fail("\(path) is not a PEM private key: \(error)")
        }
    }

    /// The refusal of plain TCP beyond this machine, unless `server.allow_plaintext`.
    static func plaintextRefusal(_ configuration: DaemonConfiguration) -> ConfigError {
        ConfigError(file: configuration.file ?? "configuration", key: "server.tls_certificate_file",
                    problem: "devices would connect without TLS on a network address (device tokens and PINs in clear): configure TLS, or set server.allow_plaintext = true")
    }

    /// Why `path` cannot be read, or nil when it can.
    static func unreadable(_ path: String) -> String? {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return "does not exist" }
        if isFolder.boolValue { return "is a folder, not a file" }
        return FileManager.default.isReadableFile(atPath: path) ? nil : "cannot be read (permissions?)"
    }
}

/// `outlawd --check-config`: the configuration file and everything it names, loaded as the daemon loads them, without
/// opening the store or listening. Problems keep the daemon from starting; warnings name what it runs without.
public struct ConfigCheck: Sendable {
    /// "FILE: KEY: problem", one per problem.
    public var problems: [String] = []
    /// What the daemon starts without (Metrc's address or keys, a store key) or warns about at every start.
    public var warnings: [String] = []

    public var ok: Bool { problems.isEmpty }

    /// Checks an already parsed configuration (a parse error is the caller's one line).
    public static func run(_ configuration: DaemonConfiguration,
                           environment: [String: String] = ProcessInfo.processInfo.environment) -> ConfigCheck
    {
        var check = ConfigCheck()
        let file = configuration.file ?? "configuration"
        let s = configuration.server

        // Devices: TLS files as the daemon loads them; plain TCP only on loopback unless allowed. Under systemd the
        // socket unit decides where the daemon listens: this judges server.listen.
        if let certificate = s.tlsCertificateFile {
            var loaded = true
            do { _ = try DeviceTLS.certificateChain(certificate, file: configuration.file) } catch { check.problems.append("\(error)"); loaded = false }
            do { _ = try DeviceTLS.privateKey(configuration, environment: environment) } catch { check.problems.append("\(error)"); loaded = false }
            if loaded {
                do { _ = try DeviceTLS.context(configuration, environment: environment) } catch { check.problems.append("\(error)") }
            }
        } else if !DaemonConfiguration.isLoopback(s.host) {
            if s.allowPlaintext {
                check.warnings.append("\(file): server.allow_plaintext: devices connect WITHOUT TLS on \(s.host): device tokens, PINs and tickets cross the network in clear")
            } else {
                check.problems.append("\(DeviceTLS.plaintextRefusal(configuration))")
            }
        }
        // The web console is HTTPS only (its session cookies are Secure): asked for without a certificate, it is not served.
        if configuration.console.enabled, configuration.console.tlsCertificateFile != nil {
            do { _ = try DeviceTLS.consoleConfiguration(configuration, environment: environment) } catch { check.problems.append("\(error)") }
        } else if configuration.console.enabled, configuration.console.listenGiven, s.tlsCertificateFile == nil {
            check.warnings.append("\(file): console.listen: the web console needs TLS (server.tls_certificate_file and its key): it is not served without them")
        }
        if !s.requireLoginTicket {
            check.warnings.append("\(file): server.require_login_ticket: false: a device can name any user as a batch's collector")
        }

        // The store: its key as the daemon loads it, and a folder the daemon can write.
        do {
            if try StoreKey.load(configuration, environment: environment) == nil {
                check.warnings.append("\(file): store.key_file: no store key (store.key_file or the credential outlawd-store-key): personal Metrc keys are "
                    + (configuration.store.allowUnsealedKeys ? "kept UNSEALED in the store (store.allow_unsealed_keys)" : "refused"))
            }
        } catch {
            check.problems.append("\(error)")
        }
        let storeProblem = storeFolderProblem(configuration.store.path)
        if let problem = storeProblem {
            check.problems.append("\(file): store.path: \(problem)")
        }
        // The daemon's own backups go where it can write (under ProtectSystem=strict, inside its StateDirectory).
        if let dir = configuration.backup.dir, let problem = folderProblem(dir) {
            check.problems.append("\(file): backup.dir: \(problem)")
        }
        // So do the retention archives (default: `archives` beside the store), also when retention is off: a run
        // still finishes what an earlier one left half done. Beside a store whose folder is already refused, the same
        // cause is said once.
        if configuration.retention.archiveDir != nil || storeProblem == nil,
           let problem = folderProblem(configuration.retention.archiveFolder(storePath: configuration.store.path)) {
            check.problems.append("\(file): retention.archive_dir: \(problem)")
        }

        // Metrc: a key file that is there but unusable is a problem; one missing or empty is what a fresh
        // installation has (the daemon then stores and acknowledges, and says what it waits for): a warning.
        let credentials = MetrcCredentials.load(configuration, environment: environment)
        for location in [credentials.vendorKeyLocation, credentials.defaultKeyLocation].compactMap({ $0 }) {
            guard let path = location.path, case .unreadable(let why) = KeyFileContent.read(path) else { continue }
            check.problems.append("\(file): \(location.fromCredentials ? "credential " + location.credential : location.setting): \(path) \(why)")
        }
        check.warnings += credentials.uploadGaps(configuration).map(\.message)
        return check
    }

    /// Why the daemon cannot write its backups (or archives) in `folder`: it must exist or be creatable, and be writable.
    static func folderProblem(_ folder: String) -> String? {
        var isFolder: ObjCBool = false
        var existing = folder
        while !FileManager.default.fileExists(atPath: existing, isDirectory: &isFolder) {
            let parent = (existing as NSString).deletingLastPathComponent
            if parent == existing || parent.isEmpty { break }
            existing = parent
        }
        guard isFolder.boolValue else { return "\(existing) is not a folder, so \(folder) cannot be made" }
        guard access(existing, W_OK | X_OK) == 0 else {
            let why = String(cString: strerror(errno))
            return existing == folder ? "\(folder) is not writable: \(why)" : "\(folder) does not exist and cannot be made in \(existing): \(why)"
        }
        return nil
    }

    /// Why the store cannot be created or opened at `path`: its folder must exist or be creatable, and be writable.
    /// (`access` also answers for read-only mounts, e.g. a path outside the unit's StateDirectory under ProtectSystem=strict.)
    static func storeFolderProblem(_ path: String) -> String? {
        let folder = (path as NSString).deletingLastPathComponent
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
            if isFolder.boolValue { return "\(path) is a folder, not the store's file" }
            if access(path, R_OK | W_OK) != 0 { return "\(path) cannot be read and written: \(String(cString: strerror(errno)))" }
        }
        // The nearest folder that exists: the store's own, or the one its folder would be created in.
        var existing = folder.isEmpty ? "/" : folder
        while !FileManager.default.fileExists(atPath: existing, isDirectory: &isFolder) {
            let parent = (existing as NSString).deletingLastPathComponent
            if parent == existing || parent.isEmpty { break }
            existing = parent
        }
        guard isFolder.boolValue else { return "\(existing) is not a folder, so the store's folder \(folder) cannot be made" }
        if access(existing, W_OK | X_OK) != 0 {
            let why = String(cString: strerror(errno))
            return existing == folder
                ? "the store's folder \(folder) is not writable: \(why)"
                : "the store's folder \(folder) does not exist and cannot be made in \(existing): \(why)"
        }
        return nil
    }
}
