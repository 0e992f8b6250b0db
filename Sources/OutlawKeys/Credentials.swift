import Foundation
import OutlawConfig

/// The Metrc vendor key and the facility's Default key, read from files (systemd credentials by default).
public struct MetrcCredentials: Sendable {
    public let vendorKey: String?
    public let defaultKey: String?
    /// Where each was looked for, for messages (never the keys themselves).
    public let vendorKeySource: String
    public let defaultKeySource: String
    /// Where each was read from and where an operator puts it; nil for keys given in code (tests, dev mode).
    public let vendorKeyLocation: MetrcKeyLocation?
    public let defaultKeyLocation: MetrcKeyLocation?

    /// The folder systemd/outlawd.service loads the credentials from (`LoadCredential=`): where an operator puts the
    /// keys of a daemon that reads them from `$CREDENTIALS_DIRECTORY`, which names only systemd's private copy.
    public static let unitCredentialFolder = "/etc/outlawd/credentials"

    public init(vendorKey: String?, defaultKey: String?, vendorKeySource: String = "given", defaultKeySource: String = "given",
                vendorKeyLocation: MetrcKeyLocation? = nil, defaultKeyLocation: MetrcKeyLocation? = nil)
    {
        self.vendorKey = vendorKey
        self.defaultKey = defaultKey
        self.vendorKeySource = vendorKeySource
        self.defaultKeySource = defaultKeySource
        self.vendorKeyLocation = vendorKeyLocation
        self.defaultKeyLocation = defaultKeyLocation
    }

    /// Where the two keys are read from: `$RUNTIME_DIRECTORY/metrc-vendor-key` and `.../metrc-default-key` (the
    /// unit's ExecReload= copies the key files there: systemd refreshes credentials only at a start), else
    /// `$CREDENTIALS_DIRECTORY/...` (systemd's LoadCredential=) when present, else `metrc.vendor_key_file` and
    /// `metrc.default_key_file`.
    public static func locate(_ configuration: DaemonConfiguration,
                              environment: [String: String] = ProcessInfo.processInfo.environment) -> (vendor: MetrcKeyLocation, default: MetrcKeyLocation)
    {
        // A systemd credential wins: the daemon's dynamic user cannot read root's files, while outlawctl
        // (run by root, with no credentials) reads the configured files.
        func locate(_ configured: String?, _ credential: String, _ setting: String) -> MetrcKeyLocation {
            if let dir = environment["RUNTIME_DIRECTORY"], !dir.isEmpty, let copied = KeyFileContent.read(dir + "/" + credential).key, !copied.isEmpty {
                return MetrcKeyLocation(credential: credential, setting: setting, path: dir + "/" + credential, fromCredentials: true)
            }
            if let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty,
               FileManager.default.fileExists(atPath: dir + "/" + credential) {
                return MetrcKeyLocation(credential: credential, setting: setting, path: dir + "/" + credential, fromCredentials: true)
            }
            return MetrcKeyLocation(credential: credential, setting: setting, path: configured, fromCredentials: false)
        }
        return (locate(configuration.metrc.vendorKeyFile, "metrc-vendor-key", "metrc.vendor_key_file"),
                locate(configuration.metrc.defaultKeyFile, "metrc-default-key", "metrc.default_key_file"))
    }

    /// Reads both keys from where `locate` finds them. A missing, empty or unreadable file is no key: the daemon
    /// still stores and acknowledges batches, and says what it waits for (`uploadGaps`).
    public static func load(_ configuration: DaemonConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment) -> MetrcCredentials {
        let (vendor, defaultKey) = locate(configuration, environment: environment)
        return MetrcCredentials(vendorKey: vendor.path.flatMap { KeyFileContent.read($0).key },
                                defaultKey: defaultKey.path.flatMap { KeyFileContent.read($0).key },
                                vendorKeySource: vendor.path ?? "(metrc.vendor_key_file not set and no $CREDENTIALS_DIRECTORY)",
                                defaultKeySource: defaultKey.path ?? "(metrc.default_key_file not set and no $CREDENTIALS_DIRECTORY)",
                                vendorKeyLocation: vendor, defaultKeyLocation: defaultKey)
    }

    /// What keeps uploads (or some of them) from running, one sentence each naming the file to fill: the daemon
    /// says them at start, `outlawctl status` shows them (degraded), `outlawd --check-config` warns with them.
    public func uploadGaps(_ configuration: DaemonConfiguration) -> [UploadGap] {
        var gaps: [UploadGap] = []
        if configuration.metrc.baseURL == nil {
            gaps.append(UploadGap(kind: .address, message: "no Metrc address (metrc.base_url in \(configuration.file ?? "the configuration")): "
                + "batches are stored and acknowledged, and uploaded once it is set and outlawd restarted"))
        }
        // Where to put a key: the unit's file, else the configured one, else the setting to add.
        func place(_ location: MetrcKeyLocation?, _ name: String) -> String {
            location?.operatorFile ?? "a file \(location?.setting ?? name) names (none is set)"
        }
        let restart = "(root only, 0600), then systemctl reload outlawd"
        if vendorKey == nil {
            let files = [place(vendorKeyLocation, "metrc-vendor-key")] + (defaultKey == nil ? [place(defaultKeyLocation, "metrc-default-key")] : [])
            gaps.append(UploadGap(kind: .vendorKey, message: (defaultKey == nil ? "uploads wait for the Metrc keys: put them in " : "uploads wait for the Metrc vendor key: put it in ")
                + files.joined(separator: " and ") + " \(restart); batches are stored and acknowledged meanwhile"))
        } else if defaultKey == nil {
            gaps.append(UploadGap(kind: .defaultKey, message: "no Default Metrc key: users without a personal key wait (held) and reference data is not "
                + "synced until it is in \(place(defaultKeyLocation, "metrc-default-key")) \(restart)"))
        }
        return gaps
    }
}

/// Where one of the two Metrc keys is read from, and where an operator puts it.
public struct MetrcKeyLocation: Sendable, Equatable {
    /// The systemd credential: `metrc-vendor-key` or `metrc-default-key`.
    public let credential: String
    /// The configuration key naming the file: `metrc.vendor_key_file` or `metrc.default_key_file`.
    public let setting: String
    /// The file read: systemd's copy of the credential, else the configured file; nil when neither exists.
    public let path: String?
    public let fromCredentials: Bool

    public init(credential: String, setting: String, path: String?, fromCredentials: Bool) {
        self.credential = credential
        self.setting = setting
        self.path = path
        self.fromCredentials = fromCredentials
    }

    /// The file an operator fills: the one the unit loads the credential from, else the configured one.
    public var operatorFile: String? {
        fromCredentials ? MetrcCredentials.unitCredentialFolder + "/" + credential : path
    }
}

/// What a key file holds (never shown: a key is only ever used).
public enum KeyFileContent: Sendable, Equatable {
    case key(String)
    case missing
    /// Only whitespace: no key yet (the unit's stand-in for a missing file is a newline).
    case empty
    /// There but not usable: why.
    case unreadable(String)

    public var key: String? {
        if case .key(let key) = self { return key }
        return nil
    }

    public static func read(_ path: String) -> KeyFileContent {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return .missing }
        if isFolder.boolValue { return .unreadable("is a folder, not a file") }
        guard let data = FileManager.default.contents(atPath: path) else { return .unreadable("cannot be read (permissions?)") }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? .empty : .key(text)
    }
}

/// One thing that keeps uploads from running, as a sentence naming what to fill.
public struct UploadGap: Sendable, Equatable {
    /// What is missing.
    public enum Kind: Sendable, Equatable {
        case address, vendorKey, defaultKey
    }

    public let kind: Kind
    public let message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
}
