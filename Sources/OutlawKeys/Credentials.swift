import Foundation
import OutlawConfig

/// The Metrc vendor key and the facility's Default key, read from files (systemd credentials by default).
public struct MetrcCredentials: Sendable {
    public let vendorKey: String?
    public let defaultKey: String?
    /// Where each was looked for, for messages (never the keys themselves).
    public let vendorKeySource: String
    public let defaultKeySource: String

    public init(vendorKey: String?, defaultKey: String?, vendorKeySource: String = "given", defaultKeySource: String = "given") {
        self.vendorKey = vendorKey
        self.defaultKey = defaultKey
        self.vendorKeySource = vendorKeySource
        self.defaultKeySource = defaultKeySource
    }

    /// Reads `$CREDENTIALS_DIRECTORY/metrc-vendor-key` and `.../metrc-default-key` (systemd's LoadCredential=)
    /// when present, else `metrc.vendor_key_file` and `metrc.default_key_file`.
    public static func load(_ configuration: DaemonConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment) -> MetrcCredentials {
        // A systemd credential wins: the daemon's dynamic user cannot read root's files, while outlawctl
        // (run by root, with no credentials) reads the configured files.
        func path(_ configured: String?, _ credential: String) -> String? {
            if let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty,
               FileManager.default.fileExists(atPath: dir + "/" + credential) {
                return dir + "/" + credential
            }
            return configured
        }
        func read(_ path: String?) -> String? {
            guard let path, let data = FileManager.default.contents(atPath: path) else { return nil }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? nil : text
        }
        let vendorPath = path(configuration.metrc.vendorKeyFile, "metrc-vendor-key")
        let defaultPath = path(configuration.metrc.defaultKeyFile, "metrc-default-key")
        return MetrcCredentials(vendorKey: read(vendorPath), defaultKey: read(defaultPath),
                                vendorKeySource: vendorPath ?? "(metrc.vendor_key_file not set and no $CREDENTIALS_DIRECTORY)",
                                defaultKeySource: defaultPath ?? "(metrc.default_key_file not set and no $CREDENTIALS_DIRECTORY)")
    }
}
